"""A deterministic workload touching every journalled operation, for durability tests.

Each step makes exactly one journal record, so "the first k records" and "the first k steps"
name the same state. The clock is fixed per step, so replay sees the same instants.
"""

from __future__ import annotations

from typing import Any, Callable

from core.engine import Engine

BASE_MS = 1_790_000_000_000
DAY_MS = 86_400_000


class StepClock:
    """A clock tests move by hand (epoch milliseconds)."""

    def __init__(self, now_ms: int = BASE_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def _event(type_key: str, key: str, n: int, **params: Any) -> dict[str, Any]:
    return {"eventTypeKey": type_key, "keyValue": key, "eventId": f"{type_key}-{n}", "params": params}


def steps() -> list[Callable[[Engine], Any]]:
    """The workload: one journal record per step."""
    out: list[Callable[[Engine], Any]] = [
        lambda e: e.upsert_contacts(
            [
                {"externalId": "C-1", "email": "Ann@Example.com", "fields": {"city": "Kyiv", "vip": True}},
                {"externalId": "C-2", "phone": "+44 20 7946 0001", "pushTokens": ["wp:a", "wp:b"]},
                {"externalId": "C-3", "keys": {"loyaltyCard": "LC-7"}, "fields": {"birthday": "1990-11-23"}},
            ]
        ),
        lambda e: e.ingest(
            [
                _event(
                    "purchase",
                    "ann@example.com",
                    1,
                    email="ann@example.com",
                    totalPrice=1200.5,
                    items=[{"title": "sneakers", "qty": 2}, {"title": "socks", "tags": ["a", "b"]}],
                ),
                _event("purchase", "C-2", 2, externalCustomerId="C-2", totalPrice=80, coupon=None),
                _event("pageView", "cookie-9", 3, page="/home", nested={"deep": {"er": [1, 2, 3]}}),
            ]
        ),
        lambda e: e.set_event_type_config("loyalty", {"card": "key:loyaltyCard"}, "", 0),
        lambda e: e.put_segment(
            {
                "name": "big-spenders",
                "condition": {
                    "event": {"type": "purchase", "period": {"last": {"days": 30}}, "sum": {"param": "totalPrice", "gte": 1000}}
                },
            }
        ),
        lambda e: e.ingest([_event("loyalty", "LC-7", 4, card="LC-7", points=15, ok=True)]),
        lambda e: e.put_segment({"name": "members", "condition": {"segment": "big-spenders"}}),
        lambda e: e.put_segment({"name": "static-two", "contacts": [1, 2]}),
        lambda e: e.ingest(
            [
                _event("purchase", "ann@example.com", 1, email="ann@example.com", totalPrice=1),  # duplicate
                _event("purchase", "C-3", 5, externalCustomerId="C-3", totalPrice=2000, items=[{"title": "tv"}]),
            ]
        ),
        lambda e: e.upsert_contacts([{"externalId": "C-4", "email": "dan@example.com", "fields": {"city": "Lviv"}}]),
        lambda e: e.ingest([_event("pageView", "dan@example.com", 6, email="dan@example.com", page="/buy")]),
        lambda e: e.merge_contacts("externalId:C-1", "externalId:C-4"),
        lambda e: e.erase_contact("externalId:C-2"),
        lambda e: e.delete_segment("static-two"),
        lambda e: e.ingest([_event("pageView", "cookie-9", 7, page="/after-erase", ratio=0.25)]),
        lambda e: e.set_event_type_config("pageView", {}, "", 1),
        lambda e: e.upsert_contacts([{"externalId": "C-5", "fields": {"score": 3.5, "note": "ünïcode ✓"}}]),
    ]
    return out


def run(engine: Engine, clock: StepClock, count: int | None = None) -> None:
    """Applies the first `count` steps (all by default), each at its own instant."""
    for index, step in enumerate(steps()[:count]):
        clock.now_ms = BASE_MS + index * 60_000
        step(engine)
