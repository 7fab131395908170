"""Every bench entry point runs at toy size and writes result lines; no timings are asserted.

The segment driver must find segmentd and DuckDB in exact agreement on every suite segment
(those tests skip where DuckDB is not installed: it comes with the `bench` extra). The gRPC
drivers run a real benchmark server process on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from bench import (
    bandwidth,
    datagen,
    eventdocs,
    ingest,
    membership,
    memory,
    mixed,
    report,
    vocab,
)
from bench.suite import build_suite

CONTACTS = 300
EVENTS = 4000


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> datagen.Dataset:
    cfg = datagen.GenConfig(contacts=CONTACTS, events=EVENTS, seed=7)  # the drivers' config
    return datagen.generate(cfg, tmp_path_factory.mktemp("data"))


def _data_args(ds: datagen.Dataset, out: Path) -> list[str]:
    return ["--contacts", str(CONTACTS), "--events", str(EVENTS), "--seed", "7", "--data", str(ds.root),
            "--out-dir", str(out)]


SEGMENT_RPCS = ("PutSegment", "CountMembers", "ListMembers", "CheckMembership")


def _served(rpc: str) -> bool:
    """Whether the servicer implements `rpc` (the generated base answers UNIMPLEMENTED)."""
    from server.pb import segmentd_pb2_grpc as pb_grpc
    from server.servicer import Servicer

    return getattr(Servicer, rpc) is not getattr(pb_grpc.SegmentdServicer, rpc)


def _require_segment_rpcs() -> None:
    missing = [m for m in SEGMENT_RPCS if not _served(m)]
    if missing:
        pytest.skip(f"server does not implement {', '.join(missing)} yet")


def _lines(out: Path, kind: str) -> list[dict[str, Any]]:
    files = sorted(out.glob(f"{kind}-*.jsonl"))
    assert files, f"no {kind} result file in {out}"
    lines = [json.loads(x) for f in files for x in f.read_text().splitlines() if x.strip()]
    assert lines and all(ln["kind"] == kind and ln["machine"]["cores"] for ln in lines)
    return lines


def test_datagen_forms_agree(dataset: datagen.Dataset, tmp_path: Path) -> None:
    assert len(dataset.events_jsonl.read_text().splitlines()) == EVENTS
    assert len(dataset.contacts_jsonl.read_text().splitlines()) == CONTACTS
    assert sum(dataset.meta["event_counts"].values()) == EVENTS
    # several chunks go through the parallel writer; the JSONL equals the documents of the columns
    cfg = datagen.GenConfig(contacts=CONTACTS, events=EVENTS, seed=7, chunk_events=1500)
    chunked = datagen.generate(cfg, tmp_path / "a")
    assert len(chunked.event_chunks()) == 3
    lines = chunked.events_jsonl.read_text().splitlines()
    from_columns = [json.dumps(d, separators=(",", ":")) for docs in datagen.iter_event_docs(chunked) for d in docs]
    assert from_columns == lines and len(lines) == EVENTS
    sliced = [json.dumps(d, separators=(",", ":")) for docs in datagen.iter_event_docs(chunked, 700) for d in docs]
    assert sliced == lines
    again = datagen.generate(cfg, tmp_path / "b")
    assert hashlib.sha256(again.events_jsonl.read_bytes()).digest() == hashlib.sha256(
        chunked.events_jsonl.read_bytes()).digest()
    stamps = [json.loads(x)["timestamp"] for x in lines]
    ms = [s if isinstance(s, int) else None for s in stamps]
    assert all(m is None or m <= dataset.now_ms for m in ms)
    cols = dataset.contact_columns()
    assert len(cols["city"]) == CONTACTS and 0 < int(cols["has_email"].sum()) < CONTACTS


def test_suite_covers_every_condition_family(dataset: datagen.Dataset) -> None:
    from core.segments.definition import parse_definition

    entries = build_suite(dataset.now_ms)
    assert len(entries) >= 12 and len({e.name for e in entries}) == len(entries)
    for e in entries:
        parse_definition(e.definition)
        assert "SELECT" in e.sql
    families = {f.split(".")[0] for e in entries for f in e.families}
    for need in ("count", "sum", "avg", "min", "max", "distinct", "first", "last", "daysSinceLast", "streak",
                 "nested-param", "array-param", "any", "attribute", "all", "not", "numeric-strings"):
        assert need in families, need


def test_segments_driver_agrees_with_duckdb(dataset: datagen.Dataset, tmp_path: Path) -> None:
    pytest.importorskip("duckdb")
    from bench import segments

    status = segments.main([*_data_args(dataset, tmp_path), "--runs", "1"])
    lines = _lines(tmp_path, "segments")
    per = [ln for ln in lines if ln["record"] == "segment"]
    assert len(per) == len(build_suite(dataset.now_ms))
    bad = [(ln["segment"], ln.get("error") or (ln.get("members"), ln["duckdb_members"]))
           for ln in per if not ln["agree"]]
    assert not bad, bad
    assert all(ln["members"] == ln["duckdb_members"] for ln in per)
    assert any(ln["members"] > 0 for ln in per)
    assert status == 0


def test_bounded_load_compares_the_same_prefix(dataset: datagen.Dataset) -> None:
    pytest.importorskip("duckdb")
    from bench.common import load_engine
    from bench.peer_duckdb import load_peer
    from core.engine import Engine

    engine = Engine(clock=lambda: dataset.now_ms)
    load = load_engine(engine, dataset, batch=1000, seconds=0.0)
    assert load["events"] == 1000 and not load["complete"]
    peer = load_peer(dataset, events=1000)
    tables = peer.row_counts()
    assert sum(n for t, n in tables.items() if t in {"product_viewed", "category_viewed", "cart_updated", "purchase",
               "search_request", "app_install", "app_launched", "workout_started", "email_opened",
               "webpush_subscribed"}) == 1000
    for e in build_suite(dataset.now_ms)[:6]:
        assert sorted(engine.evaluate(e.definition, dataset.now_ms)) == peer.members(e.sql).tolist(), e.name
    peer.close()


def test_columnar_loader_gives_the_same_members(dataset: datagen.Dataset) -> None:
    from bench.common import load_engine
    from core.engine import Engine

    by_docs, by_columns = Engine(clock=lambda: dataset.now_ms), Engine(clock=lambda: dataset.now_ms)
    assert load_engine(by_docs, dataset)["loader"] == "documents"
    assert load_engine(by_columns, dataset, columns=True)["loader"] == "columns"
    assert by_docs.store.total_events() == by_columns.store.total_events() == EVENTS
    for e in build_suite(dataset.now_ms):
        assert by_docs.evaluate(e.definition, dataset.now_ms) == by_columns.evaluate(e.definition, dataset.now_ms)
    assert by_docs.store.type_keys() == by_columns.store.type_keys() == sorted(vocab.EVENT_TYPES)
    for name in vocab.EVENT_TYPES:  # paths, kinds, counts and examples of nested types too
        assert by_docs.store.type_info(name) == by_columns.store.type_info(name)


def test_leaf_columns_store_what_the_documents_store(dataset: datagen.Dataset) -> None:
    from bench import columnar
    from core.bulk import append_leaves
    from core.event_model import flatten
    from core.events import parse_event
    from core.store import EventStore

    contacts = dataset.contact_columns()
    builder = columnar.LeafColumnsBuilder(contacts)
    chunk = datagen.load_chunk(dataset.event_chunks()[0])
    docs = eventdocs.ChunkDocs(chunk, contacts).docs()
    parts = columnar.chunk_columns(builder, chunk)
    assert [p.type_key for p in parts] == list(vocab.EVENT_TYPES)
    for part in parts:
        bulk, one_by_one = EventStore(shard_bits=8), EventStore(shard_bits=8)  # contacts span two shards
        append_leaves(bulk, part.type_key, part.contact, part.ts_ms, part.columns)
        mine = [d for d in docs if d["eventTypeKey"] == part.type_key]
        assert len(mine) == len(part.contact)
        for doc, contact in zip(mine, part.contact.tolist()):
            event = parse_event(doc)
            one_by_one.append(event.type, contact, event.ts_ms, flatten(event.params))
        assert bulk.to_state().keys() == one_by_one.to_state().keys()
        assert _state(bulk) == _state(one_by_one), part.type_key


def _state(store: Any) -> Any:
    """The store's full state with arrays as (dtype, bytes), plus its dictionary's counts."""
    import numpy as np

    def plain(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, list):
            return [plain(v) for v in x]
        if isinstance(x, np.ndarray):
            return (str(x.dtype), x.shape, x.tobytes())
        return (type(x).__name__, x)

    d = store.dictionary
    return plain(store.to_state()), [d.refs(c) for c in range(len(d))], [i.__dict__ for i in store.types()]


def test_restart_driver(dataset: datagen.Dataset, tmp_path: Path) -> None:
    from bench import restart

    data_dir = tmp_path / "segmentd-data"
    out = tmp_path / "out"
    assert restart.main(["--data", str(dataset.root), "--data-dir", str(data_dir), "--restarts", "1",
                         "--out-dir", str(out)]) == 0
    (line,) = _lines(out, "restart")
    assert line["events"] == EVENTS and line["build"]["snapshot_bytes"] > 0
    assert 0 < line["serving_s"] <= line["first_answer_s"] and line["exit_code"] == 0
    assert line["build"]["segment_members"] > 0 and line["first_answer_member"] is not None
    assert line["first_answer_s"] <= line["ref_answer_s"]
    assert not data_dir.exists()  # removed afterwards unless --keep


def test_restart_driver_restarts_a_kept_directory(dataset: datagen.Dataset, tmp_path: Path) -> None:
    from bench import restart

    data_dir = tmp_path / "segmentd-data"
    assert restart.main(["--data", str(dataset.root), "--data-dir", str(data_dir), "--restarts", "1", "--keep",
                         "--out-dir", str(tmp_path / "first")]) == 0
    assert data_dir.exists()
    assert restart.main(["restart", "--data-dir", str(data_dir), "--restarts", "1",
                         "--out-dir", str(tmp_path / "again")]) == 0
    (line,) = _lines(tmp_path / "again", "restart")
    assert line["events"] == EVENTS and line["exit_code"] == 0 and line["first_answer_member"] is not None


def test_bandwidth_probe(tmp_path: Path) -> None:
    assert bandwidth.main(["--mib", "8", "--runs", "1", "--out-dir", str(tmp_path)]) == 0
    (line,) = _lines(tmp_path, "bandwidth")
    assert line["read_sum_gbs"] > 0 and line["copy_gbs"] > 0 and line["gather_rows_per_s"] > 0


def test_memory_driver(dataset: datagen.Dataset, tmp_path: Path) -> None:
    assert memory.main(_data_args(dataset, tmp_path)) == 0
    (line,) = _lines(tmp_path, "memory")
    assert line["events_stored"] == EVENTS and line["store_bytes"] > 0 and line["samples"]


def test_ingest_driver_all_modes(dataset: datagen.Dataset, tmp_path: Path) -> None:
    status = ingest.main([*_data_args(dataset, tmp_path), "--seconds", "60", "--batch", "500", "--streams", "2"])
    lines = _lines(tmp_path, "ingest")
    assert {ln["mode"] for ln in lines} == set(ingest.MODES)
    for ln in lines:
        assert ln["stored_events"] == EVENTS, ln
        assert ln["contact_upload"]["contacts"] == CONTACTS
    assert status == 0


def test_membership_driver(dataset: datagen.Dataset, tmp_path: Path) -> None:
    _require_segment_rpcs()
    status = membership.main([*_data_args(dataset, tmp_path), "--seconds", "3", "--clients", "2", "--batch", "50"])
    lines = _lines(tmp_path, "membership")
    phases = {ln["phase"]: ln for ln in lines}
    assert set(phases) == {"count", "single", "batched", "list"}
    assert phases["single"]["requests"] > 0 and phases["batched"]["requests"] > 0
    assert all(x["agree"] for x in phases["list"]["lists"])
    assert status == 0


def test_mixed_driver(dataset: datagen.Dataset, tmp_path: Path) -> None:
    _require_segment_rpcs()
    status = mixed.main([*_data_args(dataset, tmp_path), "--seconds", "3", "--ingest-rate", "500",
                         "--query-clients", "1", "--watchers", "1", "--batch", "50"])
    (line,) = _lines(tmp_path, "mixed")
    assert line["ingest_events"] > 0 and line["queries"] > 0
    if _served("WatchSegments"):
        assert line["watch_changes"] > 0 and not line["watch_unavailable"]
    else:
        assert line["watch_unavailable"]
    assert status == 0


def test_report_renders_tables_and_plots(dataset: datagen.Dataset, tmp_path: Path) -> None:
    pytest.importorskip("duckdb")
    from bench import segments

    out = tmp_path / "results"
    segments.main([*_data_args(dataset, out), "--runs", "1", "--only", "never-carted,workout-streak-4w"])
    bandwidth.main(["--mib", "8", "--runs", "1", "--out-dir", str(out)])
    md = tmp_path / "RESULTS.md"
    assert report.main(["--results", str(out), "--out", str(md), "--plots", str(tmp_path / "plots")]) == 0
    text = md.read_text()
    assert "## Segment builds: segmentd vs DuckDB" in text and "never-carted" in text
    assert "## Memory bandwidth" in text and "## Machine" in text
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return  # tables only; plots need matplotlib
    assert (tmp_path / "plots" / "build_latency_vs_events.png").stat().st_size > 0
    assert "plots/build_latency_vs_events.png" in text
