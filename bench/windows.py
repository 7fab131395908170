"""Period kernel paths: each way the windowed kernels can read a period, timed on one table.

For one event type of the dataset, at its fixed ``now``, for periods of the last N days: the
count, min and distinct kernels of ``core.kernels.windows`` with each of their path choices
forced (the module's knobs), and the count of ``core.kernels.aggregates`` that reads every
contact run, run in turn (A B A B ...) with the median of each reported; the paths of one
measure must give the same value per run. The knobs' defaults (SPARSE_SHARE, EXTREME_SHARE,
BITSET_WORDS / BITSET_PER_ENTRY) come from these timings: rerun it to check them elsewhere.
Results go to ``bench/results/windows-<timestamp>.jsonl``, one line per (period, measure, path).

CLI: ``python -m bench.windows --contacts N --events M [--type productViewed]
[--value product.price] [--ids product.categories] [--days 1,7,30,90] [--runs 7]``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench import datagen
from bench.common import ResultWriter, load_columns, median, ms_since, now_s
from core.kernels import aggregates, windows
from core.segments import measures
from core.store import EventStore

DAY_MS = 86_400_000

# measure -> path -> the windows knobs that force it
PATHS: dict[str, dict[str, dict[str, int]]] = {
    "count": {"noted": {"SPARSE_SHARE": 0}, "scanned": {"SPARSE_SHARE": 2**40}},
    "min": {"slots": {"EXTREME_SHARE": 0}, "per-run": {"EXTREME_SHARE": 2**40}},
    "distinct": {"hash": {"BITSET_WORDS": 0, "BITSET_PER_ENTRY": 0}, "bitset": {"BITSET_WORDS": 2**40}},
}


@dataclass(frozen=True, slots=True)
class Layout:
    """One table version's arrays in time-bucket order, as the engine lays them out."""

    buckets: tuple[np.ndarray, np.ndarray, int, int]
    run: np.ndarray
    n_runs: int
    ts_ms: np.ndarray
    run_start: np.ndarray
    ts_rows: np.ndarray  # ts in row (contact) order
    value_offsets: np.ndarray | None
    values: np.ndarray
    id_offsets: np.ndarray | None
    ids: np.ndarray
    n_ids: int


def layout(store: EventStore, type_key: str, value_path: str, ids_path: str) -> Layout:
    """The bucket layout of the type's first shard (its sorted base, every tail merged)."""
    view = store.shards(type_key)[0]
    _, run_start = measures.contact_runs(view)
    bucketed = measures._bucketed(view)
    entry_row, entry_value = measures.numeric_entries(view, value_path, store.dictionary)
    value_offsets, values = measures._in_bucket_order(view, bucketed, entry_row, entry_value)
    id_row, ids, n_ids = measures.distinct_ids(view, ids_path)
    id_offsets, ids_b = measures._in_bucket_order(view, bucketed, id_row, ids)
    return Layout(bucketed.buckets, bucketed.run, bucketed.n_runs, bucketed.ts_ms, run_start, view.ts_ms,
                  value_offsets, values, id_offsets, ids_b, n_ids)


def per_run(result: tuple[np.ndarray, np.ndarray]) -> dict[int, float]:
    """{run: value} of a kernel's (group_run, values)."""
    group, values = result
    return dict(zip(group.tolist(), values.tolist()))


def calls(t: Layout, lo: int, hi: int) -> dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]]:
    """measure -> the kernel call giving (group_run, value) over the period."""
    start, stop = windows.bucket_span(t.buckets, lo, hi)
    common = (start, stop, t.run, t.n_runs, t.ts_ms, None, lo, hi)

    def every_run() -> tuple[np.ndarray, np.ndarray]:
        count = aggregates.count_in_window(t.run_start, t.ts_rows, None, lo, hi)
        return np.flatnonzero(count), count  # every run's count: the run kernels' own output

    return {
        "count": lambda: windows.window_count(*common),
        "count-every-run": every_run,
        "min": lambda: windows.window_extreme(*common, t.value_offsets, t.values, False),
        "distinct": lambda: windows.window_distinct(*common, t.id_offsets, t.ids, t.n_ids,
                                                    measures.entry_rows_of(t.id_offsets)),
    }


def time_paths(fns: dict[str, Callable[[], Any]], runs: int) -> dict[str, list[float]]:
    """Milliseconds per call of each function, taken in turn `runs` times after one warm call each."""
    for fn in fns.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = now_s()
            fn()
            samples[name].append(ms_since(t0))
    return samples


def run(ds: datagen.Dataset, type_key: str, value_path: str, ids_path: str, days: list[int], runs: int,
        writer: ResultWriter, log: Any = sys.stderr) -> int:
    """Times every path; returns 2 when two paths of a measure disagree, else 0."""
    store = EventStore(shard_bits=20)
    load_columns(store, ds)
    t = layout(store, type_key, value_path, ids_path)
    sizes = {"contacts": ds.contacts, "events": ds.events, "type": type_key, "rows": int(t.ts_ms.shape[0]),
             "runs": t.n_runs}
    status = 0
    for d in days:
        lo, hi = ds.now_ms - d * DAY_MS, ds.now_ms + 1
        start, stop = windows.bucket_span(t.buckets, lo, hi)
        fns = calls(t, lo, hi)
        timed: dict[str, Callable[[], Any]] = {}
        answers: dict[str, dict[int, float]] = {}
        for measure, paths in PATHS.items():
            for path, knobs in paths.items():
                def call(knobs: dict[str, int] = knobs, fn: Callable[[], Any] = fns[measure]) -> Any:
                    with windows.forced(**knobs):
                        return fn()
                timed[f"{measure}/{path}"] = call
                answers[f"{measure}/{path}"] = per_run(call())
        timed["count/every-run"] = fns["count-every-run"]
        nonzero, count = fns["count-every-run"]()
        answers["count/every-run"] = per_run((nonzero, count[nonzero]))
        for measure in PATHS:
            same = {k for k in answers if k.startswith(measure + "/")}
            if len({repr(sorted(answers[k].items())) for k in same}) != 1:
                print(f"DISAGREE {measure} over {d} days: paths {sorted(same)}", file=log)
                status = 2
        samples = time_paths(timed, runs)
        for name, ms in samples.items():
            measure, path = name.split("/")
            writer.write({"record": "path", **sizes, "days": d, "period_rows": int(stop - start), "measure": measure,
                          "path": path, "median_ms": round(median(ms), 4), "runs": len(ms)})
        print(f"{d:4d} days, {stop - start:>10,} period rows: " + ", ".join(
            f"{name} {median(ms):.3f}" for name, ms in samples.items()) + " ms", file=log)
    return status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.windows", description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=None, help="dataset directory (generated there when missing)")
    ap.add_argument("--type", default="productViewed", help="event type whose table is read")
    ap.add_argument("--value", default="product.price", help="numeric path of the min kernel")
    ap.add_argument("--ids", default="product.categories", help="path of the distinct kernel")
    ap.add_argument("--days", default="1,7,30,90", help="periods: the last N days, comma-separated")
    ap.add_argument("--runs", type=int, default=7, help="timed calls per path and period")
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args(argv)
    cfg = datagen.GenConfig(contacts=args.contacts, events=args.events, seed=args.seed)
    data = Path(args.data) if args.data else datagen.default_data_dir(args.contacts, args.events, args.seed)
    ds = datagen.ensure_dataset(cfg, data, jsonl=False)
    days = [int(x) for x in args.days.split(",") if x]
    return run(ds, args.type, args.value, args.ids, days, args.runs, ResultWriter("windows", args.out_dir, argv))


if __name__ == "__main__":
    sys.exit(main())
