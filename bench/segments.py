"""Segment build latency: segmentd (Engine.evaluate, in-process) against DuckDB, suite by suite.

For every entry of ``bench.suite`` at the dataset's fixed ``now``: the first evaluation
(which may compile kernels) and the median of steady-state evaluations, for segmentd and for
DuckDB, and whether the two agree on the members. segmentd runs the whole suite first and is
let go before DuckDB loads the same events, so only one of them is in memory at a time. Disagreements are printed with example ids
and make the run exit with status 2; a segment segmentd cannot evaluate exits 3. Results go to
``bench/results/segments-<timestamp>.jsonl`` (one line per segment plus a summary line).

CLI: ``python -m bench.segments --contacts N --events M [--seed S] [--runs K] [--seconds T]``.
"""

from __future__ import annotations

import argparse
import gc
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bench import datagen, peer_duckdb
from bench.common import Deadline, ResultWriter, load_engine, now_s, rss_bytes, time_call
from bench.suite import SuiteEntry, build_suite

EXIT_DISAGREE = 2
EXIT_UNSUPPORTED = 3


def _ids(bitmap: Any) -> np.ndarray:
    return np.fromiter(iter(bitmap), dtype=np.uint32, count=len(bitmap)) if len(bitmap) else np.zeros(0, np.uint32)


def compare(seg_ids: np.ndarray, duck_ids: np.ndarray, examples: int = 5) -> dict[str, Any]:
    """Whether two sorted id sets are equal, with a few ids found by one side only."""
    only_seg = np.setdiff1d(seg_ids, duck_ids, assume_unique=True)
    only_duck = np.setdiff1d(duck_ids, seg_ids, assume_unique=True)
    return {
        "agree": not len(only_seg) and not len(only_duck),
        "only_segmentd": int(len(only_seg)),
        "only_duckdb": int(len(only_duck)),
        "only_segmentd_examples": only_seg[:examples].tolist(),
        "only_duckdb_examples": only_duck[:examples].tolist(),
    }


def run(
    ds: datagen.Dataset,
    *,
    runs: int = 5,
    seconds: float = 600.0,
    load_seconds: float | None = None,
    columns: bool = True,
    only: set[str] | None = None,
    shard_bits: int = 20,
    duckdb_threads: int | None = None,
    duckdb: bool = True,
    writer: ResultWriter | None = None,
    log: Any = sys.stderr,
) -> int:
    """Runs the suite against both systems; returns the process exit status.

    `load_seconds` bounds segmentd's load: when it runs out, both systems hold the same
    prefix of the event stream and the comparison runs on that. `seconds` bounds the timed part.
    """
    writer = writer or ResultWriter("segments")
    entries: list[SuiteEntry] = [e for e in build_suite(ds.now_ms) if not only or e.name in only]

    from core.engine import Engine

    rss0 = rss_bytes()
    engine = Engine(clock=lambda: ds.now_ms, shard_bits=shard_bits)
    load = load_engine(engine, ds, seconds=load_seconds, columns=columns)
    engine_rss = rss_bytes() - rss0
    print(f"segmentd loaded {load['events']:,} events ({load['loader']}) in {load['events_s']:.1f} s "
          f"(+{load['contacts_s']:.1f} s contacts, +{load.get('settle_s', 0.0):.1f} s merging tails)"
          f"{'' if load['complete'] else ' (load time limit reached)'}; RSS {engine_rss / 2**30:.2f} GiB, "
          f"store {engine.store.nbytes() / max(1, load['events']):.0f} B/event", file=log)
    sizes = {"contacts": ds.contacts, "events": load["events"], "dataset_events": ds.events,
             "seed": ds.meta["seed"], "as_of_ms": ds.now_ms}

    deadline = Deadline(seconds)
    per_budget = max(1.0, deadline.left() / max(1, 2 * len(entries)))
    status = 0
    ours: dict[str, Any] = {}
    for e in entries:  # segmentd first, then it is let go before DuckDB loads: one in memory at a time
        try:
            ours[e.name] = time_call(lambda: engine.evaluate(e.definition, ds.now_ms), runs=runs,
                                     seconds=min(per_budget, deadline.left()))
        except Exception as exc:  # noqa: BLE001 - an engine gap is reported, not fatal to the run
            ours[e.name] = exc
            print(f"UNSUPPORTED {e.name}: {type(exc).__name__}: {exc}", file=log)
            traceback.print_exc(limit=3, file=log)
            status = status or EXIT_UNSUPPORTED
    store_bytes = int(engine.store.nbytes())
    del engine
    gc.collect()

    rows: list[dict[str, Any]] = []
    if not duckdb:
        for e in entries:
            t = ours[e.name]
            rec = {"record": "segment", "segment": e.name, "families": list(e.families), **sizes}
            if isinstance(t, Exception):
                rec.update({"error": f"{type(t).__name__}: {t}", "agree": False})
            else:
                rec.update({"segmentd_first_ms": round(t.first_ms, 4), "segmentd_median_ms": round(t.median_ms, 4),
                            "segmentd_runs": t.runs, "members": int(len(t.value)), "agree": None})
                print(f"    {e.name:40s} members {len(t.value):>9,} | segmentd {t.first_ms:9.2f} first "
                      f"{t.median_ms:9.3f} ms", file=log)
            rows.append(writer.write(rec))
        done = [r for r in rows if "segmentd_median_ms" in r]
        writer.write({"record": "summary", **sizes, "segments": len(entries), "evaluated": len(done),
                      "peer": None, "segmentd_total_median_ms": round(sum(r["segmentd_median_ms"] for r in done), 3),
                      "segmentd_load": load, "segmentd_rss_bytes": engine_rss, "segmentd_store_bytes": store_bytes,
                      "status": status})
        print(f"segmentd only; wrote {writer.path}", file=log)
        return status

    t0 = now_s()
    peer = peer_duckdb.load_peer(ds, duckdb_threads, events=load["events"])
    duck_load_s = now_s() - t0
    threads = int(peer.con.execute("SELECT current_setting('threads')").fetchone()[0])  # type: ignore[index]
    print(f"duckdb {peer_duckdb.version()} loaded in {duck_load_s:.2f} s ({threads} threads); "
          f"process RSS {rss_bytes() / 2**30:.2f} GiB", file=log)
    for e in entries:
        d = peer.time_query(e.sql, runs=runs, seconds=min(per_budget, max(1.0, deadline.left())))
        rec: dict[str, Any] = {"record": "segment", "segment": e.name, "families": list(e.families), **sizes,
                               "duckdb_threads": threads, "duckdb_first_ms": round(d.first_ms, 4),
                               "duckdb_median_ms": round(d.median_ms, 4), "duckdb_runs": d.runs,
                               "duckdb_members": int(len(d.ids))}
        t = ours[e.name]
        if isinstance(t, Exception):
            rec.update({"error": f"{type(t).__name__}: {t}", "agree": False})
            rows.append(writer.write(rec))
            continue
        seg_ids = _ids(t.value)
        cmp = compare(seg_ids, d.ids)
        rec.update({"segmentd_first_ms": round(t.first_ms, 4), "segmentd_median_ms": round(t.median_ms, 4),
                    "segmentd_runs": t.runs, "members": int(len(seg_ids)), **cmp,
                    "speedup_vs_duckdb": round(d.median_ms / t.median_ms, 3) if t.median_ms > 0 else None})
        rows.append(writer.write(rec))
        mark = "ok " if cmp["agree"] else "DISAGREE"
        print(f"{mark} {e.name:40s} members {len(seg_ids):>9,} | segmentd {t.first_ms:9.2f} first "
              f"{t.median_ms:9.3f} ms | duckdb {d.first_ms:9.2f} first {d.median_ms:9.3f} ms", file=log)
        if not cmp["agree"]:
            print(f"    segmentd {len(seg_ids):,} vs duckdb {len(d.ids):,}; only segmentd e.g. "
                  f"{cmp['only_segmentd_examples']}, only duckdb e.g. {cmp['only_duckdb_examples']}", file=log)
            status = EXIT_DISAGREE
    done = [r for r in rows if "segmentd_median_ms" in r]
    summary = {
        "record": "summary", **sizes, "segments": len(entries), "evaluated": len(done),
        "agreed": sum(1 for r in done if r["agree"]), "errors": sum(1 for r in rows if "error" in r),
        "segmentd_total_median_ms": round(sum(r["segmentd_median_ms"] for r in done), 3),
        "duckdb_total_median_ms": round(sum(r["duckdb_median_ms"] for r in done), 3),
        "segmentd_total_first_ms": round(sum(r["segmentd_first_ms"] for r in done), 3),
        "duckdb_total_first_ms": round(sum(r["duckdb_first_ms"] for r in done), 3),
        "duckdb_load_s": round(duck_load_s, 3), "duckdb_threads": threads,
        "segmentd_load": load, "segmentd_rss_bytes": engine_rss, "segmentd_store_bytes": store_bytes,
        "status": status,
    }
    if done and summary["segmentd_total_median_ms"] > 0:
        summary["speedup_total"] = round(summary["duckdb_total_median_ms"] / summary["segmentd_total_median_ms"], 3)
    writer.write(summary)
    peer.close()
    print(f"{summary['agreed']}/{len(entries)} segments agree; totals (median): segmentd "
          f"{summary['segmentd_total_median_ms']:.2f} ms, duckdb {summary['duckdb_total_median_ms']:.2f} ms; "
          f"wrote {writer.path}", file=log)
    return status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.segments", description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=None, help="dataset directory (generated there when missing)")
    ap.add_argument("--runs", type=int, default=5, help="steady-state runs per segment and system")
    ap.add_argument("--seconds", type=float, default=600.0, help="time limit for the timed part")
    ap.add_argument("--load-seconds", type=float, default=900.0,
                    help="time limit for segmentd's load (then both systems use the prefix loaded)")
    ap.add_argument("--only", default="", help="comma-separated segment names")
    ap.add_argument("--loader", choices=("columns", "documents"), default="columns",
                    help="load segmentd with the bulk loader (leaf columns of every type), or with "
                         "Engine.ingest of the documents")
    ap.add_argument("--shard-bits", type=int, default=20)
    ap.add_argument("--duckdb-threads", type=int, default=None)
    ap.add_argument("--no-duckdb", action="store_true", help="time segmentd only (when DuckDB does not fit too)")
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args(argv)
    cfg = datagen.GenConfig(contacts=args.contacts, events=args.events, seed=args.seed)
    data = Path(args.data) if args.data else datagen.default_data_dir(args.contacts, args.events, args.seed)
    ds = datagen.ensure_dataset(cfg, data, jsonl=False)
    only = {s for s in args.only.split(",") if s} or None
    return run(ds, runs=args.runs, seconds=args.seconds, load_seconds=args.load_seconds,
               columns=args.loader == "columns", only=only,
               shard_bits=args.shard_bits, duckdb_threads=args.duckdb_threads, duckdb=not args.no_duckdb,
               writer=ResultWriter("segments", args.out_dir, argv))


if __name__ == "__main__":
    raise SystemExit(main())
