"""Events: parsing and validation of both JSON shapes (EVENTS.md section 1).

The event model, its limits and flattening are `core.event_model` (names re-exported here).

`parse_event` tries a fast path for the common event first (`core.event_fast`: one walk of
limits, size bound and leaves) and falls back to the checked path, which names the
offending field.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

from core.errors import InvalidArgument
from core.event_fast import TOP_KEYS, parse_event_fast
from core.event_model import (
    ITEM_KEYS,
    MAX_DEPTH,
    MAX_EVENT_BYTES,
    MAX_PARAMS,
    MAX_STRING_BYTES,
    MAX_TYPE_KEY_CHARS,
    TOP_LEVEL_KEYS,
    Event,
    reject_constant,
)
from core.timestamps import MAX_TS_MS, MIN_TS_MS, parse_timestamp  # noqa: F401  (part of this module's API)

# ---------------------------------------------------------------------------- values


def encoded_size(doc: Any) -> int:
    """Bytes of `doc` as compact UTF-8 JSON: the measure of the 1 MiB event limit."""
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return len(text.encode("utf-8", "surrogatepass"))


def check_text(s: str, field: str) -> None:
    """Raises unless `s` is valid text of at most MAX_STRING_BYTES UTF-8 bytes."""
    if len(s) * 4 <= MAX_STRING_BYTES and s.isascii():
        return
    try:
        size = len(s.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument(field, "a string is not valid Unicode text") from None
    if size > MAX_STRING_BYTES:
        raise InvalidArgument(field, f"a string exceeds {MAX_STRING_BYTES // 1024} KiB ({size} bytes)")


def _size_bound(value: Any) -> int:
    """An upper bound of the compact JSON size of a checked value (no encoding needed)."""
    if isinstance(value, str):
        return 6 * len(value) + 2
    if isinstance(value, dict):
        return 2 + sum(6 * len(k) + 4 + _size_bound(v) for k, v in value.items())
    if isinstance(value, list):
        return 2 + sum(1 + _size_bound(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3 + 3
    return 32


def _checked(value: Any, field: str, depth: int) -> Any:
    """A plain copy of a parameter value (dict/list/scalars), or InvalidArgument naming `field`.

    `depth` counts the containers enclosing `value`.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        check_text(value, field)
        return value
    if isinstance(value, int):
        if value.bit_length() > 63:  # the log and snapshots store integers as 64-bit
            raise InvalidArgument(field, "integers must fit in 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(field, "numbers must be finite")
        return value
    if depth >= MAX_DEPTH:
        raise InvalidArgument(field, f"nesting is deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                raise InvalidArgument(field, "object keys must be non-empty strings")
            check_text(key, field)
            out[key] = _checked(item, field, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_checked(item, field, depth + 1) for item in value]
    raise InvalidArgument(field, f"unsupported value type {type(value).__name__}")


def _param_value(raw: Any, field: str) -> Any:
    """A checked parameter value; a string holding a JSON object or array becomes its value."""
    if isinstance(raw, str):
        check_text(raw, field)
        head = raw.lstrip()[:1]
        if head == "{" or head == "[":
            try:
                parsed = json.loads(raw, parse_constant=reject_constant)
            except (ValueError, RecursionError):
                return raw  # not JSON after all: a plain string
            return _checked(parsed, field, 0)
        return raw
    return _checked(raw, field, 0)


def _optional_text(doc: Mapping[str, Any], key: str) -> str | None:
    """keyValue / eventId: a string or an integer (made canonical text); null or "" is absent."""
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidArgument(key, "must be a string")
    check_text(value, key)
    return value or None


def _parse_params(raw: Any) -> tuple[dict[str, Any], int]:
    """(params in event order without nulls, an upper bound of their encoded size)."""
    if raw is None:
        return {}, 2
    params: dict[str, Any] = {}
    bound = 2
    if isinstance(raw, Mapping):
        if len(raw) > MAX_PARAMS:
            raise InvalidArgument("params", f"more than {MAX_PARAMS} parameters ({len(raw)})")
        for name, value in raw.items():
            if not isinstance(name, str) or not name:
                raise InvalidArgument("params", "parameter names must be non-empty strings")
            check_text(name, "params")
            field = f"params.{name}"
            checked = _param_value(value, field)
            bound += 6 * len(name) + 4 + _size_bound(value if isinstance(value, str) else checked)
            if checked is not None:
                params[name] = checked
        return params, bound
    if not isinstance(raw, (list, tuple)):
        raise InvalidArgument("params", "must be a list of {name, value} or an object")
    if len(raw) > MAX_PARAMS:
        raise InvalidArgument("params", f"more than {MAX_PARAMS} parameters ({len(raw)})")
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise InvalidArgument(f"params[{i}]", "must be an object {name, value}")
        for key in item:
            if key not in ITEM_KEYS:
                raise InvalidArgument(f"params[{i}].{key}", "unknown key (expected name and value)")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"params[{i}].name", "must be a non-empty string")
        check_text(name, f"params[{i}].name")
        value = item.get("value")
        checked = _param_value(value, f"params[{i}].value")
        bound += 6 * len(name) + 20 + _size_bound(value if isinstance(value, str) else checked)
        if checked is None:
            continue  # null is absent: it neither sets nor clears the name
        params[name] = checked  # a repeated name keeps its first position and last value
    return params, bound


def parse_event(doc: Mapping[str, Any] | Event) -> Event:
    """One event of either shape -> Event, or InvalidArgument naming the offending field.

    An Event (built by trusted code: a log record of a column batch) is taken as it is.
    """
    if isinstance(doc, Event):
        return doc
    if type(doc) is dict and doc.keys() <= TOP_KEYS:
        event = parse_event_fast(doc)
        if event is not None:
            return event
    return _parse_event_checked(doc)


def parse_line_event(doc: dict[str, Any]) -> Event:
    """`parse_event` of a document the JSON decoder read from a line of at most
    PLAIN_LINE_BYTES bytes (`core.event_fast`: such a document breaks no size limit)."""
    if doc.keys() <= TOP_KEYS:
        event = parse_event_fast(doc, plain=True)
        if event is None:
            event = parse_event_fast(doc)  # text that is not ASCII is checked there
        if event is not None:
            return event
    return _parse_event_checked(doc)


def _parse_event_checked(doc: Mapping[str, Any]) -> Event:
    """The general parse: every check in the order the fields are named in errors."""
    if not isinstance(doc, Mapping):
        raise InvalidArgument("", "an event must be a JSON object")
    for key in doc:
        if key not in TOP_LEVEL_KEYS:
            raise InvalidArgument(str(key), "unknown field")
    type_key = doc.get("eventTypeKey")
    if type_key is None:
        raise InvalidArgument("eventTypeKey", "is required")
    if not isinstance(type_key, str) or not 1 <= len(type_key) <= MAX_TYPE_KEY_CHARS:
        raise InvalidArgument("eventTypeKey", f"must be a string of 1-{MAX_TYPE_KEY_CHARS} characters")
    check_text(type_key, "eventTypeKey")
    key_value = _optional_text(doc, "keyValue")
    event_id = _optional_text(doc, "eventId")
    raw_ts = doc.get("timestamp")
    ts_ms = None if raw_ts is None or raw_ts == "" else parse_timestamp(raw_ts, "timestamp")
    system = doc.get("system")
    if system is None:
        system = False
    elif not isinstance(system, bool):
        raise InvalidArgument("system", "must be a boolean")
    params, bound = _parse_params(doc.get("params"))
    bound += 200 + 6 * (len(type_key) + len(key_value or "") + len(event_id or ""))
    if isinstance(raw_ts, str):
        bound += 6 * len(raw_ts)
    if bound > MAX_EVENT_BYTES:
        try:
            size = encoded_size(doc)
        except (TypeError, ValueError):
            size = bound  # unencodable parts were rejected above; the bound stands in
        if size > MAX_EVENT_BYTES:
            raise InvalidArgument("", f"event exceeds 1 MiB ({size} bytes encoded)")
    return Event(type_key, key_value, event_id, ts_ms, system, params)
