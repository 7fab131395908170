"""A seeded demo dataset: an online shop and a fitness app sharing one contact base.

Shop events use the name/value ("v2") shape with JSON inside string values (pageViewed,
productViewed, productCategoryViewed, cartUpdated, purchase, searchRequest); app events use
the object ("v3") shape (AppInstall, Applogin, AppLaunched, WorkoutStarted); emailOpened and
webPushSubscribed tie channels to the same contacts; a few anonymous visitors and system
events complete it. Everything happens in the 90 days before `now_ms`. The same seed and
`now_ms` give the same documents.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.engine import Engine

DAY_MS = 86_400_000
WINDOW_DAYS = 90
BATCH = 10_000

FIRST_NAMES = (
    "Ann", "Ben", "Carla", "Dmytro", "Eva", "Farid", "Grace", "Hiro", "Iryna", "Jonas",
    "Kate", "Liam", "Maria", "Nadia", "Oscar", "Priya", "Quinn", "Rosa", "Sam", "Tara",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Bauer", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Horvat", "Ivanova",
    "Jensen", "Kowalski", "Lopez", "Moreau", "Novak", "Olsen", "Petrov", "Rossi", "Smith",
)  # fmt: skip
CITIES = (
    ("London", "GB"), ("Manchester", "GB"), ("Berlin", "DE"), ("Munich", "DE"), ("Paris", "FR"),
    ("Lyon", "FR"), ("Kyiv", "UA"), ("Lviv", "UA"), ("Warsaw", "PL"), ("Madrid", "ES"),
)  # fmt: skip
CATEGORIES = ("Mugs", "T-Shirts", "Hoodies", "Bags", "Posters", "Stickers")
COLOURS = ("Green", "Black", "White", "Red", "Blue")
SEARCHES = ("mug", "green hoodie", "tote bag", "poster a2", "sticker pack", "gift", "xxl shirt", "sale")
WORKOUTS = ("run", "cycle", "yoga", "strength", "swim", "walk")
CAMPAIGNS = ("spring-sale", "new-arrivals", "weekly-digest", "win-back", "workout-tips")


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    category: str
    price: float
    in_stock: int


@dataclass(frozen=True, slots=True)
class DemoData:
    """Contact documents (for upsert) and event documents (for ingest), in load order."""

    contacts: list[dict[str, Any]]
    events: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What `load` put into the engine, and a few identifiers worth looking up."""

    contacts: int
    events: int
    accepted: int
    rejected: int
    event_types: int
    example_refs: tuple[str, ...]
    segments: tuple[str, ...] = ()

    def describe(self, address: str) -> str:
        """A short text for the terminal: what was loaded and commands to try next."""
        server = "" if address in ("127.0.0.1:50051", "localhost:50051") else f" --server {address}"
        lines = [
            f"demo data loaded: {self.contacts} contacts, {self.accepted} events of {self.event_types} types",
            "try, in another terminal:",
            f"  segmentd event-types{server}",
            f"  segmentd event-types purchase{server}",
            f"  segmentd event-types WorkoutStarted{server}",
        ]
        lines += [f"  segmentd contact get {ref}{server}" for ref in self.example_refs]
        if self.segments:
            first = self.segments[0]
            lines += [
                f"  segmentd segment list{server}    (demo segments: {', '.join(self.segments)})",
                f"  segmentd segment members {first} --format jsonl{server}",
                f"  segmentd segment explain {first} {self.example_refs[0]}{server}",
                f"  segmentd segment watch{server}    (membership changes as they happen)",
            ]
        lines.append(f"  segmentd ingest events.jsonl{server}    (JSON Lines, one event per line)")
        return "\n".join(lines)


def _catalogue(rng: random.Random) -> list[Product]:
    products = []
    for n in range(40):
        category = CATEGORIES[n % len(CATEGORIES)]
        colour = COLOURS[rng.randrange(len(COLOURS))]
        size = rng.choice(("S", "M", "L", "XL"))
        product_id = f"{category[:2].upper()}{n:02d}-{size}-{colour}"
        price = round(rng.uniform(4, 90) * 2) / 2  # half units, exact in binary
        products.append(Product(product_id, f"{colour} {category[:-1]} {n}", category, price, int(rng.random() < 0.85)))
    return products


def _token(rng: random.Random, n: int = 16) -> str:
    return "".join(rng.choice("abcdef0123456789") for _ in range(n))


def _device_id(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(rng.choice(alphabet) for _ in range(22)) + "--"


def _rfc3339(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _contact(rng: random.Random, i: int) -> dict[str, Any]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    city, country = rng.choice(CITIES)
    birthday = dt.date(rng.randint(1955, 2007), rng.randint(1, 12), rng.randint(1, 28))
    doc: dict[str, Any] = {
        "externalId": f"C-{1000 + i}",
        "email": f"{first}.{last}{i}@example.com".lower(),
        "fields": {
            "firstName": first,
            "lastName": last,
            "gender": rng.choice(("female", "male", "unspecified")),
            "city": city,
            "country": country,
            "birthday": birthday.isoformat(),
            "vip": rng.random() < 0.05,
            "loyaltyPoints": rng.randrange(0, 5000, 10),
        },
    }
    if rng.random() < 0.7:
        doc["phone"] = f"+44 7700 9{i:05d}"
    if rng.random() < 0.4:
        doc["pushTokens"] = [f"wp:{_token(rng)}"]
    if rng.random() < 0.25:
        doc["keys"] = {"loyaltyCard": f"LC-{i:06d}"}
    return doc


class _Generator:
    """Builds the events of one dataset; all randomness comes from one seeded Random."""

    def __init__(self, seed: int, now_ms: int) -> None:
        self.rng = random.Random(seed)
        self.now_ms = now_ms
        self.start_ms = now_ms - WINDOW_DAYS * DAY_MS
        self.products = _catalogue(self.rng)
        self.events: list[dict[str, Any]] = []

    def moment(self, churned: bool = False) -> int:
        end = self.now_ms - 45 * DAY_MS if churned else self.now_ms - 60_000
        return self.rng.randrange(self.start_ms, end)

    def v2(self, key: str, contact: dict[str, Any] | None, ts_ms: int, params: list[tuple[str, Any]], key_value: str = "") -> None:
        locators: list[tuple[str, Any]] = []
        if contact is not None:
            if "phone" in contact:
                locators.append(("phone", contact["phone"].replace(" ", "").lstrip("+")))
            locators.append(("email", contact["email"]))
        ts_ms = min(ts_ms, self.now_ms - 1000)  # sessions near the end never run into the future
        doc: dict[str, Any] = {
            "eventTypeKey": key,
            "keyValue": key_value or (contact["email"] if contact else ""),
            "eventId": _token(self.rng, 24),
            "timestamp": ts_ms,
            "params": [{"name": n, "value": v} for n, v in locators + params],
        }
        self.events.append(doc)

    def v3(self, key: str, ts_ms: int, params: dict[str, Any], key_value: str = "", system: bool = False) -> None:
        ts_ms = min(ts_ms, self.now_ms - 1000)
        doc: dict[str, Any] = {"eventTypeKey": key, "timestamp": _rfc3339(ts_ms), "params": params}
        if key_value:
            doc["keyValue"] = key_value
        if system:
            doc["system"] = True
        self.events.append(doc)

    def shop_session(self, contact: dict[str, Any] | None, ts: int, key_value: str = "") -> None:
        rng, step = self.rng, lambda: rng.randrange(20_000, 300_000)
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(("/", "/sale", "/new", f"/c/{rng.choice(CATEGORIES).lower()}"))
            self.v2("pageViewed", contact, ts, [("page", json.dumps({"location": f"https://shop.example.com{path}"}))], key_value)
            ts += step()
        if contact is None:
            return
        viewed = rng.sample(self.products, rng.randint(1, 4))
        if rng.random() < 0.5:
            category = json.dumps({"productCategoryId": viewed[0].category})
            self.v2("productCategoryViewed", contact, ts, [("category", category)])
            ts += step()
        for p in viewed:
            product = {"productId": p.product_id, "price": p.price, "isInStock": p.in_stock,
                       "someProductProperty": [p.product_id.rsplit("-", 1)[1].lower()]}  # fmt: skip
            self.v2("productViewed", contact, ts, [("product", json.dumps(product)), ("currencyCode", "USD")])
            ts += step()
        if rng.random() < 0.2:
            search = rng.choice(SEARCHES)
            self.v2("searchRequest", contact, ts, [("search", search), ("isFound", int(rng.random() < 0.7))])
            ts += step()
        if rng.random() < 0.35:
            cart: list[dict[str, Any]] = [{"productId": p.product_id, "quantity": rng.randint(1, 3), "price": p.price,
                     "name": p.name, "category": p.category} for p in viewed[: rng.randint(1, len(viewed))]]  # fmt: skip
            cart_id = _token(self.rng, 32)
            self.v2("cartUpdated", contact, ts, [("products", json.dumps(cart)), ("currencyCode", "USD"), ("recycleStateId", cart_id)])
            ts += step()
            if rng.random() < 0.45:
                total = sum(item["price"] * item["quantity"] for item in cart)
                items = [{"productId": i["productId"], "quantity": i["quantity"], "price": i["price"]} for i in cart]
                params = [("totalPrice", total), ("items", json.dumps(items)), ("orderId", f"O-{_token(self.rng, 8)}"),
                          ("currencyCode", "USD"), ("recycleStateId", cart_id)]  # fmt: skip
                self.v2("purchase", contact, ts, params)

    def app_user(self, contact: dict[str, Any], streaker: bool) -> None:
        rng = self.rng
        device, os_type = _device_id(rng), rng.choice(("iOS", "Android"))
        push = f"fcm:{_token(rng, 20)}"
        category = rng.choice(("phone", "phone", "watch"))
        installed = self.moment()
        ext = contact["externalId"]
        self.v3("AppInstall", installed, {"externalCustomerId": ext, "osType": os_type, "appVersion": "3.4.1",
                                          "PushToken": push, "deviceCategory": category}, device)  # fmt: skip
        days = sorted({rng.randrange(installed, self.now_ms - 60_000) for _ in range(rng.randint(2, 30))})
        if streaker:  # every one of the last 14 days
            days += [self.now_ms - d * DAY_MS - rng.randrange(60_000, 6 * 3_600_000) for d in range(14)]
        for ts in days:
            if rng.random() < 0.5:
                self.v3("Applogin", ts, {"PushToken": push, "osType": os_type}, device)
            else:
                self.v3("AppLaunched", ts, {"externalCustomerId": ext, "osType": os_type}, device)
            if rng.random() < 0.7 or streaker:
                workout = {"externalCustomerId": ext, "workoutType": rng.choice(WORKOUTS),
                           "deviceCategory": category, "osType": os_type, "durationMin": rng.randint(10, 90)}  # fmt: skip
                self.v3("WorkoutStarted", ts + 120_000, workout, device)

    def channels(self, contact: dict[str, Any]) -> None:
        rng = self.rng
        if rng.random() < 0.5:
            email = contact["email"].title() if rng.random() < 0.3 else contact["email"]  # emails match in any case
            for _ in range(rng.randint(1, 8)):
                campaign = rng.choice(CAMPAIGNS)
                self.v3("emailOpened", self.moment(), {"Email": email, "campaignId": campaign, "subject": campaign.replace("-", " ")})
        for token in contact.get("pushTokens", ()):
            self.v3("webPushSubscribed", self.moment(), {"PushToken": token, "browser": rng.choice(("Chrome", "Firefox", "Safari"))})


def generate(seed: int = 7, *, now_ms: int, contacts: int = 3000, anonymous: int = 300) -> DemoData:
    """The demo documents for `seed`, with every event in the 90 days before `now_ms`."""
    gen = _Generator(seed, now_ms)
    rng = gen.rng
    people = [_contact(rng, i) for i in range(1, contacts + 1)]
    for person in people:
        churned = rng.random() < 0.15
        if rng.random() < 0.7:
            for _ in range(min(int(rng.expovariate(1 / 2.5)), 15)):
                gen.shop_session(person, gen.moment(churned))
        if rng.random() < 0.35:
            gen.app_user(person, streaker=rng.random() < 0.1)
        gen.channels(person)
    for _ in range(anonymous):  # visitors known only by a cookie
        cookie = f"ck-{_token(rng, 12)}"
        for _ in range(rng.randint(1, 3)):
            gen.shop_session(None, gen.moment(), key_value=cookie)
    for _ in range(20):
        product = rng.choice(gen.products)
        gen.v3("productBackInStock", gen.moment(), {"productId": product.product_id, "price": product.price}, system=True)
    gen.events.sort(key=lambda e: _ts_of(e))
    return DemoData(people, gen.events)


def _ts_of(doc: dict[str, Any]) -> int:
    ts = doc["timestamp"]
    if isinstance(ts, int):
        return ts
    return int(dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp() * 1000)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def load(engine: Engine, *, seed: int = 7, contacts: int = 3000) -> DemoSummary:
    """Generates the demo for the engine's clock and loads it through upsert and ingest."""
    data = generate(seed, now_ms=engine.clock(), contacts=contacts)
    for chunk in _chunks(data.contacts, BATCH):
        engine.upsert_contacts(chunk, source="Import")
    accepted = rejected = 0
    for chunk in _chunks(data.events, BATCH):
        report = engine.ingest(chunk)
        accepted += report.accepted
        rejected += report.rejected
    for segment in DEMO_SEGMENTS:
        engine.put_segment(segment)
    first = data.contacts[0]
    refs = (f"email:{first['email']}", f"externalId:{data.contacts[1]['externalId']}")
    types = len({e["eventTypeKey"] for e in data.events})
    names = tuple(segment["name"] for segment in DEMO_SEGMENTS)
    return DemoSummary(len(data.contacts), len(data.events), accepted, rejected, types, refs, names)


# Saved with the demo: one per family of the segment contract, over the demo's own events.
DEMO_SEGMENTS: tuple[dict[str, Any], ...] = (
    {"name": "big-spenders-90d", "description": "Spent 300 or more in the last 90 days", "tags": ["demo"],
     "condition": {"event": {"type": "purchase", "period": {"last": {"days": 90}},
                             "sum": {"param": "totalPrice", "gte": 300}}}},
    {"name": "lapsed-buyers", "description": "Last purchase more than 30 days ago", "tags": ["demo"],
     "condition": {"event": {"type": "purchase", "period": {"before": {"days": 30}}, "last": {}}}},
    {"name": "strength-on-mobile-30d", "description": "A strength workout on a phone in the last 30 days",
     "tags": ["demo"],
     "condition": {"event": {"type": "WorkoutStarted", "period": {"last": {"days": 30}},
                             "where": [{"param": "workoutType", "op": "eq", "value": "strength"},
                                       {"param": "deviceCategory", "op": "eq", "value": "phone"}]}}},
    {"name": "weekly-readers", "description": "Opened an email in each of the last 2 complete weeks",
     "tags": ["demo"], "condition": {"event": {"type": "emailOpened", "streak": {"unit": "week", "count": 2}}}},
    {"name": "push-without-email", "description": "Web push subscribers with no email on file", "tags": ["demo"],
     "condition": {"all": [{"identifier": {"kind": "pushToken", "present": True}},
                           {"identifier": {"kind": "email", "present": False}}]}},
)
