"""The benchmark clients and serving comparison at toy size against real benchmark servers.

No timing is asserted: only that every phase ran, counted its calls and split their CPU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import datagen, membership, serving
from bench.clients import cpu_seconds
from bench.rpcserver import ServerKnobs

CONTACTS = 300
EVENTS = 3000


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> datagen.Dataset:
    cfg = datagen.GenConfig(contacts=CONTACTS, events=EVENTS, seed=5)
    return datagen.generate(cfg, tmp_path_factory.mktemp("data"))


def _lines(out: Path, kind: str) -> list[dict[str, Any]]:
    files = sorted(out.glob(f"{kind}-*.jsonl"))
    assert files, f"no {kind} result file in {out}"
    return [json.loads(x) for f in files for x in f.read_text().splitlines() if x.strip()]


def test_cpu_seconds_grows_with_work() -> None:
    before = cpu_seconds()
    total = 0
    while cpu_seconds() - before < 0.05:  # a clock tick is 10 ms: spin until a few have passed
        total += sum(range(10_000))
    assert cpu_seconds() > before and total > 0


def test_membership_sweeps_client_counts_modes_and_rates(dataset: datagen.Dataset, tmp_path: Path) -> None:
    args = ["--contacts", str(CONTACTS), "--events", str(EVENTS), "--seed", "5", "--data", str(dataset.root),
            "--out-dir", str(tmp_path), "--seconds", "3", "--clients", "1,2", "--client-mode", "threads,aio",
            "--rate", "50", "--batch", "20", "--segments", "6"]
    assert membership.main(args) == 0
    lines = _lines(tmp_path, "membership")
    single = [ln for ln in lines if ln["phase"] == "single"]
    assert sorted((ln["client"], ln["threads"]) for ln in single) == [
        ("aio", 1), ("aio", 2), ("threads", 1), ("threads", 2)]
    for ln in single:
        assert ln["requests"] > 0 and ln["errors"] == 0
        assert ln["server_cpu_us_per_call"] > 0 and ln["client_cpu_us_per_call"] >= 0
        assert ln["server"]["quick_workers"] >= 0
    (open_loop,) = [ln for ln in lines if ln["phase"] == "single_open"]
    assert open_loop["rate_target"] == 50 and open_loop["requests"] > 0 and open_loop["skipped"] == 0
    assert open_loop["latency_from_send_ms"]["p50"] <= open_loop["latency_ms"]["p99"]
    (listed,) = [ln for ln in lines if ln["phase"] == "list"]
    assert all(x["agree"] for x in listed["lists"])
    assert listed["small_calls"] > 0 and listed["small_ids_per_s"] is not None


def test_serving_compares_variants_round_by_round(dataset: datagen.Dataset, tmp_path: Path) -> None:
    args = ["--contacts", str(CONTACTS), "--events", str(EVENTS), "--seed", "5", "--data", str(dataset.root),
            "--out-dir", str(tmp_path), "--rounds", "2", "--seconds", "0.5", "--clients", "1",
            'lane={"quick_workers": 2}', 'bare={"chain": "none"}']
    assert serving.main(args) == 0
    lines = _lines(tmp_path, "serving")
    assert sorted(ln["variant"] for ln in lines) == ["bare", "lane"]
    for ln in lines:
        assert ln["rounds"] == 2 and len(ln["each"]) == 2 and ln["errors"] == 0
        assert all(r["requests"] > 0 for r in ln["each"])
        assert ln["server_cpu_us_per_call"] > 0
    assert serving.parse_variant('x={"workers": 3}') == ("x", ServerKnobs(workers=3))
    with pytest.raises(ValueError):
        serving.parse_variant("no-json-here")
