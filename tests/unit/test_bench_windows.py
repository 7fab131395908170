"""The period kernel driver (bench.windows) runs at toy size: every path of every measure gives
the same values and writes a result line; no timings are asserted."""

from __future__ import annotations

import json
from pathlib import Path

from bench import datagen, windows


def test_window_paths_driver(tmp_path: Path) -> None:
    cfg = datagen.GenConfig(contacts=300, events=4000, seed=7)
    ds = datagen.generate(cfg, tmp_path / "data")
    out = tmp_path / "out"
    argv = ["--contacts", "300", "--events", "4000", "--seed", "7", "--data", str(ds.root), "--days", "1,30,400",
            "--runs", "1", "--out-dir", str(out)]
    assert windows.main(argv) == 0
    lines = [json.loads(x) for f in out.glob("windows-*.jsonl") for x in f.read_text().splitlines()]
    paths = {(ln["days"], ln["measure"], ln["path"]) for ln in lines}
    every = {(m, p) for m, ps in windows.PATHS.items() for p in ps} | {("count", "every-run")}
    assert paths == {(d, m, p) for d in (1, 30, 400) for m, p in every}
    assert all(ln["kind"] == "windows" and ln["median_ms"] >= 0 for ln in lines)
