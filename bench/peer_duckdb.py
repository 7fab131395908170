"""DuckDB as the benchmark peer: loads a generated dataset and runs the suite's SQL.

Tables (one per event type, plus unnested child tables for array parameters), all event
times as BIGINT epoch ms in column ``ts`` and the contact id in ``contact``:

    contacts(id, has_email, has_phone, has_push, city, birthday DATE, vip BOOLEAN)
    product_viewed(eid, contact, ts, product_id, price, in_stock)
    product_view_categories(eid, category)
    category_viewed(eid, contact, ts, category_id)
    cart_updated(eid, contact, ts, recycle_id)
    cart_products(eid, product_id, quantity, quantity_is_text, price)
    purchase(eid, contact, ts, total_price, city)   purchase_items(eid, title, price, quantity, category)
    search_request(eid, contact, ts, search, is_found)
    app_install(eid, contact, ts, os_type, app_version)   app_launched(eid, contact, ts, os_type)
    workout_started(eid, contact, ts, workout_type, device_category, os_type, calories)
    email_opened(eid, contact, ts, campaign_id)     webpush_subscribed(eid, contact, ts, os)

Numeric parameters are DOUBLE: numbers and numeric strings become their value, a value that
is not a number becomes NULL (skipped by aggregates, failing every comparison). Where a
suite segment counts distinct values, a ``*_is_text`` column keeps the value's kind (the
number 2 and the string "2" are two values; the generator writes a numeric string as the
shortest text of its number, so value and kind identify it).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np

from bench import datagen as g

_DDL = """
CREATE TABLE contacts(id UINTEGER, has_email BOOLEAN, has_phone BOOLEAN, has_push BOOLEAN,
                      city VARCHAR, birthday DATE, vip BOOLEAN);
CREATE TABLE product_viewed(eid BIGINT, contact UINTEGER, ts BIGINT, product_id VARCHAR, price DOUBLE,
                            in_stock INTEGER);
CREATE TABLE product_view_categories(eid BIGINT, category VARCHAR);
CREATE TABLE category_viewed(eid BIGINT, contact UINTEGER, ts BIGINT, category_id VARCHAR);
CREATE TABLE cart_updated(eid BIGINT, contact UINTEGER, ts BIGINT, recycle_id BIGINT);
CREATE TABLE cart_products(eid BIGINT, product_id VARCHAR, quantity DOUBLE, quantity_is_text BOOLEAN, price DOUBLE);
CREATE TABLE purchase(eid BIGINT, contact UINTEGER, ts BIGINT, total_price DOUBLE, city VARCHAR);
CREATE TABLE purchase_items(eid BIGINT, title VARCHAR, price DOUBLE, quantity DOUBLE, category VARCHAR);
CREATE TABLE search_request(eid BIGINT, contact UINTEGER, ts BIGINT, search VARCHAR, is_found INTEGER);
CREATE TABLE app_install(eid BIGINT, contact UINTEGER, ts BIGINT, os_type VARCHAR, app_version VARCHAR);
CREATE TABLE app_launched(eid BIGINT, contact UINTEGER, ts BIGINT, os_type VARCHAR);
CREATE TABLE workout_started(eid BIGINT, contact UINTEGER, ts BIGINT, workout_type VARCHAR,
                             device_category VARCHAR, os_type VARCHAR, calories DOUBLE);
CREATE TABLE email_opened(eid BIGINT, contact UINTEGER, ts BIGINT, campaign_id VARCHAR);
CREATE TABLE webpush_subscribed(eid BIGINT, contact UINTEGER, ts BIGINT, os VARCHAR);
"""


_EVENT_TABLES = ("product_viewed", "product_view_categories", "category_viewed", "cart_updated", "cart_products",
                 "purchase", "purchase_items", "search_request", "app_install", "app_launched", "workout_started",
                 "email_opened", "webpush_subscribed")


def _strings(vocab: tuple[str, ...] | list[str], codes: np.ndarray) -> np.ndarray:
    """Object array of vocabulary strings; code -1 becomes None."""
    table = np.array(list(vocab) + [None], dtype=object)
    idx = codes.astype(np.int64)
    idx[idx < 0] = len(vocab)
    return table[idx]


def _parsed(values: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """Numeric values as the engine reads them: NaN (NULL) where the value is not a number."""
    out = values.astype(np.float64).copy()
    out[kinds == g.KIND_TEXT] = np.nan
    return out


def _child_eid(seq: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return np.repeat(seq, np.diff(offsets))


@dataclass(slots=True)
class Timing:
    first_ms: float
    median_ms: float
    runs: int
    ids: np.ndarray  # sorted member contact ids (uint32)


class DuckPeer:
    """One in-memory DuckDB database holding a dataset."""

    def __init__(self, threads: int | None = None) -> None:
        self.con = duckdb.connect(":memory:")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute(_DDL)
        self._products: np.ndarray | None = None
        self.load_seconds = 0.0

    def _insert(self, table: str, cols: dict[str, Any]) -> None:
        self.con.register("_chunk", cols)
        try:
            self.con.execute(f"INSERT INTO {table} SELECT * FROM _chunk")
        finally:
            self.con.unregister("_chunk")

    def load(self, ds: g.Dataset, events: int | None = None) -> float:
        """Loads every table from the dataset's columns; returns seconds taken.

        With `events`, only the first `events` events of the stream (a prefix, as a bounded
        segmentd load holds) are kept.
        """
        t0 = time.perf_counter()
        catalog = int(ds.meta["catalog"])
        self._products = np.array([f"P{k:05d}" for k in range(catalog)], dtype=object)
        c = ds.contact_columns()
        n = ds.contacts
        bday = c["birthday_days"].astype(np.int64)
        missing = bday == np.iinfo(np.int32).min
        birthday = np.where(missing, 0, bday).astype("datetime64[D]").astype(object)
        birthday[missing] = None
        vip = (c["vip"] == 1).astype(object)
        vip[c["vip"] < 0] = None  # field absent
        self._insert("contacts", {
            "id": np.arange(1, n + 1, dtype=np.uint32), "has_email": c["has_email"], "has_phone": c["has_phone"],
            "has_push": c["has_push"], "city": _strings(g.CITIES, c["city"]), "birthday": birthday, "vip": vip,
        })
        for path in ds.event_chunks():
            chunk = g.load_chunk(path)
            if events is not None and int(min((x[0] for k, x in chunk.items() if k.endswith(".seq") and len(x)),
                                              default=0)) >= events:
                break
            self._load_chunk(chunk)
        if events is not None and events < ds.events:
            for table in _EVENT_TABLES:
                self.con.execute(f"DELETE FROM {table} WHERE eid >= {int(events)}")
        self.load_seconds = time.perf_counter() - t0
        return self.load_seconds

    def _load_chunk(self, k: dict[str, np.ndarray]) -> None:
        assert self._products is not None
        P = self._products

        def base(t: str) -> dict[str, Any]:
            return {"eid": k[f"{t}.seq"], "contact": k[f"{t}.contact"], "ts": k[f"{t}.ts_ms"]}

        t = "productViewed"
        self._insert("product_viewed", {**base(t), "product_id": P[k[f"{t}.product"]],
                                        "price": _parsed(k[f"{t}.price"], k[f"{t}.price_kind"]),
                                        "in_stock": k[f"{t}.in_stock"].astype(np.int32)})
        self._insert("product_view_categories", {"eid": _child_eid(k[f"{t}.seq"], k[f"{t}.cat_offsets"]),
                                                 "category": _strings(g.CATEGORIES, k[f"{t}.cat_codes"])})
        t = "productCategoryViewed"
        self._insert("category_viewed", {**base(t), "category_id": _strings(g.CATEGORIES, k[f"{t}.category"])})
        t = "cartUpdated"
        self._insert("cart_updated", {**base(t), "recycle_id": k[f"{t}.recycle"]})
        self._insert("cart_products", {"eid": _child_eid(k[f"{t}.seq"], k[f"{t}.item_offsets"]),
                                       "product_id": P[k[f"{t}.item_product"]],
                                       "quantity": _parsed(k[f"{t}.item_qty"], k[f"{t}.item_qty_kind"]),
                                       "quantity_is_text": k[f"{t}.item_qty_kind"] != g.KIND_NUMBER,
                                       "price": k[f"{t}.item_price"]})
        t = "purchase"
        self._insert("purchase", {**base(t), "total_price": _parsed(k[f"{t}.total"], k[f"{t}.total_kind"]),
                                  "city": _strings(g.CITIES, k[f"{t}.city"])})
        self._insert("purchase_items", {"eid": _child_eid(k[f"{t}.seq"], k[f"{t}.item_offsets"]),
                                        "title": _strings(g.TITLES, k[f"{t}.item_title"]),
                                        "price": k[f"{t}.item_price"],
                                        "quantity": _parsed(k[f"{t}.item_qty"], k[f"{t}.item_qty_kind"]),
                                        "category": _strings(g.CATEGORIES, k[f"{t}.item_category"])})
        t = "searchRequest"
        self._insert("search_request", {**base(t), "search": _strings(g.SEARCH_TERMS, k[f"{t}.term"]),
                                        "is_found": k[f"{t}.found"].astype(np.int32)})
        t = "AppInstall"
        self._insert("app_install", {**base(t), "os_type": _strings(g.OS_NAMES, k[f"{t}.os"]),
                                     "app_version": _strings(g.APP_VERSIONS, k[f"{t}.version"])})
        t = "AppLaunched"
        self._insert("app_launched", {**base(t), "os_type": _strings(g.OS_NAMES, k[f"{t}.os"])})
        t = "WorkoutStarted"
        self._insert("workout_started", {**base(t), "workout_type": _strings(g.WORKOUTS, k[f"{t}.workout"]),
                                         "device_category": _strings(g.DEVICES, k[f"{t}.device"]),
                                         "os_type": _strings(g.OS_NAMES, k[f"{t}.os"]),
                                         "calories": k[f"{t}.calories"]})
        t = "emailOpened"
        camp = np.array([f"cmp-{i}" for i in range(g.N_CAMPAIGNS)], dtype=object)
        self._insert("email_opened", {**base(t), "campaign_id": camp[k[f"{t}.campaign"]]})
        t = "webPushSubscribed"
        self._insert("webpush_subscribed", {**base(t), "os": _strings(g.OS_NAMES, k[f"{t}.os"])})

    def members(self, sql: str) -> np.ndarray:
        """Sorted member ids of a suite query."""
        res = self.con.execute(sql).fetchnumpy()
        ids = np.asarray(res["id"], dtype=np.int64)
        return np.unique(ids).astype(np.uint32)

    def time_query(self, sql: str, runs: int = 5, seconds: float = 30.0) -> Timing:
        """First run apart from the steady state (median of up to `runs` more, within `seconds`)."""
        t0 = time.perf_counter()
        ids = self.members(sql)
        first = (time.perf_counter() - t0) * 1000
        steady: list[float] = []
        deadline = time.perf_counter() + seconds
        while len(steady) < runs and time.perf_counter() < deadline:
            t0 = time.perf_counter()
            self.members(sql)
            steady.append((time.perf_counter() - t0) * 1000)
        return Timing(first, statistics.median(steady) if steady else first, len(steady), ids)

    def row_counts(self) -> dict[str, int]:
        names = [r[0] for r in self.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return {n: int(self.con.execute(f"SELECT count(*) FROM {n}").fetchone()[0]) for n in names}  # type: ignore[index]

    def close(self) -> None:
        self.con.close()


def load_peer(ds: g.Dataset, threads: int | None = None, events: int | None = None) -> DuckPeer:
    """A DuckPeer with `ds` loaded (only its first `events` events when given)."""
    peer = DuckPeer(threads)
    peer.load(ds, events)
    return peer


def version() -> str:
    return str(duckdb.__version__)


__all__ = ["DuckPeer", "Timing", "load_peer", "version"]
