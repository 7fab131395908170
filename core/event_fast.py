"""The fast parse of the common event document (`core.events.parse_event` tries it first).

The common event (plain dicts and lists, ASCII text within limits, small numbers) is
checked in one walk that also bounds its encoded size and flattens it (Event.leaves).
Anything else makes the fast path give up (return None) and `core.events`' checked parse
runs from the start, so errors and their order are exactly the checked path's. The fast
path raises only where every earlier check has passed, with the error the checked path
raises. Nested values of the input are kept, not copied (the checked path copies them).

A document decoded from a short JSON Lines line (`parse_event_fast(doc, plain=True)`, see
"plain lines" below) skips the size checks: the line's length bounds every size.
"""

from __future__ import annotations

import json
from json.scanner import make_scanner
from operator import itemgetter
from typing import Any

from core.event_model import (
    ITEM_KEYS,
    MAX_DEPTH,
    MAX_EVENT_BYTES,
    MAX_PARAMS,
    MAX_STRING_BYTES,
    MAX_TYPE_KEY_CHARS,
    TOP_LEVEL_KEYS,
    Event,
    LeafTuple,
    reject_constant,
)
from core.timestamps import parse_timestamp

TOP_KEYS = frozenset(TOP_LEVEL_KEYS)
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
_scan_json = make_scanner(json.JSONDecoder(parse_constant=reject_constant))  # type: ignore[arg-type]


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


_OTHER = -2  # _scalar_bound of a value that is no str, int, float or bool


def _scalar_bound(v: Any, t: type) -> int:
    """A bound of the encoded size of a str, int, float or bool `v` (of type `t`) in fast
    form; -1 when it is not in fast form (unchecked text, a number out of range), _OTHER for
    a value of another type."""
    if t is str:
        if not (v.isascii() and len(v) <= MAX_STRING_BYTES) and not _text_ok(v):
            return -1
        return 6 * len(v) + 3
    if t is int:
        return _NUMBER_BOUND if -_SMALL_INT < v < _SMALL_INT else -1
    if t is float:
        return _NUMBER_BOUND if v - v == 0.0 else -1  # not NaN nor infinite
    if t is bool:
        return 6
    return _OTHER


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
            size = _scalar_bound(v, t)
            if size >= 0:
                bound += size
                leaves.append((f"{path}.{key}", v, items))
            elif v is None:
                bound += 6
            elif size == _OTHER and (t is dict or t is list):
                inner = _tree_leaves(f"{path}.{key}", v, items, depth + 1, leaves, counters)
                if inner < 0:
                    return -1
                bound += inner + 1
            else:
                return -1
        return bound
    for v in value:
        t = type(v)
        size = _scalar_bound(v, t)
        if v is None:
            bound += 6
            continue
        if t is list:  # an array in an array adds its elements to the outer one
            inner = _tree_leaves(path, v, items, depth + 1, leaves, counters)
            if inner < 0:
                return -1
            bound += inner + 1
            continue
        if size == -1 or (size == _OTHER and t is not dict):
            return -1
        ordinal = counters.get(path, 0)
        counters[path] = ordinal + 1
        if t is dict:
            inner = _tree_leaves(path, v, items + ((path, ordinal),), depth + 1, leaves, counters)
            if inner < 0:
                return -1
            bound += inner + 1
        else:
            bound += size
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


def parse_event_fast(doc: dict[str, Any], plain: bool = False) -> Event | None:
    """The event of a document in fast form, or None to take the checked path.

    `plain`: the document was decoded from a line of at most PLAIN_LINE_BYTES bytes, so no
    size limit needs checking (see "plain lines" below).
    """
    type_key = doc.get("eventTypeKey")
    if type(type_key) is not str or not 0 < len(type_key) <= MAX_TYPE_KEY_CHARS:
        return None
    if not type_key.isascii() and (plain or not _text_ok(type_key)):
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
    got: tuple[dict[str, Any], int, list[LeafTuple] | None] | None
    if type(raw) is list:
        if len(raw) > MAX_PARAMS:
            return None
        if plain:
            got = _plain_items(raw)
        else:
            pairs = _item_pairs(raw)
            got = None if pairs is None else _fast_params(pairs, 24)
    elif type(raw) is dict:
        if len(raw) > MAX_PARAMS:
            return None
        got = _plain_params(raw.items()) if plain else _fast_params(raw.items(), 4)
    else:
        return None
    if got is None:
        return None
    params, params_bound, leaves = got
    if bound + params_bound > MAX_EVENT_BYTES:
        return None  # near the limit: the checked path measures exactly
    return Event(type_key, key_value, event_id, ts_ms, system, params, leaves)


def _item_pairs(raw: list[Any]) -> list[tuple[Any, Any]] | None:
    """(name, value) of v2 items that are dicts of name and value (either may be absent),
    or None."""
    pairs: list[tuple[Any, Any]] = []
    append = pairs.append
    for item in raw:
        if type(item) is not dict:
            return None
        if len(item) == 2 and "name" in item and "value" in item:
            append((item["name"], item["value"]))
        elif item.keys() <= ITEM_KEYS:
            append((item.get("name"), item.get("value")))
        else:
            return None
    return pairs


# ---------------------------------------------------------------------------- plain lines
#
# A document the JSON decoder (strict: no raw control characters) read from a line of at
# most PLAIN_LINE_BYTES UTF-8 bytes breaks no size limit: a decoded string takes at most as
# many UTF-8 bytes as its source text (an escape is longer than what it stands for), and
# the compact encoding of the document takes at most 8 times the line (a float's text, at
# most 24 bytes, comes from at least 3 bytes of source; anything else from at least as many
# bytes as it encodes to), which is below MAX_EVENT_BYTES. Its values are exact JSON types
# (dict, list, str, int, float, bool, None) with str keys. What is left to check is that
# text is ASCII (other text takes the general fast form, which checks Unicode), numbers,
# depth, empty names and the shapes of the fields.

PLAIN_LINE_BYTES = MAX_STRING_BYTES  # longest line whose documents are taken as plain
_NAME_VALUE = itemgetter("name", "value")
_TWO = frozenset({2})


def _plain_scalar(v: Any, t: type) -> int:
    """For a value of a plain line: 1 when it is a str, int, float or bool in fast form (ASCII
    text, a finite number in range), 0 when it is one of those but not in fast form, -1 for a
    value of another type."""
    if t is str:
        return 1 if v.isascii() else 0
    if t is int:
        return 1 if -_SMALL_INT < v < _SMALL_INT else 0
    if t is float:
        return 1 if v - v == 0.0 else 0  # not NaN nor infinite
    return 1 if t is bool else -1


def _plain_tree(
    path: str,
    value: Any,
    items: tuple[tuple[str, int], ...],
    depth: int,
    leaves: list[LeafTuple],
    counters: dict[str, int],
) -> bool:
    """`_tree_leaves` for a value of a plain line: adds its leaves; False when it is not
    in fast form (non-ASCII text, a number out of range, too deep, an empty key)."""
    if depth >= MAX_DEPTH:
        return False
    if type(value) is dict:
        leaves.append((path, None, items))
        for key, v in value.items():
            if not key or not key.isascii():
                return False
            t = type(v)
            ok = _plain_scalar(v, t)
            if ok > 0:
                leaves.append((f"{path}.{key}", v, items))
            elif ok == 0:
                return False
            elif t is dict or t is list:
                if not _plain_tree(f"{path}.{key}", v, items, depth + 1, leaves, counters):
                    return False
            # else None: no leaf
        return True
    for v in value:
        t = type(v)
        ok = _plain_scalar(v, t)
        if ok == 0:
            return False
        if v is None:
            continue
        if t is list:  # an array in an array adds its elements to the outer one
            if not _plain_tree(path, v, items, depth + 1, leaves, counters):
                return False
            continue
        ordinal = counters.get(path, 0)
        counters[path] = ordinal + 1
        if t is dict:
            if not _plain_tree(path, v, items + ((path, ordinal),), depth + 1, leaves, counters):
                return False
        else:
            leaves.append((path, v, items + ((path, ordinal),)))
    return True


def _plain_params(pairs: Any) -> tuple[dict[str, Any], int, list[LeafTuple] | None] | None:
    """`_fast_params` of a plain line's parameters, the size bound left at 0 (the line
    bounds the size), or None when they are not in fast form."""
    params: dict[str, Any] = {}
    leaves: list[LeafTuple] = []
    counters: dict[str, int] = {}
    given = 0  # parameters with a value: more than len(params) when a name repeats
    for name, value in pairs:
        if type(name) is not str or not name or not name.isascii():
            return None
        t = type(value)
        if t is str:
            if not value.isascii():
                return None
            head = value[:1]
            if head == "{" or head == "[" or (head.isspace() and value.lstrip()[:1] in ("{", "[")):
                parsed = _json_text_value(value)
                if parsed is not _NOT_JSON:
                    if not _plain_tree(name, parsed, (), 0, leaves, counters):
                        return None  # the checked path names what is wrong inside
                    value = parsed
                else:
                    leaves.append((name, value, ()))
            else:
                leaves.append((name, value, ()))
        elif t is int:
            if not -_SMALL_INT < value < _SMALL_INT:
                return None
            leaves.append((name, value, ()))
        elif t is float:
            if value - value != 0.0:
                return None
            leaves.append((name, value, ()))
        elif value is None:
            continue  # null is absent
        elif t is dict or t is list:
            if not _plain_tree(name, value, (), 0, leaves, counters):
                return None
        else:
            leaves.append((name, value, ()))  # bool
        params[name] = value
        given += 1
    return params, 0, leaves if given == len(params) else None


def _plain_items(raw: list[Any]) -> tuple[dict[str, Any], int, list[LeafTuple] | None] | None:
    """`_plain_params` of v2 items of exactly the keys name and value, or None."""
    # The decoder's items are dicts: two entries that itemgetter finds are name and value.
    # Anything else has no len or raises TypeError for a str key.
    try:
        if not set(map(len, raw)) <= _TWO:
            return None
        return _plain_params(map(_NAME_VALUE, raw))
    except (KeyError, TypeError):
        return None

