"""Memory-bandwidth probe: what one core can stream, to put scan timings in proportion.

Measures, over an array much larger than the caches: a sequential read (``sum``), a copy
(read + write, counted as 2x the array), a gather through a random permutation of row ids
(what a per-contact lookup costs), and a compiled scan counting int64 timestamps at or after
a bound (the kernels' jit configuration, no temporaries: what a window count reads).
Reports GB/s (10^9 bytes per second), best of the runs.

CLI: ``python -m bench.bandwidth [--mib 512] [--runs 5] [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

import numpy as np

from bench.common import Deadline, ResultWriter, ms_since, now_s
from core.kernels.jit import jit


def _count_at_least(x: np.ndarray, lo: int) -> int:
    n = 0
    for i in range(x.shape[0]):
        if x[i] >= lo:
            n += 1
    return n


_count = jit(_count_at_least)  # the project's one jit configuration: a window scan over int64 times


def _best_seconds(fn: Callable[[], Any], runs: int, deadline: Deadline) -> tuple[float, int]:
    fn()  # warm: page faults, compilation
    best = float("inf")
    done = 0
    while done < runs and (done == 0 or not deadline.passed()):
        t0 = now_s()
        fn()
        best = min(best, ms_since(t0) / 1000.0)
        done += 1
    return best, done


def probe(mib: int = 512, runs: int = 5, seconds: float = 60.0) -> dict[str, Any]:
    """GB/s of sequential read, copy, gather and a compiled int64 window scan."""
    deadline = Deadline(seconds)
    n = mib * 2**20 // 8
    a = np.arange(n, dtype=np.float64)
    b = np.empty_like(a)
    nbytes = a.nbytes
    out: dict[str, Any] = {"array_mib": mib}

    s, k = _best_seconds(lambda: a.sum(), runs, deadline)
    out["read_sum_gbs"] = round(nbytes / s / 1e9, 3)
    s, k = _best_seconds(lambda: np.copyto(b, a), runs, deadline)
    out["copy_gbs"] = round(2 * nbytes / s / 1e9, 3)
    gather_n = min(n, 16 * 2**20)
    idx = np.random.default_rng(0).permutation(n)[:gather_n]
    s, k = _best_seconds(lambda: a[idx].sum(), runs, deadline)
    out["gather_rows_per_s"] = round(gather_n / s, 1)
    out["gather_gbs"] = round(gather_n * 16 / s / 1e9, 3)  # 8 B index + 8 B value per row
    ts = np.arange(n, dtype=np.int64)
    b = np.empty(0)  # free the copy target before the next probe
    s, k = _best_seconds(lambda: _count(ts, n // 2), runs, deadline)
    out["numba_read_gbs"] = round(ts.nbytes / s / 1e9, 3)
    out["runs"] = runs
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bandwidth", description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=512, help="array size in MiB (keep well above the caches)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=60.0, help="time limit")
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args(argv)
    res = probe(args.mib, args.runs, args.seconds)
    writer = ResultWriter("bandwidth", args.out_dir, argv)
    writer.write(res)
    print(" ".join(f"{k}={v}" for k, v in res.items()), file=sys.stdout)
    print(f"wrote {writer.path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
