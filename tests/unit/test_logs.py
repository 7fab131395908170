"""JSON log lines, request ids and the redaction of identifiers."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from server import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logs.configure(fmt="json", level="debug", stream=out)
    yield out
    logging.getLogger().removeHandler(handler)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_record_is_one_json_object_with_the_request_id(stream: io.StringIO) -> None:
    log = logging.getLogger("segmentd.test")
    with logs.call_scope(logs.CallInfo("abc123", "GetContact")):
        log.info("hello %s", "world", extra=logs.fields(code="OK", duration_ms=1.5))
    log.warning("outside")
    first, second = lines(stream)
    assert first["msg"] == "hello world" and first["request_id"] == "abc123"
    assert (first["level"], first["logger"]) == ("info", "segmentd.test")
    assert (first["code"], first["duration_ms"]) == ("OK", 1.5)
    assert "request_id" not in second and second["level"] == "warning"


@pytest.mark.parametrize(
    "text",
    [
        "no contact has email:ann@example.com",
        "reached Ann.Lee+tag@mail.example.org today",
        "phone:+1 (555) 010-9999 is taken",
        "externalId:C-1 and key.loyalty:XYZ",
        "pushToken:abcdef123",
        "called +44 20 7946 0958",
        "or (020) 7946-0958 after six",
    ],
)
def test_identifiers_are_redacted(stream: io.StringIO, text: str) -> None:
    logging.getLogger("segmentd.test").info(text)
    msg = str(lines(stream)[0]["msg"])
    for secret in ("ann@example.com", "Ann.Lee", "555", "C-1", "XYZ", "abcdef123", "7946"):
        assert secret not in msg
    assert logs.REDACTED in msg


@pytest.mark.parametrize(
    "text",
    [
        "contact 12345 erased, 3 events, took 0.25s",
        "snapshot snap-000000000123.snap: 123456789 bytes, seq 4567890",
        "recovered at 2026-11-25 14:29:31 from /var/lib/segmentd",
    ],
)
def test_numbers_times_and_plain_words_stay(stream: io.StringIO, text: str) -> None:
    logging.getLogger("segmentd.test").info(text)
    assert lines(stream)[0]["msg"] == text


def test_exception_text_is_redacted_too(stream: io.StringIO) -> None:
    try:
        raise RuntimeError("lookup of email:bob@example.com failed")
    except RuntimeError:
        logging.getLogger("segmentd.test").exception("failed")
    record = lines(stream)[0]
    assert "bob@example.com" not in str(record["exception"]) and "RuntimeError" in str(record["exception"])


def test_log_identifiers_turns_redaction_off() -> None:
    out = io.StringIO()
    handler = logs.configure(fmt="json", log_identifiers=True, stream=out)
    try:
        logging.getLogger("segmentd.test").info("email:carol@example.com")
    finally:
        logging.getLogger().removeHandler(handler)
    assert "carol@example.com" in lines(out)[0]["msg"]  # type: ignore[operator]


def test_configure_twice_does_not_double_lines() -> None:
    out = io.StringIO()
    logs.configure(stream=io.StringIO())
    handler = logs.configure(stream=out)
    try:
        logging.getLogger("segmentd.test").warning("once")
    finally:
        logging.getLogger().removeHandler(handler)
    assert len(out.getvalue().splitlines()) == 1


def test_request_ids_offered_by_clients_are_kept_only_when_plain() -> None:
    assert logs.accept_request_id("req-42.a:b") == "req-42.a:b"
    assert logs.accept_request_id("bad id with spaces") != "bad id with spaces"
    assert len(logs.accept_request_id(None)) == 16
    assert len(logs.accept_request_id("x" * 65)) == 16


def test_only_documented_fields_may_be_attached() -> None:
    with pytest.raises(KeyError):
        logs.fields(email="a@b.c")
