"""The benchmark segment suite: SEGMENTS.md definitions with equivalent DuckDB SQL.

Each entry is a segment definition (the JSON of SEGMENTS.md) and a DuckDB query over the
tables of ``bench.peer_duckdb`` that returns the member contact ids (column ``id``) under the
same semantics. Both are evaluated at one fixed instant ``as_of_ms`` (the dataset's ``now``),
so period boundaries are computed here once, with zoneinfo, and written into the SQL as
epoch-millisecond literals.

Semantics the SQL follows (SEGMENTS.md): events stamped after ``as_of`` do not exist;
``count`` of a contact without matching events is 0 (so ``eq 0`` and ``lte`` take the whole
contact universe); ``sum`` of no values is 0, ``avg/min/max`` of no values never hold;
non-numeric values are skipped (NULL in the tables) while numeric strings count as numbers
(the loader parses them); ``first``/``last``/``daysSinceLast`` look at all time up to
``as_of``; ``streak`` needs an event in each of the n previous complete units; ``not`` is
the universe (every contact) minus its child.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class SuiteEntry:
    name: str
    definition: dict[str, Any]  # SEGMENTS.md JSON, name included
    sql: str  # DuckDB query returning one column `id` of member contact ids
    families: tuple[str, ...]  # condition families the entry exercises


# ------------------------------------------------------------------------ instants


def _local(as_of_ms: int, tz: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(as_of_ms / 1000, tz=ZoneInfo(tz))


def _ms(d: dt.datetime) -> int:
    return int(d.timestamp() * 1000)


def _midnight(day: dt.date, tz: str) -> int:
    return _ms(dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)))


def day_start(as_of_ms: int, tz: str, days_back: int = 0) -> int:
    """Start of the local calendar day `days_back` days before as_of's day."""
    return _midnight(_local(as_of_ms, tz).date() - dt.timedelta(days=days_back), tz)


def week_start(as_of_ms: int, tz: str, weeks_back: int = 0) -> int:
    """Start (Monday 00:00 local) of the week `weeks_back` weeks before as_of's week."""
    day = _local(as_of_ms, tz).date()
    monday = day - dt.timedelta(days=day.weekday()) - dt.timedelta(weeks=weeks_back)
    return _midnight(monday, tz)


def _add_months(year: int, month: int, delta: int) -> tuple[int, int]:
    k = year * 12 + (month - 1) + delta
    return k // 12, k % 12 + 1


def month_start(as_of_ms: int, tz: str, months_back: int = 0) -> int:
    """Start of the local calendar month `months_back` months before as_of's month."""
    d = _local(as_of_ms, tz)
    y, m = _add_months(d.year, d.month, -months_back)
    return _midnight(dt.date(y, m, 1), tz)


def months_ago(as_of_ms: int, tz: str, n: int) -> int:
    """The same local date n months earlier (day clamped to the month), same time of day."""
    d = _local(as_of_ms, tz)
    y, m = _add_months(d.year, d.month, -n)
    day = min(d.day, calendar.monthrange(y, m)[1])
    return _ms(d.replace(year=y, month=m, day=day))


def anniversary_days(as_of_ms: int, tz: str, n: int) -> list[tuple[int, int]]:
    """(month, day) pairs of birth dates whose anniversary is n days after as_of's local date."""
    target = _local(as_of_ms, tz).date() + dt.timedelta(days=n)
    pairs = [(target.month, target.day)]
    if target.month == 2 and target.day == 28 and not calendar.isleap(target.year):
        pairs.append((2, 29))  # 29 February counts as 28 February in other years
    return pairs


# ----------------------------------------------------------------------- fragments


def _streak_bucket(col: str, bounds: list[int]) -> str:
    """SQL: index of the unit [bounds[i], bounds[i+1]) that `col` falls in."""
    arms = " ".join(f"WHEN {col} < {b} THEN {i}" for i, b in enumerate(bounds[1:-1]))
    return f"CASE {arms} ELSE {len(bounds) - 2} END"


def _streak_sql(table: str, bounds: list[int], where: str = "TRUE") -> str:
    n = len(bounds) - 1
    return (
        f"SELECT contact AS id FROM {table} WHERE ts >= {bounds[0]} AND ts < {bounds[-1]} AND {where} "
        f"GROUP BY contact HAVING count(DISTINCT {_streak_bucket('ts', bounds)}) = {n}"
    )


def _weeks(as_of_ms: int, tz: str, n: int) -> list[int]:
    return [week_start(as_of_ms, tz, n - i) for i in range(n + 1)]


def _months(as_of_ms: int, tz: str, n: int) -> list[int]:
    return [month_start(as_of_ms, tz, n - i) for i in range(n + 1)]


def _seg(name: str, condition: dict[str, Any], tz: str = "UTC", description: str = "") -> dict[str, Any]:
    return {"name": name, "description": description or name, "purpose": "bench", "tags": ["bench"],
            "timezone": tz, "condition": condition}


# ---------------------------------------------------------------------------- suite


def build_suite(as_of_ms: int) -> list[SuiteEntry]:
    """The suite evaluated at `as_of_ms` (epoch ms)."""
    now = as_of_ms
    utc = "UTC"
    in_last = lambda ms: f"ts >= {now - ms} AND ts <= {now}"  # noqa: E731 - now − n·unit ≤ t ≤ now
    upto = f"ts <= {now}"
    e: list[SuiteEntry] = []

    def add(name: str, cond: dict[str, Any], sql: str, families: tuple[str, ...], tz: str = utc) -> None:
        e.append(SuiteEntry(name, _seg(name, cond, tz), " ".join(sql.split()), families))

    add("frequent-viewers-7d",
        {"event": {"type": "productViewed", "period": {"last": {"days": 7}}, "count": {"gte": 5}}},
        f"SELECT contact AS id FROM product_viewed WHERE {in_last(7 * DAY_MS)} GROUP BY contact HAVING count(*) >= 5",
        ("count", "period.last.days"))

    add("never-carted",
        {"event": {"type": "cartUpdated", "period": {"allTime": {}}, "count": {"eq": 0}}},
        f"SELECT c.id FROM contacts c WHERE NOT EXISTS "
        f"(SELECT 1 FROM cart_updated e WHERE e.contact = c.id AND e.{upto})",
        ("count.eq0", "period.allTime"))

    add("at-most-one-purchase",
        {"event": {"type": "purchase", "period": {"allTime": {}}, "count": {"lte": 1}}},
        f"SELECT c.id FROM contacts c LEFT JOIN (SELECT contact, count(*) AS n FROM purchase WHERE {upto} "
        f"GROUP BY contact) p ON p.contact = c.id WHERE coalesce(p.n, 0) <= 1",
        ("count.lte", "period.allTime"))

    m3 = months_ago(now, utc, 3)
    add("big-spenders-3m",
        {"event": {"type": "purchase", "period": {"last": {"months": 3}},
                   "sum": {"param": "totalPrice", "gte": 1000}}},
        f"SELECT contact AS id FROM purchase WHERE ts >= {m3} AND ts <= {now} GROUP BY contact "
        f"HAVING coalesce(sum(total_price), 0) >= 1000",
        ("sum", "numeric-strings", "period.last.months"))

    add("high-avg-basket-30d",
        {"event": {"type": "purchase", "period": {"last": {"days": 30}},
                   "avg": {"param": "totalPrice", "gt": 250}}},
        f"SELECT contact AS id FROM purchase WHERE {in_last(30 * DAY_MS)} GROUP BY contact "
        f"HAVING avg(total_price) > 250",
        ("avg",))

    add("premium-browsers-14d",
        {"event": {"type": "productViewed", "period": {"last": {"days": 14}},
                   "where": [{"param": "product.isInStock", "op": "eq", "value": 1}],
                   "max": {"param": "product.price", "gte": 400}}},
        f"SELECT contact AS id FROM product_viewed WHERE {in_last(14 * DAY_MS)} AND in_stock = 1 "
        f"GROUP BY contact HAVING max(price) >= 400",
        ("max", "nested-param"))

    add("bargain-hunters-30d",
        {"event": {"type": "productViewed", "period": {"last": {"days": 30}},
                   "min": {"param": "product.price", "lt": 5}}},
        f"SELECT contact AS id FROM product_viewed WHERE {in_last(30 * DAY_MS)} GROUP BY contact HAVING min(price) < 5",
        ("min", "nested-param", "non-numeric-skipped"))

    add("browsed-3-products-24h-never-carted",
        {"all": [{"event": {"type": "productViewed", "period": {"last": {"hours": 24}},
                            "distinct": {"param": "product.productId", "gte": 3}}},
                 {"event": {"type": "cartUpdated", "period": {"allTime": {}}, "count": {"eq": 0}}}]},
        f"SELECT contact AS id FROM product_viewed WHERE {in_last(24 * HOUR_MS)} GROUP BY contact "
        f"HAVING count(DISTINCT product_id) >= 3 "
        f"EXCEPT SELECT contact AS id FROM cart_updated WHERE {upto}",
        ("distinct", "all", "count.eq0", "period.last.hours"))

    add("category-explorers-30d",
        {"event": {"type": "productViewed", "period": {"last": {"days": 30}},
                   "distinct": {"param": "product.categories", "gte": 8}}},
        f"SELECT e.contact AS id FROM product_viewed e JOIN product_view_categories c ON c.eid = e.eid "
        f"WHERE e.ts >= {now - 30 * DAY_MS} AND e.ts <= {now} GROUP BY e.contact "
        f"HAVING count(DISTINCT c.category) >= 8",
        ("distinct.array",))

    add("new-installs-7d",
        {"event": {"type": "AppInstall", "period": {"last": {"days": 7}}, "first": {}}},
        f"SELECT contact AS id FROM app_install WHERE {upto} GROUP BY contact HAVING min(ts) >= {now - 7 * DAY_MS}",
        ("first",))

    add("lapsed-buyers-30d",
        {"event": {"type": "purchase", "period": {"before": {"days": 30}}, "last": {}}},
        f"SELECT contact AS id FROM purchase WHERE {upto} GROUP BY contact HAVING max(ts) < {now - 30 * DAY_MS}",
        ("last", "period.before.days"))

    add("dormant-app-users-14d",
        {"event": {"type": "AppLaunched", "daysSinceLast": {"gte": 14}}},
        f"SELECT contact AS id FROM app_launched WHERE {upto} GROUP BY contact "
        f"HAVING ({now} - max(ts)) // {DAY_MS} >= 14",
        ("daysSinceLast",))

    add("workout-streak-4w",
        {"event": {"type": "WorkoutStarted", "streak": {"unit": "week", "count": 4}}},
        _streak_sql("workout_started", _weeks(now, utc, 4)),
        ("streak.week",))

    add("expensive-sneakers",
        {"event": {"type": "purchase", "period": {"allTime": {}},
                   "where": [{"param": "items", "op": "any", "where": [
                       {"param": "title", "op": "eq", "value": "sneakers"},
                       {"param": "price", "op": "gt", "value": 150}]}]}},
        f"SELECT DISTINCT p.contact AS id FROM purchase p JOIN purchase_items i ON i.eid = p.eid "
        f"WHERE p.{upto} AND i.title = 'sneakers' AND i.price > 150",
        ("any", "array-param"))

    m6 = months_ago(now, utc, 6)
    add("sneaker-orders-6m",
        {"event": {"type": "purchase", "period": {"last": {"months": 6}},
                   "where": [{"param": "totalPrice", "op": "gt", "value": 300},
                             {"param": "items.title", "op": "eq", "value": "sneakers"}],
                   "count": {"gte": 2}}},
        f"SELECT contact AS id FROM purchase p WHERE ts >= {m6} AND ts <= {now} AND total_price > 300 "
        f"AND EXISTS (SELECT 1 FROM purchase_items i WHERE i.eid = p.eid AND i.title = 'sneakers') "
        f"GROUP BY contact HAVING count(*) >= 2",
        ("count", "array-param", "numeric-strings"))

    add("bulk-buyers-90d",
        {"event": {"type": "purchase", "period": {"last": {"days": 90}},
                   "sum": {"param": "items.quantity", "gte": 12}}},
        f"SELECT p.contact AS id FROM purchase p JOIN purchase_items i ON i.eid = p.eid "
        f"WHERE p.ts >= {now - 90 * DAY_MS} AND p.ts <= {now} GROUP BY p.contact HAVING sum(i.quantity) >= 12",
        ("sum.array", "numeric-strings"))

    pairs = " OR ".join(f"(month(birthday) = {m} AND day(birthday) = {d})" for m, d in anniversary_days(now, utc, 1))
    add("birthday-tomorrow",
        {"attribute": {"field": "birthday", "op": "anniversaryInDays", "value": 1}},
        f"SELECT id FROM contacts WHERE birthday IS NOT NULL AND ({pairs})",
        ("attribute.date", "anniversary"))

    add("born-before-1980",
        {"attribute": {"field": "birthday", "op": "lt", "value": "1980-01-01"}},
        "SELECT id FROM contacts WHERE birthday < DATE '1980-01-01'",
        ("attribute.date",))

    add("push-without-email",
        {"all": [{"identifier": {"kind": "pushToken", "present": True}},
                 {"identifier": {"kind": "email", "present": False}}]},
        "SELECT id FROM contacts WHERE has_push AND NOT has_email",
        ("identifier", "all"))

    add("apple-fans",
        {"all": [{"event": {"type": "emailOpened", "streak": {"unit": "month", "count": 3}}},
                 {"any": [
                     {"event": {"type": "productCategoryViewed", "period": {"last": {"days": 30}},
                                "where": [{"param": "category.productCategoryId", "op": "eq", "value": "iPhone"}]}},
                     {"event": {"type": "AppLaunched", "period": {"last": {"days": 30}},
                                "where": [{"param": "osType", "op": "eq", "value": "iOS"}]}},
                     {"event": {"type": "webPushSubscribed", "period": {"allTime": {}},
                                "where": [{"param": "os", "op": "eq", "value": "iOS"}]}}]}]},
        f"({_streak_sql('email_opened', _months(now, utc, 3))}) INTERSECT ("
        f"SELECT contact AS id FROM category_viewed WHERE {in_last(30 * DAY_MS)} AND category_id = 'iPhone' "
        f"UNION SELECT contact FROM app_launched WHERE {in_last(30 * DAY_MS)} AND os_type = 'iOS' "
        f"UNION SELECT contact FROM webpush_subscribed WHERE {upto} AND os = 'iOS')",
        ("streak.month", "any", "all"))

    m12 = months_ago(now, utc, 12)
    add("returning-buyers",
        {"all": [{"event": {"type": "purchase", "period": {"before": {"months": 12}}, "first": {}}},
                 {"event": {"type": "purchase", "period": {"previous": {"unit": "week", "count": 1}}}}]},
        f"(SELECT contact AS id FROM purchase WHERE {upto} GROUP BY contact HAVING min(ts) < {m12}) INTERSECT "
        f"(SELECT contact FROM purchase WHERE ts >= {week_start(now, utc, 1)} AND ts < {week_start(now, utc, 0)})",
        ("first", "period.before.months", "period.previous.week", "all"))

    add("vip-without-recent-purchase",
        {"all": [{"attribute": {"field": "vip", "op": "eq", "value": True}},
                 {"not": {"event": {"type": "purchase", "period": {"last": {"days": 30}}}}}]},
        f"SELECT id FROM contacts WHERE vip = true "
        f"EXCEPT SELECT contact FROM purchase WHERE {in_last(30 * DAY_MS)}",
        ("attribute.boolean", "not", "all"))

    tokyo = "Asia/Tokyo"
    add("strength-ios-today-tokyo",
        {"event": {"type": "WorkoutStarted",
                   "where": [{"param": "workoutType", "op": "eq", "value": "Strength"},
                             {"param": "deviceCategory", "op": "eq", "value": "Mobile"},
                             {"param": "osType", "op": "eq", "value": "iOS"}]}},
        f"SELECT DISTINCT contact AS id FROM workout_started WHERE ts >= {day_start(now, tokyo)} AND ts <= {now} "
        f"AND workout_type = 'Strength' AND device_category = 'Mobile' AND os_type = 'iOS'",
        ("period.today.default", "timezone", "string-filters"), tz=tokyo)

    london = "Europe/London"
    add("london-category-viewers-last-week",
        {"all": [{"attribute": {"field": "city", "op": "eq", "value": "London"}},
                 {"event": {"type": "productCategoryViewed", "period": {"previous": {"unit": "week", "count": 1}},
                            "count": {"gte": 2}}}]},
        f"SELECT id FROM contacts WHERE city = 'London' INTERSECT "
        f"SELECT contact FROM category_viewed WHERE ts >= {week_start(now, london, 1)} "
        f"AND ts < {week_start(now, london, 0)} GROUP BY contact HAVING count(*) >= 2",
        ("attribute.string", "period.previous.week", "timezone"), tz=london)

    add("failed-searchers-yesterday",
        {"event": {"type": "searchRequest", "period": {"yesterday": {}},
                   "where": [{"param": "isFound", "op": "eq", "value": 0}]}},
        f"SELECT DISTINCT contact AS id FROM search_request WHERE ts >= {day_start(now, utc, 1)} "
        f"AND ts < {day_start(now, utc, 0)} AND is_found = 0",
        ("period.yesterday",))

    jan1 = _ms(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    feb1 = _ms(dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc))
    add("cheap-searchers-january",
        {"event": {"type": "searchRequest", "period": {"between": {"from": jan1, "to": feb1}},
                   "where": [{"param": "search", "op": "starts_with", "value": "cheap"}],
                   "count": {"gte": 2}}},
        f"SELECT contact AS id FROM search_request WHERE ts >= {jan1} AND ts < {feb1} AND ts <= {now} "
        f"AND starts_with(search, 'cheap') GROUP BY contact HAVING count(*) >= 2",
        ("period.between", "string-ops"))

    add("cart-heavy-7d",
        {"event": {"type": "cartUpdated", "period": {"last": {"days": 7}},
                   "where": [{"param": "products", "op": "any", "where": [
                       {"param": "quantity", "op": "gte", "value": 3},
                       {"param": "price", "op": "gt", "value": 100}]}]}},
        f"SELECT DISTINCT e.contact AS id FROM cart_updated e JOIN cart_products p ON p.eid = e.eid "
        f"WHERE e.ts >= {now - 7 * DAY_MS} AND e.ts <= {now} AND p.quantity >= 3 AND p.price > 100",
        ("any", "numeric-strings"))

    add("varied-cart-quantities",
        {"event": {"type": "cartUpdated", "period": {"allTime": {}},
                   "distinct": {"param": "products.quantity", "gte": 4}}},
        f"SELECT e.contact AS id FROM cart_updated e JOIN cart_products p ON p.eid = e.eid WHERE e.{upto} "
        f"GROUP BY e.contact HAVING count(DISTINCT (p.quantity, p.quantity_is_text)) >= 4",
        ("distinct.kinds", "numeric-strings"))

    add("app-regulars-this-week",
        {"event": {"type": "AppLaunched", "period": {"thisWeek": {}}, "count": {"gte": 3}}},
        f"SELECT contact AS id FROM app_launched WHERE ts >= {week_start(now, utc)} AND ts <= {now} "
        f"GROUP BY contact HAVING count(*) >= 3",
        ("count", "period.thisWeek"))

    add("calorie-burners-this-month",
        {"event": {"type": "WorkoutStarted", "period": {"thisMonth": {}},
                   "where": [{"param": "workoutType", "op": "in", "value": ["Cardio", "Running", "Cycling"]}],
                   "sum": {"param": "calories", "between": [3000, 20000]}}},
        f"SELECT contact AS id FROM workout_started WHERE ts >= {month_start(now, utc)} AND ts <= {now} "
        f"AND workout_type IN ('Cardio', 'Running', 'Cycling') GROUP BY contact "
        f"HAVING sum(calories) BETWEEN 3000 AND 20000",
        ("sum.between", "filter.in", "period.thisMonth"))

    add("purchases-without-city-90d",
        {"event": {"type": "purchase", "period": {"last": {"days": 90}},
                   "where": [{"param": "city", "op": "not_exists"}]}},
        f"SELECT DISTINCT contact AS id FROM purchase WHERE {in_last(90 * DAY_MS)} AND city IS NULL",
        ("filter.not_exists",))

    add("engaged-readers-mix",
        {"all": [{"event": {"type": "emailOpened", "period": {"last": {"days": 30}}, "count": {"gte": 3}}},
                 {"not": {"identifier": {"kind": "pushToken", "present": True}}},
                 {"any": [{"attribute": {"field": "city", "op": "in", "value": ["Kyiv", "Lviv", "Odesa"]}},
                          {"attribute": {"field": "vip", "op": "eq", "value": True}}]}]},
        f"(SELECT contact AS id FROM email_opened WHERE {in_last(30 * DAY_MS)} GROUP BY contact HAVING count(*) >= 3) "
        f"INTERSECT (SELECT id FROM contacts WHERE NOT has_push) "
        f"INTERSECT (SELECT id FROM contacts WHERE city IN ('Kyiv', 'Lviv', 'Odesa') OR vip = true)",
        ("all", "any", "not", "identifier", "attribute.in"))
    return e


def suite_names(as_of_ms: int) -> list[str]:
    return [s.name for s in build_suite(as_of_ms)]
