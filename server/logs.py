"""Structured logs: one JSON object per line, request ids, and identifiers kept out.

Every record carries the request id of the RPC it was written under (a context variable the
RPC interceptor sets), so the access line of a call and whatever the code logged while
serving it share one id. Contact identifiers (emails, phone numbers, `kind:value`
references, push tokens) are replaced by a placeholder before a record is written unless
`log_identifiers` is on; the numeric contactId is not an identifier and stays.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import random
import re
import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

REDACTED = "<redacted>"
# Fields an access or audit line may carry beside the standard ones (see docs/OPERATIONS.md).
EXTRA_FIELDS = (
    "event",
    "method",
    "code",
    "duration_ms",
    "peer",
    "principal",
    "details",
    "contact_id",
    "events_erased",
    "request_bytes",
)
# A request id a client may choose: short, printable, no spaces (anything else is replaced).
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass(slots=True)
class CallInfo:
    """What the logs know about the RPC being served; inner layers fill in `principal`."""

    request_id: str
    method: str = ""
    principal: str = ""  # the token's name (never the token); "" without authentication


_call: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar("segmentd_call", default=None)

# What identifiers look like in free text. Order matters: references before bare values.
_IDENTIFIER_PATTERNS = (
    # kind:value references (email:a@b.c, externalId:C-1, phone:+1..., pushToken:..., key.name:v)
    re.compile(r"\b(externalId|email|phone|pushToken|pushTokens|anonymous|key(?:\.[\w.-]+)?):\s*[^\s,;'\"\])}]+"),
    re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+"),  # email addresses
    # phone numbers written the international way, or with an area code in parentheses; plain
    # digit runs (sizes, counts, ids, times) are not touched
    re.compile(r"\+\d[\d ().-]{6,}\d|\(\d{2,5}\)\s?\d[\d .-]{4,}\d"),
)


# Request ids need to be unpredictable enough not to collide, not secret: a generator seeded
# once from the OS draws them without a system call per RPC.
_ids = random.Random(secrets.randbits(128))


def new_request_id() -> str:
    """A fresh request id: 16 random hex digits."""
    return f"{_ids.getrandbits(64):016x}"


def accept_request_id(offered: str | None) -> str:
    """The client's `x-request-id` when it is short and plain, else a fresh id."""
    if offered and _CLIENT_ID.fullmatch(offered):
        return offered
    return new_request_id()


def current_call() -> CallInfo | None:
    """The RPC this code runs under (None outside one)."""
    return _call.get()


def current_request_id() -> str:
    """The request id of the RPC this code runs under ("" outside one)."""
    info = _call.get()
    return info.request_id if info is not None else ""


@contextmanager
def call_scope(info: CallInfo) -> Iterator[CallInfo]:
    """Runs the block as part of the RPC `info` describes (its id lands on every record)."""
    token = _call.set(info)
    try:
        yield info
    finally:
        _call.reset(token)


def redact(text: str) -> str:
    """`text` with every identifier-looking substring replaced by REDACTED."""
    for pattern in _IDENTIFIER_PATTERNS:
        text = pattern.sub(_placeholder, text)
    return text


def _placeholder(match: re.Match[str]) -> str:
    kind = match.group(1) if match.re.groups else ""
    return f"{kind}:{REDACTED}" if kind else REDACTED


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and exception text) with identifiers redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None  # the redacted text is what gets written
        details = getattr(record, "details", None)
        if isinstance(details, str):
            record.details = redact(details)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, request_id and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            doc["request_id"] = request_id
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines with the request id, for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None) or current_request_id()
        return f"{line} [{request_id}]" if request_id else line


def configure(
    *, fmt: str = "json", level: str = "info", log_identifiers: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Sends every log record to `stream` (stderr) as JSON or text; returns the handler.

    Replaces handlers a previous call installed, so calling it twice does not double lines.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    if not log_identifiers:
        handler.addFilter(RedactingFilter())
    setattr(handler, "_segmentd", True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_segmentd", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def fields(**values: Any) -> Mapping[str, Any]:
    """`extra=` for a log call: the structured fields of an access or audit line."""
    unknown = set(values) - set(EXTRA_FIELDS)
    if unknown:
        raise KeyError(f"not a documented log field: {sorted(unknown)}")
    return values
