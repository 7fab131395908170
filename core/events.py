"""Events: parsing and validation of both JSON shapes (EVENTS.md section 1), and flattening
of parameter values into dotted-path leaves for the columnar store.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

from core.errors import InvalidArgument

MAX_PARAMS = 256
MAX_DEPTH = 8  # containers nested in one parameter value; a scalar has depth 0
MAX_STRING_BYTES = 64 * 1024  # UTF-8 bytes of one string
MAX_EVENT_BYTES = 1024 * 1024  # compact JSON encoding of one event, UTF-8 bytes
MAX_BATCH = 10_000
MAX_TYPE_KEY_CHARS = 128

TOP_LEVEL_KEYS = ("eventTypeKey", "keyValue", "eventId", "timestamp", "system", "params")
_ITEM_KEYS = frozenset({"name", "value"})

# Epoch milliseconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z (RFC 3339's range).
MIN_TS_MS = -62_135_596_800_000
MAX_TS_MS = 253_402_300_799_999

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_EPOCH = datetime(1970, 1, 1)
_MS = timedelta(milliseconds=1)


@dataclass(slots=True)
class Event:
    type: str  # eventTypeKey, 1..128 characters
    key_value: str | None
    event_id: str | None
    ts_ms: int | None  # epoch ms UTC; None: the server stamps it on accept
    system: bool
    params: dict[str, Any]  # insertion order = event order; no None values


@dataclass(frozen=True, slots=True)
class Leaf:
    path: str  # dotted path: "product.price", "products.productId"
    value: float | int | str | bool | None  # None: an object is present at `path`
    items: tuple[tuple[str, int], ...]  # (array prefix, element ordinal), outermost first


# ---------------------------------------------------------------------------- timestamps


def parse_timestamp(value: Any, field: str = "timestamp") -> int:
    """An RFC 3339 string, or integer epoch milliseconds (also an all-digit string or an
    integral float) -> epoch milliseconds UTC. Fractions below a millisecond are dropped."""
    if isinstance(value, bool):
        raise InvalidArgument(field, "must be an RFC 3339 string or epoch milliseconds")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise InvalidArgument(field, "epoch milliseconds must be an integer")
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?[0-9]{1,16}", text):
            value = int(text)
        else:
            value = _parse_rfc3339(text, field)
    if not isinstance(value, int):
        raise InvalidArgument(field, "must be an RFC 3339 string or epoch milliseconds")
    if not MIN_TS_MS <= value <= MAX_TS_MS:
        raise InvalidArgument(field, "is outside years 0001-9999")
    return value


def _parse_rfc3339(text: str, field: str) -> int:
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise InvalidArgument(field, f"{text[:64]!r} is not an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    leap = second == 60  # a leap second reads as the first millisecond after :59.999
    try:
        moment = datetime(year, month, day, hour, minute, 59 if leap else second)
    except ValueError as exc:
        raise InvalidArgument(field, f"{text[:64]!r} is not a valid date-time ({exc})") from None
    frac = m.group(7) or ""
    millis = int((frac + "000")[:3])
    offset_min = 0
    if m.group(9):
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise InvalidArgument(field, f"{text[:64]!r} has an invalid UTC offset")
        offset_min = (oh * 60 + om) * (1 if m.group(9) == "+" else -1)
    ms = (moment - _EPOCH) // _MS + millis - offset_min * 60_000
    if leap:
        ms += 1000
    return ms


# ---------------------------------------------------------------------------- values


def encoded_size(doc: Any) -> int:
    """Bytes of `doc` as compact UTF-8 JSON: the measure of the 1 MiB event limit."""
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return len(text.encode("utf-8", "surrogatepass"))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


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
        if value.bit_length() > 1023:
            raise InvalidArgument(field, "a number is too large")
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
                parsed = json.loads(raw, parse_constant=_reject_constant)
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
            if key not in _ITEM_KEYS:
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


def parse_event(doc: Mapping[str, Any]) -> Event:
    """One event of either shape -> Event, or InvalidArgument naming the offending field."""
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


# ---------------------------------------------------------------------------- flattening


def flatten(params: Mapping[str, Any]) -> list[Leaf]:
    """Leaves of all parameter values in document order (EVENTS.md section 1, dotted paths).

    An object at a path yields a container leaf (value None) before its members; an array
    passes through: each element is addressed at the array's own path and takes the next
    ordinal of that path (counted over the whole event); an array directly inside an array
    is flattened into it. Nulls yield nothing.
    """
    leaves: list[Leaf] = []
    counters: dict[str, int] = {}
    for name, value in params.items():
        _walk(name, value, (), leaves, counters)
    return leaves


def _walk(
    path: str,
    value: Any,
    items: tuple[tuple[str, int], ...],
    leaves: list[Leaf],
    counters: dict[str, int],
) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        leaves.append(Leaf(path, None, items))
        for key, member in value.items():
            _walk(f"{path}.{key}", member, items, leaves, counters)
        return
    if isinstance(value, list):
        for element in value:
            if element is None:
                continue
            if isinstance(element, list):
                _walk(path, element, items, leaves, counters)
                continue
            ordinal = counters.get(path, 0)
            counters[path] = ordinal + 1
            _walk(path, element, items + ((path, ordinal),), leaves, counters)
        return
    leaves.append(Leaf(path, value, items))
