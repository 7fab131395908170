"""`segmentd segment ...` as a user runs it: child processes against a `segmentd serve` child.

The server is shared by the session's CLI tests and runs on the wall clock, so this module's
data has its own event type, identifiers and segment names, its events lie in the past
(around T0), and answers that depend on time are asked `--as-of` a fixed instant.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest

from core.events import parse_timestamp
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from tests.e2e.harness import CliRunner, ServerProcess, run_cli

T0 = parse_timestamp("2026-01-15T12:00:00Z")
HOUR = 3_600_000
BUY = "cliSegBuy"
SEGMENTS = [  # the first refers to the second: apply puts the second first
    {"name": "cliseg-vip", "description": "spent 400 or more",
     "condition": {"all": [{"segment": "cliseg-buyers"},
                           {"event": {"type": BUY, "period": {"allTime": {}}, "sum": {"param": "price", "gte": 400}}}]}},
    {"name": "cliseg-buyers", "tags": ["cliseg"], "condition": {"event": {"type": BUY, "period": {"allTime": {}}}}},
]


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


def assert_refused(result: subprocess.CompletedProcess[str], status: int, *needles: str) -> None:
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


@pytest.fixture(scope="module")
def shop(server_process: ServerProcess) -> dict[int, int]:
    """Contacts cliseg1..6 (n -> contact id); contact n bought for n * 100 n hours before T0."""
    with grpc.insecure_channel(server_process.address) as channel:
        stub = pb_grpc.SegmentdStub(channel)
        people = [pb.ContactInput(email=f"cliseg{n}@example.com", external_id=f"CS-{n}") for n in range(1, 7)]
        reply = stub.UpsertContacts(pb.UpsertContactsRequest(contacts=people))
        ids = {n: r.contact_id for n, r in zip(range(1, 7), reply.results)}
        buys = [{"eventTypeKey": BUY, "timestamp": T0 - n * HOUR, "params": {"contactId": str(ids[n]), "price": n * 100}}
                for n in range(1, 7)]
        stub.IngestEvents(pb.IngestEventsRequest(jsonl="\n".join(json.dumps(b) for b in buys).encode()))
    return ids


@pytest.fixture(scope="module")
def applied(shop: dict[int, int], server_process: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> tuple[
        subprocess.CompletedProcess[str], Path]:
    """`segment apply` of SEGMENTS, once for the module: (its result, the file)."""
    path = write_json(tmp_path_factory.mktemp("segments") / "segments.json", SEGMENTS)
    return run_cli("segment", "apply", str(path), server=server_process.address), path


def test_apply_creates_in_reference_order_then_replaces(applied: tuple[Any, Path], cli: CliRunner) -> None:
    first, path = applied
    assert ok(first).splitlines() == ["created cliseg-buyers size 6", "created cliseg-vip size 3"]
    again = ok(cli("segment", "apply", str(path)))
    assert again.splitlines() == ["replaced cliseg-buyers size 6", "replaced cliseg-vip size 3"]


def test_apply_refuses_a_bad_file_naming_the_offending_part(cli: CliRunner, tmp_path: Path) -> None:
    bad = write_json(tmp_path / "bad.json", [
        {"name": "cliseg-never", "contacts": [1]},
        {"name": "cliseg-never2", "condition": {"event": {"type": BUY, "period": {"last": {"days": 0}}}}}])
    assert_refused(cli("segment", "apply", str(bad)), 1, "[1].condition.event.period.last.days")
    assert_refused(cli("segment", "get", "cliseg-never"), 1, "not found")  # nothing was applied
    (tmp_path / "broken.json").write_text('{"name": "x",')
    assert_refused(cli("segment", "apply", str(tmp_path / "broken.json")), 1, "not valid JSON", "line 1")
    assert_refused(cli("segment", "apply", str(tmp_path / "missing.json")), 2, "cannot read")


def test_apply_reports_what_the_server_refuses(cli: CliRunner, tmp_path: Path) -> None:
    dangling = write_json(tmp_path / "dangling.json", {"name": "cliseg-dangling", "condition": {"segment": "cliseg-nowhere"}})
    assert_refused(cli("segment", "apply", str(dangling)), 1,
                   "cliseg-dangling", "invalid argument: segment.condition.segment: unknown segment")


def test_list_and_get(applied: tuple[Any, Path], cli: CliRunner, tmp_path: Path) -> None:
    rows = [line.split() for line in ok(cli("segment", "list")).splitlines()]
    assert rows[0][:3] == ["NAME", "KIND", "SIZE"]
    assert ["cliseg-buyers", "dynamic", "6", "cliseg"] == next(r for r in rows if r[0] == "cliseg-buyers")[:4]
    tagged = json.loads(ok(cli("segment", "list", "--tag", "cliseg", "--json")))
    assert [(s["segment"]["name"], s["size"]) for s in tagged] == [("cliseg-buyers", 6)]
    info = json.loads(ok(cli("segment", "get", "cliseg-vip")))
    assert info["size"] == 3 and info["segment"]["description"] == "spent 400 or more"
    assert info["segment"]["condition"]["all"][1]["event"]["sum"] == {"param": "price", "gte": 400}
    definition = ok(cli("segment", "get", "cliseg-vip", "--definition"))
    assert json.loads(definition) == info["segment"]
    (tmp_path / "vip.json").write_text(definition)
    assert ok(cli("segment", "apply", str(tmp_path / "vip.json"))).strip() == "replaced cliseg-vip size 3"
    assert_refused(cli("segment", "get", "cliseg-nowhere"), 1, "not found", "cliseg-nowhere")


def test_count_now_and_as_of(applied: tuple[Any, Path], cli: CliRunner) -> None:
    assert ok(cli("segment", "count", "cliseg-buyers")).strip() == "6"
    assert ok(cli("segment", "count", "cliseg-buyers", "--as-of", "2026-01-15T09:30:00Z")).strip() == "4"
    assert ok(cli("segment", "count", "cliseg-vip", "--as-of", str(T0 - 9 * HOUR // 2))).strip() == "2"
    assert_refused(cli("segment", "count", "cliseg-buyers", "--as-of", "last week"), 2, "--as-of")


def test_members_as_ids_and_as_json_lines(applied: tuple[Any, Path], shop: dict[int, int], cli: CliRunner) -> None:
    ids = ok(cli("segment", "members", "cliseg-vip")).split()
    assert ids == [str(shop[n]) for n in (4, 5, 6)]
    lines = ok(cli("segment", "members", "cliseg-vip", "--format", "jsonl", "--as-of", str(T0 - 9 * HOUR // 2))).splitlines()
    assert [json.loads(line) for line in lines] == [
        {"contactId": shop[n], "email": f"cliseg{n}@example.com", "externalId": f"CS-{n}"} for n in (5, 6)]
    assert_refused(cli("segment", "members", "cliseg-nowhere"), 1, "not found")


def test_preview_counts_without_saving(applied: tuple[Any, Path], shop: dict[int, int], cli: CliRunner,
                                       tmp_path: Path) -> None:
    adhoc = write_json(tmp_path / "adhoc.json", {"condition": {"all": [
        {"segment": "cliseg-buyers"}, {"not": {"segment": "cliseg-vip"}}]}})
    text = ok(cli("segment", "preview", str(adhoc), "--sample", "2")).splitlines()
    assert text[0].startswith("count 3 ")
    assert text[1] == f"sample {shop[1]} {shop[2]}"
    table = [line.split() for line in text[2:]]
    assert table[0] == ["CONDITION", "COUNT"]
    assert table[1][0] == "condition" and table[1][1] == "3"
    assert ["condition.all[0].segment", "6"] in table
    reply = json.loads(ok(cli("segment", "preview", str(adhoc), "--json", "--as-of", "2026-01-15T09:30:00Z")))
    assert reply["count"] == 1 and reply["sample"] == [shop[3]]  # 3..6 had bought by 09:30; 4..6 are vip
    assert [c["path"] for c in reply["conditions"]] == [
        "condition", "condition.all[0].segment", "condition.all[1]", "condition.all[1].not.segment"]
    bad = write_json(tmp_path / "bad.json", {"condition": {"event": {"type": BUY, "count": {"most": 1}}}})
    assert_refused(cli("segment", "preview", str(bad)), 1, "condition.event.count.most")


def test_explain_shows_each_condition(applied: tuple[Any, Path], shop: dict[int, int], cli: CliRunner) -> None:
    member = ok(cli("segment", "explain", "cliseg-vip", "email:cliseg5@example.com")).splitlines()
    assert member[0].startswith(f"contact {shop[5]} is a member of cliseg-vip at ")
    rows = {line.split()[1]: line.split() for line in member[2:]}
    assert rows["condition.all[1].event"][:3] == ["yes", "condition.all[1].event", "500"]
    outsider = json.loads(ok(cli("segment", "explain", "cliseg-vip", "externalId:CS-1", "--json")))
    assert outsider["contactId"] == shop[1] and outsider.get("member", False) is False
    holds = {c["path"]: c.get("holds", False) for c in outsider["conditions"]}
    assert holds == {"condition": False, "condition.all[0].segment": True, "condition.all[1].event": False}
    assert_refused(cli("segment", "explain", "cliseg-vip", "email:nobody-cliseg@example.com"), 1, "not found")
    assert_refused(cli("segment", "explain", "cliseg-vip", "nonsense"), 1, "invalid argument: contact.ref")


def test_delete_refuses_a_referenced_segment(shop: dict[int, int], cli: CliRunner, tmp_path: Path) -> None:
    pair = write_json(tmp_path / "pair.json", [
        {"name": "cliseg-del-outer", "condition": {"not": {"segment": "cliseg-del-inner"}}},
        {"name": "cliseg-del-inner", "contacts": [shop[1]]}])
    ok(cli("segment", "apply", str(pair)))
    assert_refused(cli("segment", "delete", "cliseg-del-inner"), 1, "failed precondition", "cliseg-del-outer")
    assert ok(cli("segment", "delete", "cliseg-del-outer")).strip() == "deleted cliseg-del-outer"
    assert ok(cli("segment", "delete", "cliseg-del-inner")).strip() == "deleted cliseg-del-inner"
    assert_refused(cli("segment", "delete", "cliseg-del-inner"), 1, "not found")
