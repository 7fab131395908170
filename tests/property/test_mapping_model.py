"""ContactBook + resolve against a plain-Python model of EVENTS.md sections 2, 3 and 5.

The model keeps contacts as a dict of plain dicts and finds identifiers by scanning every
contact; it shares no code with core besides the error classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from core.contacts import ContactBook
from core.errors import InvalidArgument, NotFound
from core.events import parse_event
from core.identifiers import IdKind, TypeMapping
from core.mapping import resolve

pytestmark = pytest.mark.property

KEY_NAME = "card"
SINGLE = ("externalId", "email", "phone")

# ------------------------------------------------------------------ the model

TABLE = {
    "contactid": "contactId",
    "externalcustomerid": "externalId",
    "email": "email",
    "emailaddress": "email",
    "useremail": "email",
    "contactemail": "email",
    "phone": "phone",
    "sms": "phone",
    "phonenumber": "phone",
    "pushtoken": "pushToken",
    "contactkey": "key",
    "contact_key": "key",
}


def norm(kind: str, text: str) -> str:
    if kind == "email":
        return text.strip().lower()
    if kind == "phone":
        out = "".join(c for c in text if c not in " -.()\t\n")
        return out[1:] if out[:1] == "+" else out
    if kind == "contactId":
        return str(int(text)) if text.isdigit() and int(text) > 0 else ""
    return text


def ref(kind: str, value: str) -> str:
    return f"key:{KEY_NAME}:{value}" if kind == "key" else f"{kind}:{value}"


class Model:
    def __init__(self) -> None:
        self.contacts: dict[int, dict[str, Any]] = {}
        self.last_id = 0
        self.conflicts = 0

    def new(self, source: str, now: int) -> int:
        self.last_id += 1
        self.contacts[self.last_id] = {
            "externalId": None, "email": None, "phone": None, "pushToken": [], "keys": {},
            "anonymous": [], "fields": {}, "created": now, "source": source,
        }
        return self.last_id

    def owner(self, kind: str, value: str, key_name: str = KEY_NAME) -> int | None:
        if kind == "contactId":
            return int(value) if int(value) in self.contacts else None
        for cid, c in self.contacts.items():
            if kind in SINGLE and c[kind] == value:
                return cid
            if kind in ("pushToken", "anonymous") and value in c[kind]:
                return cid
            if kind == "key" and c["keys"].get(key_name) == value:
                return cid
        return None

    def holds(self, cid: int, kind: str, key_name: str = KEY_NAME) -> str | None:
        c = self.contacts[cid]
        return c["keys"].get(key_name) if kind == "key" else c[kind]

    def give(self, cid: int, kind: str, value: str, key_name: str = KEY_NAME) -> None:
        c = self.contacts[cid]
        if kind in SINGLE:
            c[kind] = value
        elif kind == "key":
            c["keys"][key_name] = value
        else:
            c[kind].append(value)

    # EVENTS.md section 3, with the keyValue as a trailing anonymous key.
    def map_event(self, pairs: list[tuple[str, str]], kv: str | None, system: bool, dry: bool) -> tuple:
        if system:
            return (0, "", False, (), ())
        params: dict[str, str] = {}
        for name, value in pairs:
            params[name] = value
        idents: list[tuple[str, str]] = []
        for name, value in params.items():
            kind = TABLE.get(name.lower())
            if kind is None or norm(kind, value) == "":
                continue
            ident = (kind, norm(kind, value))
            if kind == "contactId" and int(ident[1]) not in self.contacts:
                continue
            if ident not in idents:
                idents.append(ident)
        if kv and all(norm(k, kv) != v for k, v in idents):
            idents.append(("anonymous", kv))
        if not idents:
            raise InvalidArgument("keyValue", "none")
        owners = [self.owner(k, v) for k, v in idents]
        for (kind, value), owner in zip(idents, owners):
            if owner is None:
                continue
            attach, clash = self.plan(owner, idents, owners)
            if kind == "anonymous" and clash:
                break
            if not dry:
                for k, v in attach:
                    self.give(owner, k, v)
                self.conflicts += len(clash)
            return (owner, ref(kind, value), False, tuple(ref(*i) for i in attach), tuple(ref(*i) for i in clash))
        attach, clash = self.plan(None, idents, owners)
        if dry:
            cid = self.last_id + 1
        else:
            cid = self.new("Event", 0)
            for k, v in attach:
                self.give(cid, k, v)
            self.conflicts += len(clash)
        return (cid, ref(*attach[0]), True, tuple(ref(*i) for i in attach), tuple(ref(*i) for i in clash))

    def plan(self, cid: int | None, idents: list[tuple[str, str]], owners: list[int | None]) -> tuple[list, list]:
        attach: list[tuple[str, str]] = []
        clash: list[tuple[str, str]] = []
        for (kind, value), owner in zip(idents, owners):
            if owner is not None:
                if owner != cid:
                    clash.append((kind, value))
                continue
            if kind in SINGLE or kind == "key":
                if any(k == kind for k, _ in attach) or (cid is not None and self.holds(cid, kind) is not None):
                    clash.append((kind, value))
                    continue
            attach.append((kind, value))
        return attach, clash

    def upsert(self, doc: dict[str, Any]) -> tuple[int, bool, list[str]]:
        given = doc.get("contactId")
        if given is not None and given not in self.contacts:
            raise InvalidArgument("contactId", "unknown")
        idents: list[tuple[str, str, str]] = []
        for kind in SINGLE:
            if kind in doc:
                idents.append((kind, norm(kind, doc[kind]), ""))
        for token in doc.get("pushTokens", []):
            idents.append(("pushToken", token, ""))
        for name, value in doc.get("keys", {}).items():
            idents.append(("key", value, name))
        target = given
        if target is None:
            for kind, value, name in idents:
                target = self.owner(kind, value, name)
                if target is not None:
                    break
        created = target is None
        if target is None:
            target = self.new("Api", 0)
        clash: list[str] = []
        for kind, value, name in idents:
            owner = self.owner(kind, value, name)
            if owner == target:
                continue
            if owner is not None:
                clash.append(f"key:{name}:{value}" if kind == "key" else f"{kind}:{value}")
                continue
            self.give(target, kind, value, name)
        for name, value in doc.get("fields", {}).items():
            if value is None:
                self.contacts[target]["fields"].pop(name, None)
            else:
                self.contacts[target]["fields"][name] = value
        self.conflicts += len(clash)
        return target, created, clash

    def merge(self, into: int, other: int) -> None:
        if into == other:
            raise InvalidArgument("from", "same")
        if into not in self.contacts or other not in self.contacts:
            raise NotFound("contact")
        a, b = self.contacts[into], self.contacts.pop(other)
        for kind in SINGLE:
            if b[kind] is not None:
                if a[kind] is None:
                    a[kind] = b[kind]
                else:
                    self.conflicts += 1
        for name, value in b["keys"].items():
            if name in a["keys"]:
                self.conflicts += 1
            else:
                a["keys"][name] = value
        a["pushToken"] += b["pushToken"]
        a["anonymous"] += b["anonymous"]
        a["fields"] = {**b["fields"], **a["fields"]}

    def erase(self, cid: int) -> None:
        if cid not in self.contacts:
            raise NotFound("contact")
        del self.contacts[cid]


# ------------------------------------------------------------------ strategies

PARAM = st.one_of(
    st.tuples(st.sampled_from(["email", "Email", "UserEmail", "EMAILADDRESS"]), st.sampled_from(["a@x.com", "A@X.com ", "b@x.com", ""])),
    st.tuples(st.sampled_from(["phone", "PhoneNumber", "sms"]), st.sampled_from(["+1 (555)", "1555", "2-2"])),
    st.tuples(st.sampled_from(["PushToken", "pushtoken"]), st.sampled_from(["t1", "t2", "T1"])),
    st.tuples(st.sampled_from(["externalCustomerId"]), st.sampled_from(["E1", "e1", "E2"])),
    st.tuples(st.sampled_from(["ContactKey", "contact_key"]), st.sampled_from(["K1", "K2"])),
    st.tuples(st.sampled_from(["contactId", "ContactId"]), st.sampled_from(["1", "2", "3", "05", "0", "x"])),
    st.tuples(st.sampled_from(["city", "email_client"]), st.sampled_from(["a@x.com", "Oslo"])),
)
KEY_VALUES = st.sampled_from([None, "c1", "c2", "a@x.com", "1555"])
IDS = st.integers(1, 4)
FIELDS = st.dictionaries(st.sampled_from(["tier", "vip"]), st.sampled_from(["Oslo", "Rome", True, 2.5, None]), min_size=1, max_size=2)
CONTACT_DOCS = st.fixed_dictionaries(
    {},
    optional={
        "externalId": st.sampled_from(["E1", "E2", "E3"]),
        "email": st.sampled_from(["a@x.com", "B@x.com", "c@x.com"]),
        "phone": st.sampled_from(["1555", "2-2", "+33"]),
        "pushTokens": st.lists(st.sampled_from(["t1", "t2", "t3"]), max_size=2),
        "keys": st.dictionaries(st.sampled_from([KEY_NAME, "badge"]), st.sampled_from(["K1", "K3"]), max_size=2),
        "fields": FIELDS,
    },
)


class MappingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = ContactBook()
        self.model = Model()
        self.mapping = TypeMapping(contact_key_name=KEY_NAME)

    @rule(pairs=st.lists(PARAM, max_size=4), kv=KEY_VALUES, dry=st.booleans())
    def event(self, pairs: list[tuple[str, str]], kv: str | None, dry: bool) -> None:
        doc: dict[str, Any] = {"eventTypeKey": "t", "params": [{"name": n, "value": v} for n, v in pairs]}
        if kv is not None:
            doc["keyValue"] = kv
        try:
            expected: tuple | None = self.model.map_event(pairs, kv, False, dry)
        except InvalidArgument:
            expected = None
        if expected is None:
            with pytest.raises(InvalidArgument):
                resolve(self.book, parse_event(doc), self.mapping, 0, dry_run=dry)
            return
        got = resolve(self.book, parse_event(doc), self.mapping, 0, dry_run=dry)
        assert (got.contact_id, got.identifier, got.created, got.attached, got.conflicts) == expected

    @rule(pairs=st.lists(PARAM, max_size=3), kv=KEY_VALUES)
    def system_event(self, pairs: list[tuple[str, str]], kv: str | None) -> None:
        doc = {"eventTypeKey": "t", "system": True, "keyValue": kv, "params": dict(pairs)}
        got = resolve(self.book, parse_event(doc), self.mapping, 0)
        assert (got.contact_id, got.created, got.attached) == (0, False, ())

    @rule(doc=CONTACT_DOCS, given=st.one_of(st.none(), IDS))
    def upsert(self, doc: dict[str, Any], given: int | None) -> None:
        if given is not None:
            doc = {**doc, "contactId": given}
        try:
            expected: tuple | None = self.model.upsert(doc)
        except InvalidArgument:
            expected = None
        if expected is None:
            with pytest.raises(InvalidArgument):
                self.book.upsert(doc, "Api", 0)
        else:
            assert self.book.upsert(doc, "Api", 0) == expected

    @rule(cid=IDS, fields=FIELDS)
    def set_fields(self, cid: int, fields: dict[str, Any]) -> None:
        self.upsert({"fields": fields}, cid)

    @rule(into=IDS, other=IDS)
    def merge(self, into: int, other: int) -> None:
        try:
            self.model.merge(into, other)
        except (InvalidArgument, NotFound) as exc:
            with pytest.raises(type(exc)):
                self.book.merge(into, other)
            return
        self.book.merge(into, other)

    @rule(cid=IDS)
    def erase(self, cid: int) -> None:
        try:
            self.model.erase(cid)
        except NotFound:
            with pytest.raises(NotFound):
                self.book.erase(cid)
            return
        self.book.erase(cid)

    @rule()
    def snapshot_round_trip(self) -> None:
        self.book = ContactBook.from_state(self.book.to_state())

    @invariant()
    def same_contacts(self) -> None:
        book, model = self.book, self.model
        assert len(book) == len(model.contacts)
        assert book.max_id == model.last_id
        assert book.conflicts == model.conflicts
        assert book.ids().tolist() == sorted(model.contacts)
        for cid, m in model.contacts.items():
            c = book.get(cid)
            assert (c.external_id, c.email, c.phone) == (m["externalId"], m["email"], m["phone"])
            assert c.push_tokens == m["pushToken"]
            assert c.anonymous_keys == m["anonymous"]
            assert c.keys == m["keys"]
            assert c.fields == m["fields"]
            assert c.source == m["source"]
        for kind, attr in ((IdKind.EMAIL, "email"), (IdKind.PUSH_TOKEN, "pushToken"), (IdKind.ANONYMOUS, "anonymous")):
            mask = book.has_identifier_mask(kind)
            expected = np.zeros(model.last_id + 1, dtype=bool)
            for cid, m in model.contacts.items():
                expected[cid] = bool(m[attr])
            assert np.array_equal(mask, expected)
        tier = {cid: m["fields"]["tier"] for cid, m in model.contacts.items() if "tier" in m["fields"]}
        assert book.field_values("tier") == tier


MappingMachine.TestCase.settings = settings(
    max_examples=max(60, settings.default.max_examples), stateful_step_count=40, deadline=None
)
TestMappingModel = MappingMachine.TestCase
