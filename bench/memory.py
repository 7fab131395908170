"""Memory per contact and per event: resident set size of an in-process engine as it loads.

Upserts the dataset's contacts, then ingests its events chunk by chunk, sampling this
process's RSS (after a garbage collection) and the store's own byte count after each chunk.
Bytes per event is the least-squares slope of RSS over events stored; bytes per contact the
RSS growth of the contact upload over the contacts. With ``--duckdb`` it also records what
DuckDB reports for the same data in its own memory. Results:
``bench/results/memory-<timestamp>.jsonl``.

CLI: ``python -m bench.memory --contacts N --events M [--seconds 600] [--duckdb]``.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench import datagen
from bench.common import Deadline, ResultWriter, load_columns, now_s, rss_bytes


def _rss() -> int:
    gc.collect()
    return rss_bytes()


def run(ds: datagen.Dataset, *, seconds: float, shard_bits: int = 20, batch: int = 5000,
        loader: str = "columns") -> dict[str, Any]:
    """Loads the dataset into a fresh engine, sampling RSS and store bytes along the way."""
    from core import trim
    from core.engine import Engine

    deadline = Deadline(seconds)
    rss_start = _rss()
    engine = Engine(clock=lambda: ds.now_ms, shard_bits=shard_bits)
    rss_engine = _rss()
    t0 = now_s()
    for docs in datagen.iter_contact_docs(ds, batch):
        engine.upsert_contacts(docs)
    contacts_s = now_s() - t0
    rss_contacts = _rss()
    points: list[tuple[int, int, int]] = [(0, rss_contacts, int(engine.store.nbytes()))]
    every = max(batch, ds.events // 20)  # about 20 samples
    next_sample = [every]

    def sample(stored: int) -> None:
        if stored >= next_sample[0] or deadline.passed():
            points.append((stored, _rss(), int(engine.store.nbytes())))
            next_sample[0] = stored + every

    t1 = now_s()
    stored = 0
    if loader == "columns":
        stored = load_columns(engine.store, ds, deadline, on_chunk=sample)
    else:
        for docs in datagen.iter_event_docs(ds, batch):
            stored += engine.ingest(docs).accepted
            sample(stored)
            if deadline.passed():
                break
    events_s = now_s() - t1
    if points[-1][0] != stored:
        points.append((stored, _rss(), int(engine.store.nbytes())))
    t2 = now_s()
    for key in engine.store.type_keys():
        engine.store.shards(key)  # tails merged into sorted bases: the steady layout
    trim.release(force=True)  # as the compactor does after its merge rounds
    settle_s = now_s() - t2
    settled = (stored, _rss(), int(engine.store.nbytes()))
    ev = np.array([p[0] for p in points], dtype=np.float64)
    rss = np.array([p[1] for p in points], dtype=np.float64)
    slope = float(np.polyfit(ev, rss, 1)[0]) if len(points) >= 3 else (
        float((rss[-1] - rss[0]) / ev[-1]) if ev[-1] else float("nan"))
    return {
        "contacts": ds.contacts, "events": ds.events, "seed": ds.meta["seed"], "events_stored": stored,
        "complete": stored == ds.events, "loader": loader,
        "rss_start_bytes": rss_start, "rss_engine_bytes": rss_engine, "rss_contacts_bytes": rss_contacts,
        "rss_end_bytes": settled[1], "rss_loaded_bytes": points[-1][1],
        "bytes_per_contact": round((rss_contacts - rss_engine) / max(1, ds.contacts), 1),
        "bytes_per_event_slope": round(slope, 1),
        "bytes_per_event_overall": round((settled[1] - rss_contacts) / max(1, stored), 1),
        "bytes_per_event_all_in": round((settled[1] - rss_start) / max(1, stored), 1),
        "store_bytes": settled[2], "store_bytes_per_event": round(settled[2] / max(1, stored), 1),
        "contacts_s": round(contacts_s, 3), "events_s": round(events_s, 3), "settle_s": round(settle_s, 3),
        "breakdown": breakdown(engine),
        "samples": [{"events": p[0], "rss_bytes": p[1], "store_bytes": p[2]} for p in points],
    }


def breakdown(engine: Any) -> dict[str, Any]:
    """Where the store's bytes go, over the sorted versions of every table: the per-event
    arrays (contact, ts_ms, arrival), and per column kind the entry row arrays (a row array
    shared by dense columns counted once), values and item ordinals; plus the dictionary."""
    from core.columns import KIND_NAMES

    parts: dict[str, int] = {"contact": 0, "ts_ms": 0, "arrival": 0}
    per_type: dict[str, int] = {}
    entries = 0
    for key in engine.store.type_keys():
        total = 0
        for v in engine.store.shards(key):
            seen: set[int] = set()
            for name, arr in (("contact", v.contact), ("ts_ms", v.ts_ms), ("arrival", v.arrival_offset)):
                parts[name] += int(arr.nbytes)
                total += int(arr.nbytes)
            for (_, kind), col in v.columns.items():
                label = KIND_NAMES[kind]
                entries += len(col)
                arrays = [("rows", col.row), ("values", col.values)] + [("items", a) for a in col.items.values()]
                for what, arr in arrays:
                    if id(arr) in seen:
                        continue
                    seen.add(id(arr))
                    parts[f"{label}.{what}"] = parts.get(f"{label}.{what}", 0) + int(arr.nbytes)
                    total += int(arr.nbytes)
        per_type[key] = total
    events = max(1, engine.store.total_events())
    dictionary = engine.store.dictionary
    parts["dictionary"] = int(dictionary.nbytes)
    return {
        "bytes": parts, "bytes_per_event": {k: round(b / events, 2) for k, b in parts.items()},
        "column_entries": entries, "dictionary_strings": len(dictionary),
        "per_type_bytes_per_event": {k: round(b / max(1, engine.store.type_info(k).count), 1)
                                     for k, b in per_type.items()},
    }


def duckdb_memory(ds: datagen.Dataset) -> dict[str, Any]:
    """What DuckDB reports holding for the same dataset (its buffer manager's count)."""
    from bench import peer_duckdb

    peer = peer_duckdb.load_peer(ds)
    try:
        used = peer.con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()
        return {"duckdb_memory_bytes": int(used[0] or 0) if used else None,
                "duckdb_bytes_per_event": round(int(used[0] or 0) / max(1, ds.events), 1) if used else None}
    finally:
        peer.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--seconds", type=float, default=600.0, help="stop loading after this long")
    ap.add_argument("--shard-bits", type=int, default=20)
    ap.add_argument("--loader", choices=("columns", "documents"), default="columns",
                    help="bulk-load leaf columns, or ingest the documents through Engine.ingest")
    ap.add_argument("--duckdb", action="store_true", help="also record DuckDB's memory for the same data")
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args(argv)
    cfg = datagen.GenConfig(contacts=args.contacts, events=args.events, seed=args.seed)
    data = Path(args.data) if args.data else datagen.default_data_dir(args.contacts, args.events, args.seed)
    ds = datagen.ensure_dataset(cfg, data, jsonl=False)
    rec = run(ds, seconds=args.seconds, shard_bits=args.shard_bits, loader=args.loader)
    if args.duckdb:
        rec.update(duckdb_memory(ds))
    writer = ResultWriter("memory", args.out_dir, argv)
    writer.write(rec)
    print(f"{rec['events_stored']:,} events, {ds.contacts:,} contacts: {rec['bytes_per_event_slope']:.0f} B/event "
          f"(RSS slope), {rec['store_bytes_per_event']:.0f} B/event (store), {rec['bytes_per_contact']:.0f} B/contact; "
          f"RSS {rec['rss_end_bytes'] / 2**20:.0f} MiB", file=sys.stderr)
    print(f"wrote {writer.path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
