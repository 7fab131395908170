"""In-process ingest profiling: events/s of `Engine.ingest` on realistic event shapes.

Generates N events (seeded, repeatable) in the shapes EVENTS.md describes and clients send:
v2 name/value lists with JSON-in-string `product` / `products` / `items`, v3 objects with
nested objects and arrays, identifiers email / externalCustomerId / phone, anonymous
visitors known only by keyValue, and purchases carrying an eventId. Each batch is generated
outside the timer; only the ingest call is timed, in wall-clock seconds and in CPU seconds of
this process (the steadier figure on a machine shared with other work).

Modes:
- ``docs``: `Engine.ingest` of ready-made documents (dicts);
- ``jsonl``: `server.convert.jsonl_to_docs` of a JSON Lines block, then `Engine.ingest`
  (the work a server does for ``IngestEvents{jsonl}`` apart from gRPC itself);
- ``columns``: the bulk loader `EventStore.append_columns` with numpy columns per type.

``--wal DIR`` journals through a real write-ahead log (fsync always: one fdatasync per batch).
``--profile`` runs the same load again under cProfile and prints the top functions.
``--steps`` (jsonl mode) times each step of the server's batch path on its own, in CPU
microseconds per event, the collector off as the server has it: decode (`jsonl_docs`),
validate (`intake.prepare`: parse, limits, flatten), map (`place`), add (`EventBatch.add`),
commit (`EventBatch.commit`) and journal (the "ingest" log record encoded); and decode and
validate fused as the server does them (`intake.prepare_jsonl`: each line parsed as it is
decoded), with the total that gives.

CLI: ``python -m bench.profile_ingest --events 1000000 [--mode docs|jsonl|columns] [--profile]``;
``--write-jsonl FILE`` writes the same events as JSON Lines instead (for ``segmentd ingest``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from core.engine import Engine

NOW_MS = 1_795_000_000_000  # 2026-11-18T...Z: the clock of every run
SPAN_MS = 90 * 86_400_000  # events spread over the 90 days before NOW_MS
OS_NAMES = ("iOS", "Android", "Web")
CURRENCIES = ("USD", "EUR", "GBP")
CATEGORIES = ("Women", "Men", "Shoes", "Tops", "Sale", "Outdoor", "Kids", "Home")
TITLES = ("Hoodie", "Tee", "Sneaker", "Jacket", "Cap", "Sock", "Bag", "Scarf")
CITIES = ("London", "Paris", "Berlin", "Madrid", "Rome", "Oslo")
MODES = ("docs", "jsonl", "columns")


def _rfc3339(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ms // 1000)) + f".{ts_ms % 1000:03d}Z"


class EventMaker:
    """Deterministic realistic event documents for `contacts` people (ids C-1 ... C-n)."""

    def __init__(self, contacts: int, seed: int = 7) -> None:
        self.contacts = max(1, contacts)
        self.rng = random.Random(seed)
        self.seq = 0

    def _who(self) -> tuple[int, list[dict[str, Any]], str]:
        """(k, v2 identifier params, keyValue) of a random known person."""
        k = self.rng.randint(1, self.contacts)
        params = [{"name": "externalCustomerId", "value": f"C-{k}"}]
        key = f"C-{k}"
        if k % 3:
            params.append({"name": "email", "value": f"User{k}@Example.com"})
            key = f"user{k}@example.com"
        return k, params, key

    def _ts(self) -> int:
        return NOW_MS - self.rng.randrange(SPAN_MS)

    def _product(self) -> dict[str, Any]:
        r = self.rng
        return {
            "productId": f"WS{r.randrange(2000):04d}-{r.choice('SML')}",
            "price": round(r.uniform(5, 200), 2) if r.random() < 0.7 else r.randrange(5, 200),
            "isInStock": r.randrange(2),
            "categories": r.sample(CATEGORIES, r.randint(1, 3)),
        }

    def product_viewed(self) -> dict[str, Any]:
        _, params, key = self._who()
        params.append({"name": "product", "value": json.dumps(self._product())})
        params.append({"name": "currencyCode", "value": self.rng.choice(CURRENCIES)})
        return {"eventTypeKey": "productViewed", "keyValue": key, "timestamp": _rfc3339(self._ts()), "params": params}

    def cart_updated(self) -> dict[str, Any]:
        r = self.rng
        _, params, key = self._who()
        items = [
            {"productId": f"WS{r.randrange(2000):04d}", "quantity": r.randint(1, 4), "price": r.randrange(5, 200)}
            for _ in range(r.randint(1, 4))
        ]
        params.append({"name": "products", "value": json.dumps(items)})
        params.append({"name": "currencyCode", "value": r.choice(CURRENCIES)})
        return {"eventTypeKey": "cartUpdated", "keyValue": key, "timestamp": _rfc3339(self._ts()), "params": params}

    def purchase(self) -> dict[str, Any]:
        r = self.rng
        _, params, key = self._who()
        items: list[dict[str, Any]] = [
            {"title": r.choice(TITLES), "price": r.randrange(5, 200), "quantity": r.randint(1, 3),
             "category": r.choice(CATEGORIES)}
            for _ in range(r.randint(1, 3))
        ]
        params.append({"name": "items", "value": json.dumps(items)})
        params.append({"name": "totalPrice", "value": sum(i["price"] * i["quantity"] for i in items)})
        params.append({"name": "city", "value": r.choice(CITIES)})
        self.seq += 1
        return {"eventTypeKey": "purchase", "keyValue": key, "eventId": f"o-{self.seq}",
                "timestamp": _rfc3339(self._ts()), "params": params}

    def app_launched(self) -> dict[str, Any]:
        r = self.rng
        k = r.randint(1, self.contacts)
        return {"eventTypeKey": "AppLaunched", "timestamp": self._ts(),
                "params": {"externalCustomerId": f"C-{k}", "osType": r.choice(OS_NAMES),
                           "appVersion": f"3.{r.randrange(5)}.{r.randrange(10)}"}}

    def workout(self) -> dict[str, Any]:
        r = self.rng
        k = r.randint(1, self.contacts)
        return {"eventTypeKey": "WorkoutStarted", "timestamp": self._ts(),
                "params": {"externalCustomerId": f"C-{k}", "workoutType": r.choice(("run", "ride", "swim")),
                           "calories": r.randrange(50, 900), "indoor": r.random() < 0.4,
                           "device": {"os": r.choice(OS_NAMES), "model": f"W{r.randrange(9)}"},
                           "tags": r.sample(("am", "pm", "hiit", "easy", "long"), r.randint(0, 2))}}

    def sms_clicked(self) -> dict[str, Any]:
        r = self.rng
        k = r.randint(1, self.contacts)
        return {"eventTypeKey": "smsClicked", "timestamp": self._ts(),
                "params": {"phone": f"+44 20 {k // 10000:04d}-{k % 10000:04d}", "campaignId": f"cmp-{r.randrange(40)}"}}

    def page_viewed(self) -> dict[str, Any]:
        r = self.rng
        return {"eventTypeKey": "pageViewed", "keyValue": f"ck-{r.randrange(self.contacts):x}",
                "timestamp": self._ts(),
                "params": {"url": f"/p/{r.randrange(500)}", "referrer": r.choice(("google", "direct", "mail"))}}

    # shares of the stream (sum 100)
    def _makers(self) -> list[tuple[int, Callable[[], dict[str, Any]]]]:
        return [(30, self.product_viewed), (12, self.cart_updated), (5, self.purchase), (18, self.app_launched),
                (8, self.workout), (7, self.sms_clicked), (20, self.page_viewed)]

    def batch(self, n: int) -> list[dict[str, Any]]:
        """The next `n` documents of the stream."""
        makers = self._makers()
        funcs = [f for _, f in makers]
        weights = [w for w, _ in makers]
        return [f() for f in self.rng.choices(funcs, weights, k=n)]


def jsonl_block(docs: list[dict[str, Any]]) -> bytes:
    """The documents as one JSON Lines payload (what `segmentd ingest` sends)."""
    return ("\n".join(json.dumps(d, separators=(",", ":")) for d in docs) + "\n").encode()


def column_batch(n: int, contacts: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Numpy columns of `n` AppLaunched-like events: contact ids, ts and two parameters."""
    return {
        "contact": rng.integers(1, contacts + 1, size=n, dtype=np.uint32),
        "ts_ms": NOW_MS - rng.integers(0, SPAN_MS, size=n, dtype=np.int64),
        "calories": rng.integers(50, 900, size=n).astype(np.float64),
        "osType": rng.integers(0, len(OS_NAMES), size=n),
    }


def _engine(wal_dir: Path | None) -> tuple[Engine, Callable[[], None]]:
    """An engine with its kernels compiled or loaded, as a server has them before SERVING."""
    from core.segments.warmup import warm_up

    warm_up()
    if wal_dir is None:
        return Engine(clock=lambda: NOW_MS), lambda: None
    from snapshots.wal import WriteAheadLog

    wal = WriteAheadLog(wal_dir, 1, fsync_mode="always")
    return Engine(clock=lambda: NOW_MS, journal=wal), wal.close


def _batches(mode: str, events: int, batch: int, contacts: int, seed: int) -> Iterator[Any]:
    maker = EventMaker(contacts, seed)
    rng = np.random.default_rng(seed)
    done = 0
    while done < events:
        n = min(batch, events - done)
        if mode == "columns":
            yield column_batch(n, contacts, rng)
        elif mode == "jsonl":
            yield jsonl_block(maker.batch(n))
        else:
            yield maker.batch(n)
        done += n


def run(mode: str, events: int, batch: int, contacts: int, seed: int, wal_dir: Path | None,
        profiler: cProfile.Profile | None = None) -> dict[str, Any]:
    """Ingests `events` events in batches; returns counts and seconds spent inside ingest."""
    from server.convert import jsonl_to_docs

    engine, close = _engine(wal_dir)
    spent = cpu = 0.0
    accepted = rejected = 0
    first_s = None
    try:
        for payload in _batches(mode, events, batch, contacts, seed):
            if profiler is not None:
                profiler.enable()
            t0, c0 = time.perf_counter(), time.process_time()
            if mode == "columns":
                from core.dictionary import StringDictionary  # noqa: F401  (warm import outside timing)

                n = len(payload["contact"])
                engine.store.append_columns(
                    "AppLaunched", payload["contact"], payload["ts_ms"],
                    {"calories": payload["calories"],
                     "osType": np.asarray(OS_NAMES, dtype=object)[payload["osType"]]},
                )
                accepted += n
            else:
                docs = jsonl_to_docs(payload) if mode == "jsonl" else payload
                report = engine.ingest(docs)
                accepted += report.accepted + report.duplicates
                rejected += report.rejected
            dt = time.perf_counter() - t0
            cpu += time.process_time() - c0
            if profiler is not None:
                profiler.disable()
            if first_s is None:
                first_s = dt
            spent += dt
    finally:
        close()
    return {"mode": mode, "events": accepted + rejected, "accepted": accepted, "rejected": rejected,
            "seconds": round(spent, 3), "first_batch_s": round(first_s or 0.0, 4),
            "events_per_s": round((accepted + rejected) / spent) if spent else 0,
            "cpu_s": round(cpu, 3), "events_per_cpu_s": round((accepted + rejected) / cpu) if cpu else 0,
            "contacts": len(engine.contacts), "stored": engine.store.total_events()}


def _file_blocks(path: str, events: int, batch: int) -> Iterator[bytes]:
    """The first `events` lines of a JSON Lines file in blocks of `batch` lines."""
    lines: list[bytes] = []
    with open(path, "rb") as fh:
        for number, line in enumerate(fh):
            if number >= events:
                break
            lines.append(line)
            if len(lines) == batch:
                yield b"".join(lines)
                lines = []
    if lines:
        yield b"".join(lines)


def steps(events: int, batch: int, contacts: int, seed: int, source: str | None = None) -> dict[str, float]:
    """CPU microseconds per event of each step of the server's jsonl batch path (events of
    the generator, or the first lines of the JSON Lines file `source`)."""
    import gc

    from core import intake
    from core.event_model import leaf_tuples
    from core.jsonl import jsonl_docs
    from core.mapping import place
    from snapshots.wal import encode_record

    engine, _ = _engine(None)
    spent = dict.fromkeys(("decode", "validate", "map", "add", "commit", "journal"), 0.0)
    fused = 0.0  # decode and validate as the server does them: each line parsed as decoded
    count = 0
    collecting = gc.isenabled()
    blocks = _file_blocks(source, events, batch) if source else _batches("jsonl", events, batch, contacts, seed)
    for block in blocks:
        gc.disable()
        t = time.process_time()
        docs = jsonl_docs(block)
        spent["decode"] += (t1 := time.process_time()) - t
        prepared = intake.prepare(docs, block)
        spent["validate"] += time.process_time() - t1
        del docs, prepared
        t1 = time.process_time()
        prepared = intake.prepare_jsonl(block)
        fused += time.process_time() - t1
        evs = [e for e in prepared.events if not isinstance(e, Exception)]
        for e in evs:
            if e.ts_ms is None:
                e.ts_ms = NOW_MS
        t2 = time.process_time()
        placed = [place(engine.contacts, e, engine.store.mapping(e.type), NOW_MS)[0] for e in evs]
        spent["map"] += (t3 := time.process_time()) - t2
        store_batch = engine.store.batch()
        for e, cid in zip(evs, placed):
            store_batch.add(e.type, cid, NOW_MS if e.ts_ms is None else e.ts_ms, e.leaves if e.leaves is not None else leaf_tuples(e.params))
        spent["add"] += (t4 := time.process_time()) - t3
        store_batch.commit()
        spent["commit"] += (t5 := time.process_time()) - t4
        encode_record(1, "ingest", intake._record(prepared, NOW_MS, evs, []))
        spent["journal"] += time.process_time() - t5
        count += len(prepared.events)
        del prepared, evs
        if collecting:
            gc.enable()
    per_event = {k: round(v / count * 1e6, 2) for k, v in spent.items()}
    per_event["total"] = round(sum(spent.values()) / count * 1e6, 2)
    per_event["decode_validate_fused"] = round(fused / count * 1e6, 2)
    per_event["total_fused"] = round((sum(spent.values()) - spent["decode"] - spent["validate"] + fused) / count * 1e6, 2)
    return per_event


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile_ingest", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--contacts", type=int, default=0, help="people in the stream (default events / 20)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--mode", choices=MODES, default="docs")
    ap.add_argument("--wal", action="store_true", help="journal to a write-ahead log in a temp dir (fsync always)")
    ap.add_argument("--profile", action="store_true", help="run again under cProfile and print the top functions")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--steps", action="store_true", help="CPU us/event of each step of the jsonl batch path")
    ap.add_argument("--from-jsonl", metavar="FILE", help="--steps: events from this JSON Lines file instead")
    ap.add_argument("--write-jsonl", metavar="FILE", help="only write the events as JSON Lines to FILE")
    args = ap.parse_args(argv)
    contacts = args.contacts or max(1, args.events // 20)
    if args.write_jsonl:
        with open(args.write_jsonl, "wb") as out:
            for block in _batches("jsonl", args.events, args.batch, contacts, args.seed):
                out.write(block)
        return 0

    if args.steps:
        print(json.dumps({"steps_us_per_event": steps(args.events, args.batch, contacts, args.seed, args.from_jsonl)}))
        return 0

    def once(profiler: cProfile.Profile | None = None) -> dict[str, Any]:
        if not args.wal:
            return run(args.mode, args.events, args.batch, contacts, args.seed, None, profiler)
        with tempfile.TemporaryDirectory(prefix="segmentd-wal-") as tmp:
            return run(args.mode, args.events, args.batch, contacts, args.seed, Path(tmp), profiler)

    result = once()
    result["wal"] = args.wal
    print(json.dumps(result))
    if args.profile:
        profiler = cProfile.Profile()
        once(profiler)
        listing = io.StringIO()
        pstats.Stats(profiler, stream=listing).sort_stats("tottime").print_stats(args.top)
        print(listing.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
