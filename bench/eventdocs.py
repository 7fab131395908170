"""Event documents of the benchmark data, built from its column chunks.

E-commerce events come in the name/value "v2" shape with JSON-string products and RFC 3339
timestamps, app events in the object "v3" shape with epoch-ms timestamps; `flat_columns`
gives the flat types as the columns of the bulk ingest path instead.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from bench.vocab import (
    APP_VERSIONS,
    CATEGORIES,
    CITIES,
    DEVICES,
    EVENT_TYPES,
    KIND_NUMERIC_STRING,
    KIND_TEXT,
    NOT_A_NUMBER_TEXT,
    OS_NAMES,
    SEARCH_TERMS,
    TITLES,
    V2_TYPES,
    WORKOUTS,
)


def num_json(x: float, kind: int) -> Any:
    """A numeric parameter value as written: number, numeric string or non-numeric text."""
    if kind == KIND_TEXT:
        return NOT_A_NUMBER_TEXT
    v: Any = int(x) if float(x).is_integer() else float(x)
    return str(v) if kind == KIND_NUMERIC_STRING else v


_ENCODER = json.JSONEncoder(separators=(",", ":"))
dumps = _ENCODER.encode
_CATEGORY_JSON = [dumps({"productCategoryId": name}) for name in CATEGORIES]


def product_id(k: int) -> str:
    return f"P{k:05d}"


def _rfc3339(ts_ms: np.ndarray) -> list[str]:
    """RFC 3339 UTC strings with milliseconds ("2026-02-27T14:30:00.000Z")."""
    text = np.datetime_as_string(ts_ms.astype("datetime64[ms]"), unit="ms")
    return [t + "Z" for t in text.tolist()]


Cols = dict[str, list[Any]]  # one event type's columns of a chunk, as lists


class ChunkDocs:
    """Builds the event documents of one column chunk, any slice of it at a time.

    Positions are stream positions within the chunk (0 = its first event). Column lists are
    converted once, so building a chunk slice by slice costs what building it whole does.
    """

    def __init__(self, chunk: dict[str, np.ndarray], contacts: dict[str, np.ndarray]) -> None:
        seqs = [chunk[f"{t}.seq"] for t in EVENT_TYPES]
        self.size = int(sum(len(x) for x in seqs))
        self.base = int(min((int(x[0]) for x in seqs if len(x)), default=0))
        self._chunk = chunk
        self._has_email = contacts["has_email"]
        self._cols: dict[str, Cols] = {}
        self._stamps: dict[str, list[Any]] = {}

    def _type_cols(self, name: str) -> tuple[Cols, list[Any]]:
        cols = self._cols.get(name)
        if cols is None:
            cols = self._cols[name] = {k: v.tolist() for k, v in self._chunk.items() if k.startswith(name + ".")}
            ts = self._chunk[f"{name}.ts_ms"]
            self._stamps[name] = _rfc3339(ts) if name in V2_TYPES else ts.tolist()
        return cols, self._stamps[name]

    def docs(self, lo: int = 0, hi: int | None = None, types: frozenset[str] | None = None) -> list[dict[str, Any]]:
        """Documents of stream positions [lo, hi) of the chunk, in stream order (EVENTS.md JSON);
        with `types`, only the events of those types (still in stream order)."""
        hi = self.size if hi is None else min(hi, self.size)
        out: list[dict[str, Any]] = [{}] * max(0, hi - lo)
        has_email = self._has_email
        for name in EVENT_TYPES:
            if types is not None and name not in types:
                continue
            seq_arr = self._chunk[f"{name}.seq"]
            a = int(np.searchsorted(seq_arr, self.base + lo))
            b = int(np.searchsorted(seq_arr, self.base + hi))
            if a == b:
                continue
            cols, stamps = self._type_cols(name)
            build = _BUILDERS[name]
            seq, cid = cols[f"{name}.seq"], cols[f"{name}.contact"]
            for j in range(a, b):
                s, c, t = seq[j], cid[j], stamps[j]
                payload = build(cols, j)
                if name in V2_TYPES:
                    params = [{"name": "externalCustomerId", "value": f"C-{c}"}]
                    key = f"C-{c}"
                    if has_email[c - 1]:
                        key = f"user{c}@example.com"
                        params.append({"name": "email", "value": f"User{c}@Example.com"})
                    params.extend({"name": k, "value": v} for k, v in payload.items())
                    doc = {"eventTypeKey": name, "keyValue": key, "timestamp": t, "params": params}
                    if name == "purchase":
                        doc["eventId"] = f"o-{s}"
                else:
                    doc = {"eventTypeKey": name, "timestamp": t, "params": {"externalCustomerId": f"C-{c}", **payload}}
                out[s - self.base - lo] = doc
        if types is not None:
            out = [d for d in out if d]
        return out


# Types whose parameters are all flat scalars: they load as columns (EventStore.append_columns).
FLAT_TYPES = frozenset({"searchRequest", "AppInstall", "AppLaunched", "WorkoutStarted", "emailOpened",
                        "webPushSubscribed"})


def flat_columns(chunk: dict[str, np.ndarray], contacts: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """The parameters of one flat event type of a chunk as arrays, named and ordered as the
    type's documents carry them (None / NaN where an event lacks one)."""
    if name not in FLAT_TYPES:
        raise ValueError(f"{name} has nested parameters")
    cid = chunk[f"{name}.contact"].astype(np.int64)
    ext = np.array([f"C-{c}" for c in cid.tolist()], dtype=object)
    out: dict[str, np.ndarray] = {"externalCustomerId": ext}

    def text(vocab: tuple[str, ...], codes: np.ndarray) -> np.ndarray:
        return np.array(vocab, dtype=object)[codes.astype(np.int64)]

    if name == "searchRequest":
        email = np.array([f"User{c}@Example.com" for c in cid.tolist()], dtype=object)
        email[~contacts["has_email"][cid - 1]] = None
        out["email"] = email
        out["search"] = text(SEARCH_TERMS, chunk[f"{name}.term"])
        out["isFound"] = chunk[f"{name}.found"].astype(np.int64)
    elif name == "AppInstall":
        out["osType"] = text(OS_NAMES, chunk[f"{name}.os"])
        out["appVersion"] = text(APP_VERSIONS, chunk[f"{name}.version"])
    elif name == "AppLaunched":
        out["osType"] = text(OS_NAMES, chunk[f"{name}.os"])
    elif name == "WorkoutStarted":
        out["workoutType"] = text(WORKOUTS, chunk[f"{name}.workout"])
        out["deviceCategory"] = text(DEVICES, chunk[f"{name}.device"])
        out["osType"] = text(OS_NAMES, chunk[f"{name}.os"])
        out["calories"] = chunk[f"{name}.calories"].astype(np.int64)
    elif name == "emailOpened":
        out["campaignId"] = np.array([f"cmp-{k}" for k in chunk[f"{name}.campaign"].tolist()], dtype=object)
    elif name == "webPushSubscribed":
        out["os"] = text(OS_NAMES, chunk[f"{name}.os"])
    return out


def chunk_docs(chunk: dict[str, np.ndarray], contacts: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The event documents of one column chunk, in stream order (EVENTS.md JSON)."""
    return ChunkDocs(chunk, contacts).docs()


# Builders: the parameters of event j of a chunk; `c` holds that type's columns as lists.


def _pv(c: Cols, j: int) -> dict[str, Any]:
    o = c["productViewed.cat_offsets"]
    product = {
        "productId": product_id(c["productViewed.product"][j]),
        "price": num_json(c["productViewed.price"][j], c["productViewed.price_kind"][j]),
        "isInStock": c["productViewed.in_stock"][j],
        "categories": [CATEGORIES[x] for x in c["productViewed.cat_codes"][o[j]:o[j + 1]]],
    }
    return {"product": dumps(product), "currencyCode": "USD"}


def _pcv(c: Cols, j: int) -> dict[str, Any]:
    return {"category": _CATEGORY_JSON[c["productCategoryViewed.category"][j]]}


def _cart(c: Cols, j: int) -> dict[str, Any]:
    a, b = c["cartUpdated.item_offsets"][j], c["cartUpdated.item_offsets"][j + 1]
    items = [
        {"productId": product_id(p), "quantity": num_json(q, kq), "price": int(pr)}
        for p, q, kq, pr in zip(c["cartUpdated.item_product"][a:b], c["cartUpdated.item_qty"][a:b],
                                c["cartUpdated.item_qty_kind"][a:b], c["cartUpdated.item_price"][a:b])
    ]
    return {"products": dumps(items), "currencyCode": "USD",
            "recycleStateId": f"{c['cartUpdated.recycle'][j]:016x}"}


def _buy(c: Cols, j: int) -> dict[str, Any]:
    a, b = c["purchase.item_offsets"][j], c["purchase.item_offsets"][j + 1]
    items = [
        {"title": TITLES[t], "price": int(p), "quantity": num_json(q, kq), "category": CATEGORIES[cat]}
        for t, p, q, kq, cat in zip(c["purchase.item_title"][a:b], c["purchase.item_price"][a:b],
                                    c["purchase.item_qty"][a:b], c["purchase.item_qty_kind"][a:b],
                                    c["purchase.item_category"][a:b])
    ]
    out: dict[str, Any] = {"totalPrice": num_json(c["purchase.total"][j], c["purchase.total_kind"][j]),
                           "items": dumps(items)}
    city = c["purchase.city"][j]
    if city >= 0:
        out["city"] = CITIES[city]
    return out


def _search(c: Cols, j: int) -> dict[str, Any]:
    return {"search": SEARCH_TERMS[c["searchRequest.term"][j]], "isFound": c["searchRequest.found"][j]}


def _install(c: Cols, j: int) -> dict[str, Any]:
    return {"osType": OS_NAMES[c["AppInstall.os"][j]], "appVersion": APP_VERSIONS[c["AppInstall.version"][j]]}


def _launch(c: Cols, j: int) -> dict[str, Any]:
    return {"osType": OS_NAMES[c["AppLaunched.os"][j]]}


def _workout(c: Cols, j: int) -> dict[str, Any]:
    return {
        "workoutType": WORKOUTS[c["WorkoutStarted.workout"][j]],
        "deviceCategory": DEVICES[c["WorkoutStarted.device"][j]],
        "osType": OS_NAMES[c["WorkoutStarted.os"][j]],
        "calories": int(c["WorkoutStarted.calories"][j]),
    }


def _email(c: Cols, j: int) -> dict[str, Any]:
    return {"campaignId": f"cmp-{c['emailOpened.campaign'][j]}"}


def _push(c: Cols, j: int) -> dict[str, Any]:
    return {"os": OS_NAMES[c["webPushSubscribed.os"][j]]}


_BUILDERS = {
    "productViewed": _pv,
    "productCategoryViewed": _pcv,
    "cartUpdated": _cart,
    "purchase": _buy,
    "searchRequest": _search,
    "AppInstall": _install,
    "AppLaunched": _launch,
    "WorkoutStarted": _workout,
    "emailOpened": _email,
    "webPushSubscribed": _push,
}
