"""bench/realtime.py at toy size: a real server on loopback, every sent event seen once."""

from __future__ import annotations

import json
from pathlib import Path

from bench import realtime


def test_event_line_names_fresh_pairs() -> None:
    keys = [realtime.event_line(i, 4, 10)[1] for i in range(40)]
    assert len(set(keys)) == 40
    line, key = realtime.event_line(5, 4, 10)
    doc = json.loads(line)
    assert key == ("rt-001", 2) and doc["params"]["rt"] == 1 and doc["params"]["externalCustomerId"] == "C-2"


def test_latency_every_sent_event_enters_one_segment(tmp_path: Path) -> None:
    out = tmp_path / "results"
    status = realtime.main(["latency", "--contacts", "300", "--events", "3000", "--segments", "3", "--rate", "150,300",
                            "--seconds", "1", "--batch", "25", "--senders", "2", "--out-dir", str(out),
                            "--work-dir", str(tmp_path)])
    assert status == 0
    (path,) = out.glob("realtime-*.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["rate_offered"] for r in records] == [150.0, 300.0]
    for rec in records:
        assert rec["kind"] == "realtime" and rec["mode"] == "latency" and rec["events"] == 3000
        assert rec["events_sent"] > 0 and rec["accepted"] == rec["events_sent"] and rec["rejected"] == 0
        # exactly one entry change per sent event, nothing else
        assert rec["changes_matched"] == rec["events_sent"]
        assert rec["missing"] == 0 and rec["unexpected"] == 0 and rec["errors"] == 0
        assert rec["latency_ms"]["p50"] <= rec["latency_ms"]["p99"] <= rec["latency_ms"]["max"]
    assert not any(p.name.startswith("segmentd-realtime-") for p in tmp_path.iterdir())  # cleaned up


def test_ticks_reports_every_phase(tmp_path: Path) -> None:
    out = tmp_path / "results"
    status = realtime.main(["ticks", "--contacts", "500", "--events", "5000", "--segments", "10", "--ticks", "3",
                            "--minutes", "2", "--seconds", "30", "--out-dir", str(out)])
    assert status == 0
    (path,) = out.glob("realtime-*.jsonl")
    records = {r["phase"]: r for r in map(json.loads, path.read_text().splitlines())}
    assert list(records) == ["build", "tick_1s", "step_60s", "midnight"]
    assert records["build"]["events"] == 5000 and records["build"]["members_max"] > 0
    assert records["tick_1s"]["steps"] == 3 and records["step_60s"]["steps"] == 2
    assert records["midnight"]["changes"] > 0  # "today" segments empty out at midnight
