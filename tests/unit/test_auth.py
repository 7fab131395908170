"""Token tables, scopes per method and the bearer header."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidArgument
from server.auth import READ_METHODS, Scope, bearer_token, load_tokens, parse_tokens, required_scope
from server.pb import segmentd_pb2 as pb

READER = "r" * 20
WRITER = "w" * 24


def test_tokens_file_and_inline_tokens_combine(tmp_path: Path) -> None:
    file = tmp_path / "tokens"
    file.write_text(f"# comment\n\n{READER} read-only dashboards\n")
    table = load_tokens(file, f"{WRITER} read-write ingest")
    assert table is not None and len(table) == 2
    reader, writer = table.grant_of(READER), table.grant_of(WRITER)
    assert reader is not None and (reader.scope, reader.name) == (Scope.READ, "dashboards")
    assert writer is not None and (writer.scope, writer.name) == (Scope.WRITE, "ingest")
    assert table.grant_of("x" * 20) is None and table.grant_of("") is None


def test_no_tokens_means_no_table(tmp_path: Path) -> None:
    empty = tmp_path / "tokens"
    empty.write_text("# nobody yet\n")
    assert load_tokens(None, "") is None
    assert load_tokens(empty, "") is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"{READER}", "TOKEN SCOPE"),
        (f"{READER} admin", "scope must be"),
        ("short read-only", "at least 16"),
        (f"{READER} read-only a b", "TOKEN SCOPE"),
    ],
)
def test_malformed_lines_name_the_line_and_never_the_token(text: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_tokens(f"# first\n{text}\n", "tokens.txt")
    assert caught.value.field == "tokens.txt:2"
    assert reason in caught.value.reason
    assert READER not in str(caught.value)


def test_unreadable_tokens_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read"):
        load_tokens(tmp_path / "missing", "")


def test_every_method_has_a_scope_and_writes_need_read_write() -> None:
    service = pb.DESCRIPTOR.services_by_name["Segmentd"]
    writes = {"IngestEvents", "StreamEvents", "SetEventTypeConfig", "UpsertContacts", "MergeContacts",
              "EraseContact", "PutSegment", "DeleteSegment", "Snapshot"}
    for method in service.methods:
        scope = required_scope(f"/{service.full_name}/{method.name}")
        assert scope == (Scope.WRITE if method.name in writes else Scope.READ), method.name
        assert (method.name in READ_METHODS) == (method.name not in writes)
    assert required_scope("/segmentd.v1.Segmentd/SomethingNew") == Scope.WRITE  # fail closed
    assert required_scope("/other.Service/Anything") == Scope.WRITE


def test_health_is_open_and_reflection_follows_its_policy() -> None:
    assert required_scope("/grpc.health.v1.Health/Check") is None
    assert required_scope("/grpc.health.v1.Health/Watch") is None
    reflect = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    assert required_scope(reflect, "auth") == Scope.READ
    assert required_scope(reflect, "open") is None


def test_bearer_header() -> None:
    assert bearer_token([("authorization", f"Bearer {READER}")]) == READER
    assert bearer_token([("Authorization", f"bearer  {READER} ")]) == READER
    assert bearer_token([("authorization", "Basic abc")]) == ""
    assert bearer_token([("x-other", "1")]) is None
    assert bearer_token(None) is None
