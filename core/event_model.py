"""What an event is (EVENTS.md section 1): its limits, `Event`, and its parameter values
flattened into dotted-path leaves for the columnar store.

Parsing and validation of documents into events is `core.events`; this module is what that
parse and the store share.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

MAX_PARAMS = 256
MAX_DEPTH = 8  # containers nested in one parameter value; a scalar has depth 0
MAX_STRING_BYTES = 64 * 1024  # UTF-8 bytes of one string
MAX_EVENT_BYTES = 1024 * 1024  # compact JSON encoding of one event, UTF-8 bytes
MAX_BATCH = 10_000
MAX_TYPE_KEY_CHARS = 128

TOP_LEVEL_KEYS = ("eventTypeKey", "keyValue", "eventId", "timestamp", "system", "params")
ITEM_KEYS = frozenset({"name", "value"})

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


def reject_constant(name: str) -> Any:
    """parse_constant for JSON decoders: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not JSON")


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
