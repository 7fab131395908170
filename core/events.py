"""Events: parsing and validation of both JSON shapes (EVENTS.md section 1), and flattening
of parameter values into dotted-path leaves for the columnar store.

`parse_event` tries a fast path for the common event first (one walk: limits, size bound,
leaves) and falls back to the checked path, which names the offending field.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from json.scanner import make_scanner
from typing import Any, Mapping

from core.errors import InvalidArgument
from core.timestamps import MAX_TS_MS, MIN_TS_MS, parse_timestamp  # noqa: F401  (part of this module's API)

MAX_PARAMS = 256
MAX_DEPTH = 8  # containers nested in one parameter value; a scalar has depth 0
MAX_STRING_BYTES = 64 * 1024  # UTF-8 bytes of one string
MAX_EVENT_BYTES = 1024 * 1024  # compact JSON encoding of one event, UTF-8 bytes
MAX_BATCH = 10_000
MAX_TYPE_KEY_CHARS = 128

TOP_LEVEL_KEYS = ("eventTypeKey", "keyValue", "eventId", "timestamp", "system", "params")
_ITEM_KEYS = frozenset({"name", "value"})

LeafTuple = tuple[str, Any, tuple[tuple[str, int], ...]]  # (path, value, items) of a Leaf


@dataclass(slots=True)
class Event:
    type: str  # eventTypeKey, 1..128 characters
    key_value: str | None
    event_id: str | None
    ts_ms: int | None  # epoch ms UTC; None: the server stamps it on accept
    system: bool
    params: dict[str, Any]  # insertion order = event order; no None values
    # leaf_tuples(params) when the parse computed them on the way; None: not computed
    leaves: list[LeafTuple] | None = dataclasses.field(default=None, compare=False, repr=False)
    # the contact the event is already tied to (bulk column batches and their log records,
    # never a parsed document): mapping then takes it as it is. None: mapped as usual.
    contact: int | None = None


@dataclass(frozen=True, slots=True)
class Leaf:
    path: str  # dotted path: "product.price", "products.productId"
    value: float | int | str | bool | None  # None: an object is present at `path`
    items: tuple[tuple[str, int], ...]  # (array prefix, element ordinal), outermost first


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


def parse_event(doc: Mapping[str, Any] | Event) -> Event:
    """One event of either shape -> Event, or InvalidArgument naming the offending field.

    An Event (built by trusted code: a log record of a column batch) is taken as it is.
    """
    if isinstance(doc, Event):
        return doc
    if type(doc) is dict and doc.keys() <= _TOP_KEYS:
        event = _parse_event_fast(doc)
        if event is not None:
            return event
    return _parse_event_checked(doc)


# ---------------------------------------------------------------------------- fast path
#
# The common event (plain dicts and lists, ASCII text within limits, small numbers) is
# checked in one walk that also bounds its encoded size and flattens it (Event.leaves).
# Anything else makes the fast path give up (return None) and `_parse_event_checked` runs
# from the start, so errors and their order are exactly the checked path's. The fast path
# raises only where every earlier check has passed, with the error the checked path raises.
# Nested values of the input are kept, not copied (the checked path copies them).

_TOP_KEYS = frozenset(TOP_LEVEL_KEYS)
_JSON_BLANKS = " \t\n\r"
_SMALL_INT = 2**63  # ints of fewer than 20 digits: at most 32 encoded bytes with the sign
_NUMBER_BOUND = 32  # bytes of any float's or small int's JSON text


def _text_ok(s: str) -> bool:
    """check_text without the error: valid Unicode of at most MAX_STRING_BYTES UTF-8 bytes."""
    if s.isascii():
        return len(s) <= MAX_STRING_BYTES
    try:
        return len(s.encode("utf-8")) <= MAX_STRING_BYTES
    except UnicodeEncodeError:
        return False


_NOT_JSON = object()
_scan_json = make_scanner(json.JSONDecoder(parse_constant=_reject_constant))  # type: ignore[arg-type]


def _json_text_value(text: str) -> Any:
    """json.loads(text) with NaN/Infinity refused, or _NOT_JSON; `text` starts with { or [
    after blanks. Calls the decoder's scanner directly (no per-call wrapper work)."""
    start = 0
    if text[0] in _JSON_BLANKS:
        start = len(text) - len(text.lstrip(_JSON_BLANKS))
    try:
        value, end = _scan_json(text, start)
    except (StopIteration, ValueError, RecursionError):
        return _NOT_JSON
    if end != len(text) and text[end:].strip(_JSON_BLANKS):
        return _NOT_JSON
    return value


def _tree_leaves(
    path: str,
    value: Any,
    items: tuple[tuple[str, int], ...],
    depth: int,
    leaves: list[LeafTuple],
    counters: dict[str, int],
) -> int:
    """Checks a dict or list in fast form (exact dicts and lists, str keys, checked text,
    finite numbers, small ints, at most MAX_DEPTH containers deep) and adds its leaves as
    `_walk` does; returns a bound of its encoded size, or -1 when it is not in fast form."""
    if depth >= MAX_DEPTH:
        return -1
    bound = 2
    if type(value) is dict:
        leaves.append((path, None, items))
        for key, v in value.items():
            if type(key) is not str or not key:
                return -1
            if not (key.isascii() and len(key) <= MAX_STRING_BYTES) and not _text_ok(key):
                return -1
            bound += 6 * len(key) + 4
            t = type(v)
            if t is str:
                if not (v.isascii() and len(v) <= MAX_STRING_BYTES) and not _text_ok(v):
                    return -1
                bound += 6 * len(v) + 3
            elif t is int:
                if not -_SMALL_INT < v < _SMALL_INT:
                    return -1
                bound += _NUMBER_BOUND
            elif t is float:
                if v - v != 0.0:  # NaN or infinite
                    return -1
                bound += _NUMBER_BOUND
            elif t is bool:
                bound += 6
            elif v is None:
                bound += 6
                continue
            elif t is dict or t is list:
                inner = _tree_leaves(f"{path}.{key}", v, items, depth + 1, leaves, counters)
                if inner < 0:
                    return -1
                bound += inner + 1
                continue
            else:
                return -1
            leaves.append((f"{path}.{key}", v, items))
        return bound
    for v in value:
        t = type(v)
        if t is str:
            if not (v.isascii() and len(v) <= MAX_STRING_BYTES) and not _text_ok(v):
                return -1
            bound += 6 * len(v) + 3
        elif t is int:
            if not -_SMALL_INT < v < _SMALL_INT:
                return -1
            bound += _NUMBER_BOUND
        elif t is float:
            if v - v != 0.0:
                return -1
            bound += _NUMBER_BOUND
        elif t is bool:
            bound += 6
        elif v is None:
            bound += 6
            continue
        elif t is list:  # an array in an array adds its elements to the outer one
            inner = _tree_leaves(path, v, items, depth + 1, leaves, counters)
            if inner < 0:
                return -1
            bound += inner + 1
            continue
        elif t is not dict:
            return -1
        ordinal = counters.get(path, 0)
        counters[path] = ordinal + 1
        if t is dict:
            inner = _tree_leaves(path, v, items + ((path, ordinal),), depth + 1, leaves, counters)
            if inner < 0:
                return -1
            bound += inner + 1
        else:
            leaves.append((path, v, items + ((path, ordinal),)))
    return bound


def _fast_params(pairs: Any, per_param: int) -> tuple[dict[str, Any], int, list[LeafTuple] | None] | None:
    """(params, size bound, leaves) of (name, value) pairs in fast form, or None.

    `per_param` bounds the bytes around one parameter's name and value in its shape. The
    leaves are `leaf_tuples(params)`, or None when a name repeats (the last value counts).
    """
    params: dict[str, Any] = {}
    leaves: list[LeafTuple] = []
    counters: dict[str, int] = {}
    repeated = False
    bound = 2
    for name, value in pairs:
        if type(name) is not str or not name:
            return None
        if not (name.isascii() and len(name) <= MAX_STRING_BYTES) and not _text_ok(name):
            return None
        t = type(value)
        if t is str:
            if not (value.isascii() and len(value) <= MAX_STRING_BYTES) and not _text_ok(value):
                return None
            bound += 6 * (len(name) + len(value)) + per_param
            head = value[:1]
            if head == "{" or head == "[" or (head.isspace() and value.lstrip()[:1] in ("{", "[")):
                parsed = _json_text_value(value)
                if parsed is not _NOT_JSON:
                    if _tree_leaves(name, parsed, (), 0, leaves, counters) < 0:
                        return None  # the checked path names what is wrong inside
                    value = parsed
                else:
                    leaves.append((name, value, ()))
            else:
                leaves.append((name, value, ()))
        elif t is int or t is float or t is bool:
            if t is int and not -_SMALL_INT < value < _SMALL_INT:
                return None
            if t is float and value - value != 0.0:
                return None
            bound += 6 * len(name) + per_param + _NUMBER_BOUND
            leaves.append((name, value, ()))
        elif value is None:
            bound += 6 * len(name) + per_param + 5
            continue  # null is absent
        elif t is dict or t is list:
            inner = _tree_leaves(name, value, (), 0, leaves, counters)
            if inner < 0:
                return None
            bound += 6 * len(name) + per_param + inner
        else:
            return None
        if name in params:
            repeated = True
        params[name] = value
    return params, bound, None if repeated else leaves


def _parse_event_fast(doc: dict[str, Any]) -> Event | None:
    """The event of a document in fast form, or None to take the checked path."""
    type_key = doc.get("eventTypeKey")
    if type(type_key) is not str or not 0 < len(type_key) <= MAX_TYPE_KEY_CHARS:
        return None
    if not type_key.isascii() and not _text_ok(type_key):
        return None
    key_value = doc.get("keyValue")
    if key_value is not None:
        if type(key_value) is not str or not (key_value.isascii() and len(key_value) <= MAX_STRING_BYTES):
            return None
        key_value = key_value or None
    event_id = doc.get("eventId")
    if event_id is not None:
        if type(event_id) is not str or not (event_id.isascii() and len(event_id) <= MAX_STRING_BYTES):
            return None
        event_id = event_id or None
    raw_ts = doc.get("timestamp")
    bound = 200 + 6 * (len(type_key) + len(key_value or "") + len(event_id or ""))
    if raw_ts is None or raw_ts == "":
        ts_ms = None
    elif type(raw_ts) is str or type(raw_ts) is int:
        ts_ms = parse_timestamp(raw_ts, "timestamp")  # raises what the checked path raises
        if type(raw_ts) is str:
            bound += 6 * len(raw_ts)
    else:
        return None
    system = doc.get("system")
    if system is None:
        system = False
    elif type(system) is not bool:
        return None
    raw = doc.get("params")
    if raw is None:
        return Event(type_key, key_value, event_id, ts_ms, system, {}, []) if bound <= MAX_EVENT_BYTES else None
    if type(raw) is list:
        if len(raw) > MAX_PARAMS:
            return None
        pairs: list[tuple[Any, Any]] = []
        append = pairs.append
        for item in raw:
            if type(item) is not dict:
                return None
            if len(item) == 2 and "name" in item and "value" in item:
                append((item["name"], item["value"]))
            elif item.keys() <= _ITEM_KEYS:
                append((item.get("name"), item.get("value")))
            else:
                return None
        got = _fast_params(pairs, 24)
    elif type(raw) is dict:
        if len(raw) > MAX_PARAMS:
            return None
        got = _fast_params(raw.items(), 4)
    else:
        return None
    if got is None:
        return None
    params, params_bound, leaves = got
    if bound + params_bound > MAX_EVENT_BYTES:
        return None  # near the limit: the checked path measures exactly
    return Event(type_key, key_value, event_id, ts_ms, system, params, leaves)


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


# ---------------------------------------------------------------------------- flattening


def flatten(params: Mapping[str, Any]) -> list[Leaf]:
    """Leaves of all parameter values in document order (EVENTS.md section 1, dotted paths).

    An object at a path yields a container leaf (value None) before its members; an array
    passes through: each element is addressed at the array's own path and takes the next
    ordinal of that path (counted over the whole event); an array directly inside an array
    is flattened into it. Nulls yield nothing.
    """
    return [Leaf(path, value, items) for path, value, items in leaf_tuples(params)]


def leaf_tuples(params: Mapping[str, Any]) -> list[LeafTuple]:
    """`flatten` as plain (path, value, items) tuples: what the store takes on its hot path."""
    leaves: list[LeafTuple] = []
    counters: dict[str, int] = {}
    for name, value in params.items():
        if isinstance(value, (dict, list)):
            _walk(name, value, (), leaves, counters)
        elif value is not None:
            leaves.append((name, value, ()))
    return leaves


def _walk(
    path: str,
    value: dict[str, Any] | list[Any],
    items: tuple[tuple[str, int], ...],
    leaves: list[LeafTuple],
    counters: dict[str, int],
) -> None:
    """Leaves of a container at `path` (`items`: the array elements it lies in)."""
    if isinstance(value, dict):
        leaves.append((path, None, items))
        for key, member in value.items():
            if isinstance(member, (dict, list)):
                _walk(f"{path}.{key}", member, items, leaves, counters)
            elif member is not None:
                leaves.append((f"{path}.{key}", member, items))
        return
    for element in value:
        if element is None:
            continue
        if isinstance(element, list):
            _walk(path, element, items, leaves, counters)
            continue
        ordinal = counters.get(path, 0)
        counters[path] = ordinal + 1
        if isinstance(element, dict):
            _walk(path, element, items + ((path, ordinal),), leaves, counters)
        else:
            leaves.append((path, element, items + ((path, ordinal),)))
