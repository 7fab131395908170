"""Seeded, realistic benchmark data: contacts plus months of e-commerce and app events.

One generation writes three forms of the same data into an output directory:

- ``contacts.jsonl`` and ``events.jsonl``: the JSON of EVENTS.md, one document per line, in
  time order (e-commerce events in the name/value "v2" shape with JSON-string products and
  RFC 3339 timestamps, app events in the object "v3" shape with epoch-ms timestamps);
- ``columns/``: the same data as numpy ``.npz`` chunks of dictionary-coded columns, which the
  DuckDB loader and the in-process bulk loader read without parsing JSON;
- ``meta.json``: sizes, the seed, the fixed ``now`` (the as-of of every benchmark query),
  vocabularies and per-type counts.

Every event names its contact by ``externalCustomerId`` ("C-<id>"). Contacts are upserted
first, in id order, so the service gives contact ``C-<i>`` the id ``i``; the columns store
that id directly. Only the (contact, time, type) skeleton of all events (13 bytes each) is
held in memory; parameters and JSON are produced and written one chunk at a time.

The vocabulary lives in `bench.vocab` and the documents are built by `bench.eventdocs`.

CLI: ``python -m bench.datagen --contacts N --events M --out DIR --seed S``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from bench.eventdocs import ChunkDocs, chunk_docs, dumps
from bench.vocab import (
    APP_VERSIONS,
    CATEGORIES,
    CITIES,
    DAY_MS,
    DEFAULT_NOW_MS,
    DEVICES,
    EVENT_TYPES,
    KIND_NUMBER,
    KIND_NUMERIC_STRING,
    KIND_TEXT,
    N_CAMPAIGNS,
    OS_NAMES,
    SEARCH_TERMS,
    T_EMAIL,
    T_INSTALL,
    T_LAUNCH,
    T_PCV,
    T_PUSH,
    T_PV,
    T_WORKOUT,
    TITLE_CATEGORY,
    TITLE_PRICE,
    TITLES,
    TYPE_SHARE,
    WORKOUTS,
)


@dataclass(frozen=True, slots=True)
class GenConfig:
    contacts: int
    events: int
    seed: int = 1
    now_ms: int = DEFAULT_NOW_MS
    history_days: int = 400
    catalog: int = 5000
    chunk_events: int = 250_000


@dataclass(slots=True)
class Dataset:
    """A generated dataset on disk, as described by its meta.json."""

    root: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def now_ms(self) -> int:
        return int(self.meta["now_ms"])

    @property
    def contacts(self) -> int:
        return int(self.meta["contacts"])

    @property
    def events(self) -> int:
        return int(self.meta["events"])

    @property
    def events_jsonl(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def contacts_jsonl(self) -> Path:
        return self.root / "contacts.jsonl"

    def event_chunks(self) -> list[Path]:
        return sorted((self.root / "columns").glob("events-*.npz"))

    def contact_columns(self) -> dict[str, np.ndarray]:
        return open_dataset_columns(self.root)


def open_dataset(root: str | os.PathLike[str]) -> Dataset:
    """Reads meta.json of a generated dataset."""
    path = Path(root)
    return Dataset(path, json.loads((path / "meta.json").read_text()))


# ----------------------------------------------------------------------------- contacts


def _contact_columns(cfg: GenConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-contact columns; row i is contact id i + 1."""
    n = cfg.contacts
    city_p = 1.0 / np.arange(1, len(CITIES) + 1) ** 0.9
    city = rng.choice(len(CITIES), size=n, p=city_p / city_p.sum()).astype(np.int16)
    city[rng.random(n) < 0.1] = -1
    # Birthdays: uniform over calendar days 1950-01-01 .. 2007-12-31 (leap days included).
    lo = (dt.date(1950, 1, 1) - dt.date(1970, 1, 1)).days
    hi = (dt.date(2007, 12, 31) - dt.date(1970, 1, 1)).days
    birthday = rng.integers(lo, hi + 1, size=n).astype(np.int32)
    birthday[rng.random(n) < 0.2] = np.iinfo(np.int32).min
    vip = np.where(rng.random(n) < 0.06, 1, 0).astype(np.int8)
    vip[rng.random(n) < 0.35] = -1  # field absent
    app = rng.random(n) < 0.5
    os_code = np.where(rng.random(n) < 0.45, 0, 1).astype(np.int8)  # iOS / Android for app users
    web_os = rng.choice(4, size=n, p=[0.25, 0.35, 0.3, 0.1]).astype(np.int8)
    return {
        "has_email": rng.random(n) < 0.85,
        "has_phone": rng.random(n) < 0.4,
        "has_push": rng.random(n) < 0.3,
        "city": city,
        "birthday_days": birthday,
        "vip": vip,
        "app": app,
        "os": os_code,
        "web_os": web_os,
    }


def contact_doc(i: int, cols: dict[str, np.ndarray]) -> dict[str, Any]:
    """The upsert document of contact id i (1-based) from the contact columns."""
    r = i - 1
    doc: dict[str, Any] = {"externalId": f"C-{i}"}
    if cols["has_email"][r]:
        doc["email"] = f"User{i}@Example.com"
    if cols["has_phone"][r]:
        doc["phone"] = f"+1 555 {i:09d}"
    if cols["has_push"][r]:
        doc["pushTokens"] = [f"wp:{i:x}"]
    fields: dict[str, Any] = {}
    if cols["city"][r] >= 0:
        fields["city"] = CITIES[cols["city"][r]]
    if cols["birthday_days"][r] != np.iinfo(np.int32).min:
        fields["birthday"] = (dt.date(1970, 1, 1) + dt.timedelta(days=int(cols["birthday_days"][r]))).isoformat()
    if cols["vip"][r] >= 0:
        fields["vip"] = bool(cols["vip"][r])
    if fields:
        doc["fields"] = fields
    return doc


def iter_contact_docs(ds: Dataset, batch: int = 10_000) -> Iterator[list[dict[str, Any]]]:
    """Contact upsert documents in id order, in batches."""
    cols = ds.contact_columns()
    for start in range(1, ds.contacts + 1, batch):
        yield [contact_doc(i, cols) for i in range(start, min(start + batch, ds.contacts + 1))]


# ------------------------------------------------------------------------------- events


def _skeleton(
    cfg: GenConfig, cols: dict[str, np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(contact u32, ts_ms i64, type u8) of every event, sorted by time."""
    n, m = cfg.contacts, cfg.events
    # Activity: 85% of contacts are active, with Zipf-like weights rank^-0.7 in random order.
    active = rng.random(n) < 0.85
    weight = np.zeros(n)
    ranks = rng.permutation(int(active.sum())) + 1
    weight[active] = ranks.astype(np.float64) ** -0.7
    cum = np.cumsum(weight)
    cum /= cum[-1] if n and cum[-1] > 0 else 1.0
    # Each contact is active in [start, end]; half joined before the history begins, 30% lapsed.
    hist = cfg.history_days * DAY_MS
    start = cfg.now_ms - (rng.random(n) * hist).astype(np.int64)
    start[rng.random(n) < 0.5] = cfg.now_ms - hist
    end = np.full(n, cfg.now_ms, dtype=np.int64)
    lapsed = rng.random(n) < 0.3
    end[lapsed] = start[lapsed] + (rng.random(int(lapsed.sum())) * (cfg.now_ms - start[lapsed])).astype(np.int64)
    contact = np.empty(m, dtype=np.uint32)
    ts = np.empty(m, dtype=np.int64)
    etype = np.empty(m, dtype=np.uint8)
    share = TYPE_SHARE / TYPE_SHARE.sum()
    step = 5_000_000
    for lo in range(0, m, step):
        k = min(step, m - lo)
        row = np.minimum(np.searchsorted(cum, rng.random(k), side="right"), n - 1)
        contact[lo:lo + k] = row + 1
        span = end[row] - start[row]
        ts[lo:lo + k] = start[row] + (rng.random(k) * span).astype(np.int64)
        t = rng.choice(len(share), size=k, p=share).astype(np.uint8)
        app = cols["app"][row]
        t[~app & np.isin(t, (T_INSTALL, T_LAUNCH, T_WORKOUT))] = T_PV
        t[~cols["has_email"][row] & (t == T_EMAIL)] = T_PCV
        t[~cols["has_push"][row] & (t == T_PUSH)] = T_PV
        etype[lo:lo + k] = t
    order = np.argsort(ts, kind="stable")
    return contact[order], ts[order], etype[order]


@dataclass(frozen=True, slots=True)
class _Catalog:
    price_cents: np.ndarray  # i64 per product
    in_stock: np.ndarray  # bool per product
    cat_offsets: np.ndarray  # categories of product k: cat_codes[cat_offsets[k]:cat_offsets[k+1]]
    cat_codes: np.ndarray
    popularity: np.ndarray  # cumulative probability


def _catalog(cfg: GenConfig, rng: np.random.Generator) -> _Catalog:
    k = cfg.catalog
    price = np.round(np.exp(rng.normal(np.log(40.0), 1.0, size=k)) * 100).astype(np.int64)
    price = np.clip(price, 99, 250_000)
    ncat = rng.integers(1, 4, size=k)
    offsets = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(ncat, out=offsets[1:])
    codes = rng.integers(0, len(CATEGORIES), size=int(offsets[-1])).astype(np.int16)
    pop = 1.0 / np.arange(1, k + 1) ** 1.0
    return _Catalog(price, rng.random(k) < 0.85, offsets, codes, np.cumsum(pop) / pop.sum())


def _ragged(counts: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def _numeric_kinds(rng: np.random.Generator, n: int, strings: float, texts: float) -> np.ndarray:
    u = rng.random(n)
    kind = np.full(n, KIND_NUMBER, dtype=np.uint8)
    kind[u < strings + texts] = KIND_NUMERIC_STRING
    kind[u < texts] = KIND_TEXT
    return kind


def _chunk_columns(
    cfg: GenConfig,
    cat: _Catalog,
    ccols: dict[str, np.ndarray],
    contact: np.ndarray,
    ts: np.ndarray,
    etype: np.ndarray,
    seq0: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Columns of one chunk of events, keyed "<type>.<column>"."""
    out: dict[str, np.ndarray] = {}
    seq = np.arange(seq0, seq0 + len(contact), dtype=np.int64)
    for t, name in enumerate(EVENT_TYPES):
        sel = etype == t
        out[f"{name}.seq"] = seq[sel]
        out[f"{name}.contact"] = contact[sel]
        out[f"{name}.ts_ms"] = ts[sel]
    row_of = {name: contact[etype == t] - 1 for t, name in enumerate(EVENT_TYPES)}

    def products(n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(cat.popularity, rng.random(n), side="right"), len(cat.price_cents) - 1)

    # productViewed: product {productId, price, isInStock, categories[]}
    n = len(row_of["productViewed"])
    prod = products(n)
    out["productViewed.product"] = prod.astype(np.int32)
    out["productViewed.price"] = cat.price_cents[prod] / 100.0
    out["productViewed.price_kind"] = _numeric_kinds(rng, n, 0.05, 0.005)
    stock = cat.in_stock[prod] ^ (rng.random(n) < 0.05)
    out["productViewed.in_stock"] = stock.astype(np.int8)
    counts = cat.cat_offsets[prod + 1] - cat.cat_offsets[prod]
    offs = _ragged(counts)
    flat = np.repeat(cat.cat_offsets[prod], counts) + (np.arange(int(offs[-1])) - np.repeat(offs[:-1], counts))
    out["productViewed.cat_offsets"] = offs
    out["productViewed.cat_codes"] = cat.cat_codes[flat]

    # productCategoryViewed: category {productCategoryId}
    n = len(row_of["productCategoryViewed"])
    cp = 1.0 / np.arange(1, len(CATEGORIES) + 1) ** 0.8
    out["productCategoryViewed.category"] = rng.choice(len(CATEGORIES), size=n, p=cp / cp.sum()).astype(np.int16)

    # cartUpdated: products [{productId, quantity, price}] (0-5 items; empty = cleared cart)
    n = len(row_of["cartUpdated"])
    counts = rng.choice(6, size=n, p=[0.1, 0.35, 0.25, 0.15, 0.1, 0.05])
    offs = _ragged(counts)
    k = int(offs[-1])
    prod = products(k)
    out["cartUpdated.recycle"] = rng.integers(0, 2**62, size=n)
    out["cartUpdated.item_offsets"] = offs
    out["cartUpdated.item_product"] = prod.astype(np.int32)
    qty_p = [0.55, 0.25, 0.1, 0.06, 0.04]
    out["cartUpdated.item_qty"] = rng.choice(np.arange(1, 6), size=k, p=qty_p).astype(np.float64)
    out["cartUpdated.item_qty_kind"] = _numeric_kinds(rng, k, 0.05, 0.0)
    out["cartUpdated.item_price"] = np.maximum(np.round(cat.price_cents[prod] / 100.0), 1.0)

    # purchase: totalPrice, items [{title, price, quantity, category}], city; integral prices
    n = len(row_of["purchase"])
    counts = rng.choice(np.arange(1, 5), size=n, p=[0.5, 0.3, 0.15, 0.05])
    offs = _ragged(counts)
    k = int(offs[-1])
    tp = 1.0 / np.arange(1, len(TITLES) + 1) ** 0.7
    title = rng.choice(len(TITLES), size=k, p=tp / tp.sum()).astype(np.int16)
    base = np.asarray(TITLE_PRICE, dtype=np.float64)[title]
    price = np.maximum(np.round(base * np.exp(rng.normal(0.0, 0.35, size=k))), 1.0)
    qty = rng.choice(np.arange(1, 4), size=k, p=[0.75, 0.18, 0.07]).astype(np.float64)
    out["purchase.item_offsets"] = offs
    out["purchase.item_title"] = title
    out["purchase.item_price"] = price
    out["purchase.item_qty"] = qty
    out["purchase.item_qty_kind"] = _numeric_kinds(rng, k, 0.05, 0.0)
    out["purchase.item_category"] = np.asarray(TITLE_CATEGORY, dtype=np.int16)[title]
    out["purchase.total"] = np.add.reduceat(price * qty, offs[:-1]) if n else np.zeros(0)
    out["purchase.total_kind"] = _numeric_kinds(rng, n, 0.03, 0.0)
    city = ccols["city"][row_of["purchase"]].copy()
    city[rng.random(n) < 0.03] = -1
    out["purchase.city"] = city

    # searchRequest: search, isFound
    n = len(row_of["searchRequest"])
    out["searchRequest.term"] = rng.integers(0, len(SEARCH_TERMS), size=n).astype(np.int16)
    out["searchRequest.found"] = (rng.random(n) < 0.8).astype(np.int8)

    # app events: osType of the contact's app (2% report the other one)
    for name in ("AppInstall", "AppLaunched", "WorkoutStarted"):
        rows = row_of[name]
        os_code = ccols["os"][rows] ^ (rng.random(len(rows)) < 0.02)
        out[f"{name}.os"] = os_code.astype(np.int8)
    out["AppInstall.version"] = rng.integers(0, len(APP_VERSIONS), size=len(row_of["AppInstall"])).astype(np.int8)
    n = len(row_of["WorkoutStarted"])
    workout_p = [0.3, 0.25, 0.2, 0.1, 0.1, 0.05]
    out["WorkoutStarted.workout"] = rng.choice(len(WORKOUTS), size=n, p=workout_p).astype(np.int8)
    out["WorkoutStarted.device"] = rng.choice(len(DEVICES), size=n, p=[0.6, 0.3, 0.1]).astype(np.int8)
    out["WorkoutStarted.calories"] = rng.integers(50, 901, size=n).astype(np.float64)
    out["emailOpened.campaign"] = rng.integers(0, N_CAMPAIGNS, size=len(row_of["emailOpened"])).astype(np.int16)
    out["webPushSubscribed.os"] = ccols["web_os"][row_of["webPushSubscribed"]].astype(np.int8)
    return out


def load_chunk(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def iter_event_docs(ds: Dataset, batch: int | None = None) -> Iterator[list[dict[str, Any]]]:
    """Event documents in stream order, built from the columns (no JSON parse).

    One list per chunk, or lists of at most `batch` documents (which keeps the documents
    alive at any time, and the memory they take, small).
    """
    contacts = ds.contact_columns()
    for path in ds.event_chunks():
        builder = ChunkDocs(load_chunk(path), contacts)
        step = batch or max(1, builder.size)
        for lo in range(0, builder.size, step):
            yield builder.docs(lo, lo + step)


def iter_jsonl_batches(path: Path, batch: int) -> Iterator[bytes]:
    """The lines of a JSONL file as byte blocks of at most `batch` lines each."""
    with open(path, "rb") as fh:
        lines: list[bytes] = []
        for line in fh:
            lines.append(line)
            if len(lines) == batch:
                yield b"".join(lines)
                lines = []
        if lines:
            yield b"".join(lines)


# ------------------------------------------------------------------------------- writer


def _write_jsonl_part(chunk_path: str, root: str) -> Path:
    """Writes the JSON Lines of one column chunk next to it; returns the part file."""
    contacts = open_dataset_columns(Path(root))
    docs = chunk_docs(load_chunk(Path(chunk_path)), contacts)
    part = Path(chunk_path).with_suffix(".jsonl")
    with open(part, "w") as fh:
        fh.write("".join(dumps(d) + "\n" for d in docs))
    return part


def open_dataset_columns(root: Path) -> dict[str, np.ndarray]:
    with np.load(root / "columns" / "contacts.npz") as z:
        return {k: z[k] for k in z.files}


def _done(value: Path) -> "Future[Path]":
    f: Future[Path] = Future()
    f.set_result(value)
    return f


def generate(cfg: GenConfig, out: str | os.PathLike[str], *, jsonl: bool = True, progress: bool = False) -> Dataset:
    """Generates a dataset into `out` (created or overwritten) and returns it."""
    root = Path(out)
    (root / "columns").mkdir(parents=True, exist_ok=True)
    for old in (root / "columns").glob("events-*"):
        old.unlink()
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    ccols = _contact_columns(cfg, rng)
    np.savez(root / "columns" / "contacts.npz", **ccols)  # type: ignore[arg-type]
    if jsonl:
        with open(root / "contacts.jsonl", "w") as fh:
            for start in range(1, cfg.contacts + 1, 10_000):
                stop = min(start + 10_000, cfg.contacts + 1)
                fh.write("".join(dumps(contact_doc(i, ccols)) + "\n" for i in range(start, stop)))
    cat = _catalog(cfg, rng)
    contact, ts, etype = _skeleton(cfg, ccols, rng)
    per_type = np.bincount(etype, minlength=len(EVENT_TYPES))
    parts: list[Future[Path]] = []
    parallel = jsonl and cfg.events > cfg.chunk_events  # JSON of one chunk is written while the next is drawn
    pool = ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) if parallel else None
    try:
        for part, lo in enumerate(range(0, cfg.events, cfg.chunk_events)):
            hi = min(lo + cfg.chunk_events, cfg.events)
            chunk = _chunk_columns(cfg, cat, ccols, contact[lo:hi], ts[lo:hi], etype[lo:hi], lo, rng)
            path = root / "columns" / f"events-{part:05d}.npz"
            np.savez(path, **chunk)  # type: ignore[arg-type]
            if pool is not None:
                while sum(not f.done() for f in parts) >= 4:  # bound the queue of pending chunks
                    wait([f for f in parts if not f.done()], return_when=FIRST_COMPLETED)
                parts.append(pool.submit(_write_jsonl_part, str(path), str(root)))
            elif jsonl:
                parts.append(_done(_write_jsonl_part(str(path), str(root))))
            if progress and sys.stderr.isatty():
                print(f"\r{hi:,}/{cfg.events:,} events", end="", file=sys.stderr)
        if jsonl:
            with open(root / "events.jsonl", "wb") as out_fh:
                for f in parts:
                    part_path = f.result()
                    with open(part_path, "rb") as in_fh:
                        shutil.copyfileobj(in_fh, out_fh, 1 << 20)
                    part_path.unlink()
        else:  # no stale JSON Lines of an earlier generation next to these columns
            for stale in (root / "events.jsonl", root / "contacts.jsonl"):
                stale.unlink(missing_ok=True)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    meta = {
        **asdict(cfg),
        "format": 1,
        "jsonl": jsonl,
        "event_counts": {name: int(per_type[i]) for i, name in enumerate(EVENT_TYPES)},
        "first_ts_ms": int(ts[0]) if len(ts) else None,
        "last_ts_ms": int(ts[-1]) if len(ts) else None,
        "generate_seconds": round(time.perf_counter() - t0, 3),
        "vocab": {
            "cities": CITIES, "categories": CATEGORIES, "titles": TITLES, "search_terms": SEARCH_TERMS,
            "os": OS_NAMES, "workouts": WORKOUTS, "devices": DEVICES, "app_versions": APP_VERSIONS,
        },
    }
    (root / "meta.json").write_text(json.dumps(meta, indent=1))
    if progress and sys.stderr.isatty():
        print(file=sys.stderr)
    return Dataset(root, meta)


def default_data_dir(contacts: int, events: int, seed: int) -> Path:
    """Where drivers keep a generated dataset ($SEGMENTD_BENCH_DATA or the temp dir)."""
    base = Path(os.environ.get("SEGMENTD_BENCH_DATA") or Path(tempfile.gettempdir()) / "segmentd-bench")
    return base / f"c{contacts}-e{events}-s{seed}"


def ensure_dataset(cfg: GenConfig, out: str | os.PathLike[str], *, jsonl: bool = True) -> Dataset:
    """The dataset in `out` if it was generated with the same config, else a new one."""
    root = Path(out)
    try:
        ds = open_dataset(root)
        same = all(ds.meta.get(k) == v for k, v in asdict(cfg).items())
        if same and (ds.meta.get("jsonl") or not jsonl):
            return ds
    except (OSError, ValueError):
        pass
    return generate(cfg, root, jsonl=jsonl)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.datagen", description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--history-days", type=int, default=400)
    ap.add_argument("--no-jsonl", action="store_true", help="write the columns only")
    args = ap.parse_args(argv)
    cfg = GenConfig(contacts=args.contacts, events=args.events, seed=args.seed, history_days=args.history_days)
    ds = generate(cfg, args.out, jsonl=not args.no_jsonl, progress=True)
    print(json.dumps({"out": str(ds.root), "contacts": ds.contacts, "events": ds.events,
                      "now_ms": ds.now_ms, "seconds": ds.meta["generate_seconds"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
