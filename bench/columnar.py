"""The generated events as leaf columns for the bulk loader (`core.bulk.append_leaves`).

For every event type of `bench.datagen`, flat or nested, the events of one column chunk
become the leaf columns that flattening their documents (`core.event_model.flatten`) gives: the
same paths, kinds, values, array item ordinals and leaf positions, so bulk-loading a type's
events stores what ingesting its documents one by one stores. Strings are handed over as
codes into vocabularies shared across chunks (contact ids, emails, catalog names), so no
per-event Python string is built for them.

Leaf order of one document (e = 1 when the contact has an email, else 0; v2 types carry
externalCustomerId then email, v3 types externalCustomerId only):

    productViewed          ext, [email], product{}, .productId, .price, .isInStock,
                           .categories[0..m), currencyCode
    productCategoryViewed  ext, [email], category{}, .productCategoryId
    cartUpdated            ext, [email], products[i]{}, .productId, .quantity, .price (per item),
                           currencyCode, recycleStateId
    purchase               ext, [email], totalPrice, items[i]{}, .title, .price, .quantity,
                           .category (per item), [city]
    searchRequest          ext, [email], search, isFound
    app / email / push     ext, then their flat parameters in document order
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench import eventdocs, vocab
from core.bulk import Coded, LeafColumn
from core.columns import Kind

_STR, _NUM, _NODE = Kind.STR, Kind.NUM, Kind.NODE


def _vocab(words: Any) -> np.ndarray:
    return np.array(list(words), dtype=object)


@dataclass(frozen=True, slots=True)
class TypeColumns:
    """One event type of one chunk: contact ids, times and leaf columns (event order)."""

    type_key: str
    contact: np.ndarray  # uint32
    ts_ms: np.ndarray  # int64
    columns: list[LeafColumn]


@dataclass(slots=True)
class LeafColumnsBuilder:
    """Builds leaf columns chunk by chunk; vocabularies of contact ids and emails are made once
    (index = contact id) and shared by every chunk."""

    contacts: dict[str, np.ndarray]
    _ext: np.ndarray | None = None
    _email: np.ndarray | None = None
    _fixed: dict[str, np.ndarray] = field(default_factory=dict)

    def _ids(self) -> tuple[np.ndarray, np.ndarray]:
        if self._ext is None:
            n = len(self.contacts["has_email"])
            self._ext = _vocab(f"C-{i}" for i in range(n + 1))
            self._email = _vocab(f"User{i}@Example.com" for i in range(n + 1))
        assert self._email is not None
        return self._ext, self._email

    def _words(self, name: str, words: Any) -> np.ndarray:
        arr = self._fixed.get(name)
        if arr is None:
            arr = self._fixed[name] = _vocab(words)
        return arr

    def product_ids(self, codes: np.ndarray) -> Coded:
        """Catalog product ids ("P00042") of `codes`, from a vocabulary grown as needed."""
        need = int(codes.max(initial=0)) + 1
        vocab = self._fixed.get("products")
        if vocab is None or vocab.shape[0] < need:
            vocab = self._fixed["products"] = _vocab(eventdocs.product_id(k) for k in range(max(need, 1024)))
        return Coded(codes.astype(np.int64), vocab)

    def type_columns(self, chunk: dict[str, np.ndarray], name: str) -> TypeColumns:
        """The leaf columns of the events of type `name` in `chunk`."""
        cid = chunk[f"{name}.contact"]
        n = int(cid.shape[0])
        ext, email = self._ids()
        rows = np.arange(n, dtype=np.int64)
        cols = [LeafColumn("externalCustomerId", _STR, rows, Coded(cid, ext), order=np.zeros(n, np.int64))]
        base = np.ones(n, dtype=np.int64)  # leaf position of the first payload leaf
        if name in vocab.V2_TYPES:
            he = self.contacts["has_email"][cid.astype(np.int64) - 1]
            at = np.flatnonzero(he)
            cols.append(LeafColumn("email", _STR, at, Coded(cid[at], email), order=np.ones(at.shape[0], np.int64)))
            base += he
        cols += _PAYLOAD[name](self, chunk, name, n, base)
        return TypeColumns(name, cid, chunk[f"{name}.ts_ms"], cols)


# ------------------------------------------------------------------------- helpers


def _flat(path: str, kind: Kind, n: int, values: Any, order: np.ndarray) -> LeafColumn:
    return LeafColumn(path, kind, np.arange(n, dtype=np.int64), values, order=order)


def _numeric(path: str, rows: np.ndarray, values: np.ndarray, kinds: np.ndarray, order: np.ndarray,
             items: dict[str, np.ndarray] | None = None) -> list[LeafColumn]:
    """A numeric parameter written as a number, a numeric string or "n/a": a NUM column for
    the numbers and a STR column for the texts (each entry exactly as its JSON reads)."""
    items = items or {}
    num = np.flatnonzero(kinds == vocab.KIND_NUMBER)
    text = np.flatnonzero(kinds != vocab.KIND_NUMBER)
    out = [LeafColumn(path, _NUM, rows[num], values[num].astype(np.float64),
                      {p: a[num] for p, a in items.items()}, order[num])]
    if text.shape[0]:
        words = _vocab(eventdocs.num_json(x, k) for x, k in zip(values[text].tolist(), kinds[text].tolist()))
        out.append(LeafColumn(path, _STR, rows[text], words, {p: a[text] for p, a in items.items()}, order[text]))
    return out


def _ragged(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(event of each element, ordinal of each element within its event) of ragged arrays."""
    counts = np.diff(offsets)
    event = np.repeat(np.arange(counts.shape[0], dtype=np.int64), counts)
    ordinal = np.arange(int(offsets[-1]), dtype=np.int64) - np.repeat(offsets[:-1], counts)
    return event, ordinal


def _pick(vocab: np.ndarray, codes: np.ndarray) -> Coded:
    return Coded(codes.astype(np.int64), vocab)


# ------------------------------------------------------------------------- payloads


def _product_viewed(b: LeafColumnsBuilder, c: dict[str, np.ndarray], name: str, n: int,
                    base: np.ndarray) -> list[LeafColumn]:
    rows = np.arange(n, dtype=np.int64)
    offs = c[f"{name}.cat_offsets"]
    counts = np.diff(offs)
    event, ordinal = _ragged(offs)
    return [
        LeafColumn("product", _NODE, rows, order=base),
        LeafColumn("product.productId", _STR, rows, b.product_ids(c[f"{name}.product"]), order=base + 1),
        *_numeric("product.price", rows, c[f"{name}.price"], c[f"{name}.price_kind"], base + 2),
        LeafColumn("product.isInStock", _NUM, rows, c[f"{name}.in_stock"].astype(np.float64), order=base + 3),
        LeafColumn("product.categories", _STR, event, _pick(b._words("categories", vocab.CATEGORIES), c[f"{name}.cat_codes"]),
                   {"product.categories": ordinal.astype(np.int32)}, base[event] + 4 + ordinal),
        LeafColumn("currencyCode", _STR, rows, _pick(b._words("usd", ["USD"]), np.zeros(n, np.int64)),
                   order=base + 4 + counts),
    ]


def _category_viewed(b: LeafColumnsBuilder, c: dict[str, np.ndarray], name: str, n: int,
                     base: np.ndarray) -> list[LeafColumn]:
    rows = np.arange(n, dtype=np.int64)
    return [
        LeafColumn("category", _NODE, rows, order=base),
        LeafColumn("category.productCategoryId", _STR, rows,
                   _pick(b._words("categories", vocab.CATEGORIES), c[f"{name}.category"]), order=base + 1),
    ]


def _items(prefix: str, offs: np.ndarray, base: np.ndarray, first: int, width: int
           ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """(event, ordinal, items, leaf position of the element's object) of array elements whose
    objects hold `width` leaves each, the first element's object at position base + first."""
    event, ordinal = _ragged(offs)
    return event, ordinal, {prefix: ordinal.astype(np.int32)}, base[event] + first + width * ordinal


def _cart(b: LeafColumnsBuilder, c: dict[str, np.ndarray], name: str, n: int,
          base: np.ndarray) -> list[LeafColumn]:
    rows = np.arange(n, dtype=np.int64)
    offs = c[f"{name}.item_offsets"]
    counts = np.diff(offs)
    event, _, items, at = _items("products", offs, base, 0, 4)
    recycle = _vocab(f"{x:016x}" for x in c[f"{name}.recycle"].tolist())
    return [
        LeafColumn("products", _NODE, event, None, items, at),
        LeafColumn("products.productId", _STR, event, b.product_ids(c[f"{name}.item_product"]), items, at + 1),
        *_numeric("products.quantity", event, c[f"{name}.item_qty"], c[f"{name}.item_qty_kind"], at + 2, items),
        LeafColumn("products.price", _NUM, event, c[f"{name}.item_price"].astype(np.float64), items, at + 3),
        LeafColumn("currencyCode", _STR, rows, _pick(b._words("usd", ["USD"]), np.zeros(n, np.int64)),
                   order=base + 4 * counts),
        _flat("recycleStateId", _STR, n, recycle, base + 4 * counts + 1),
    ]


def _purchase(b: LeafColumnsBuilder, c: dict[str, np.ndarray], name: str, n: int,
              base: np.ndarray) -> list[LeafColumn]:
    rows = np.arange(n, dtype=np.int64)
    offs = c[f"{name}.item_offsets"]
    counts = np.diff(offs)
    event, _, items, at = _items("items", offs, base, 1, 5)
    city = c[f"{name}.city"]
    has_city = np.flatnonzero(city >= 0)
    return [
        *_numeric("totalPrice", rows, c[f"{name}.total"], c[f"{name}.total_kind"], base),
        LeafColumn("items", _NODE, event, None, items, at),
        LeafColumn("items.title", _STR, event, _pick(b._words("titles", vocab.TITLES), c[f"{name}.item_title"]), items,
                   at + 1),
        LeafColumn("items.price", _NUM, event, c[f"{name}.item_price"].astype(np.float64), items, at + 2),
        *_numeric("items.quantity", event, c[f"{name}.item_qty"], c[f"{name}.item_qty_kind"], at + 3, items),
        LeafColumn("items.category", _STR, event,
                   _pick(b._words("categories", vocab.CATEGORIES), c[f"{name}.item_category"]), items, at + 4),
        LeafColumn("city", _STR, has_city, _pick(b._words("cities", vocab.CITIES), city[has_city]),
                   order=(base + 1 + 5 * counts)[has_city]),
    ]


def _flat_payload(params: tuple[tuple[str, str, str | None], ...]):  # type: ignore[no-untyped-def]
    """A payload of flat parameters: (parameter, chunk column, vocabulary name or None for a
    number), in document order."""

    def build(b: LeafColumnsBuilder, c: dict[str, np.ndarray], name: str, n: int,
              base: np.ndarray) -> list[LeafColumn]:
        out = []
        for pos, (param, column, words) in enumerate(params):
            raw = c[f"{name}.{column}"]
            if words is None:
                out.append(_flat(param, _NUM, n, raw.astype(np.float64), base + pos))
            else:
                out.append(_flat(param, _STR, n, _pick(b._words(words, _VOCABS[words]), raw), base + pos))
        return out

    return build


_VOCABS: dict[str, tuple[str, ...]] = {
    "search_terms": vocab.SEARCH_TERMS, "os": vocab.OS_NAMES, "app_versions": vocab.APP_VERSIONS,
    "workouts": vocab.WORKOUTS, "devices": vocab.DEVICES,
    "campaigns": tuple(f"cmp-{k}" for k in range(vocab.N_CAMPAIGNS)),
}

_PAYLOAD = {
    "productViewed": _product_viewed,
    "productCategoryViewed": _category_viewed,
    "cartUpdated": _cart,
    "purchase": _purchase,
    "searchRequest": _flat_payload((("search", "term", "search_terms"), ("isFound", "found", None))),
    "AppInstall": _flat_payload((("osType", "os", "os"), ("appVersion", "version", "app_versions"))),
    "AppLaunched": _flat_payload((("osType", "os", "os"),)),
    "WorkoutStarted": _flat_payload((("workoutType", "workout", "workouts"), ("deviceCategory", "device", "devices"),
                                     ("osType", "os", "os"), ("calories", "calories", None))),
    "emailOpened": _flat_payload((("campaignId", "campaign", "campaigns"),)),
    "webPushSubscribed": _flat_payload((("os", "os", "os"),)),
}


def chunk_columns(builder: LeafColumnsBuilder, chunk: dict[str, np.ndarray]) -> list[TypeColumns]:
    """Every event type of one chunk with events, in `vocab.EVENT_TYPES` order."""
    out = []
    for name in vocab.EVENT_TYPES:
        if len(chunk[f"{name}.contact"]):
            out.append(builder.type_columns(chunk, name))
    return out
