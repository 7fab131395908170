"""The contact book: ids, identifiers, upsert, merge, erase, masks, fields, state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from core.contacts import ContactBook
from core.errors import InvalidArgument, NotFound
from core.field_values import FieldValues
from core.identifiers import IdKind, Identifier

EMAIL_A = Identifier(IdKind.EMAIL, "a@x.com")
EMAIL_B = Identifier(IdKind.EMAIL, "b@x.com")
PUSH_1 = Identifier(IdKind.PUSH_TOKEN, "p1")
ANN = {
    "externalId": "C-1001",
    "email": "Ann@Example.com",
    "phone": "+44 20 7946 0001",
    "pushTokens": ["wp:abc"],
    "keys": {"loyaltyCard": "LC-77"},
    "fields": {"firstName": "Ann", "city": "London", "birthday": "1990-11-23", "vip": True},
}


def assert_same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
        elif key in ("identifiers", "fields"):
            assert len(a[key]) == len(b[key])
            for x, y in zip(a[key], b[key]):
                assert x.keys() == y.keys()
                for k in x:
                    if isinstance(x[k], np.ndarray):
                        assert np.array_equal(x[k], y[k]) and x[k].dtype == y[k].dtype
                    else:
                        assert x[k] == y[k]
        else:
            assert a[key] == b[key], key


# ------------------------------------------------------------------ ids and identifiers


def test_ids_are_dense_from_one() -> None:
    book = ContactBook()
    assert book.max_id == 0 and len(book) == 0
    assert [book.create([], "Api", 10) for _ in range(3)] == [1, 2, 3]
    assert book.max_id == 3 and len(book) == 3
    assert book.ids().tolist() == [1, 2, 3] and book.ids().dtype == np.uint32


def test_many_contacts_grow_the_arrays() -> None:
    book = ContactBook()
    for i in range(1000):
        book.create([Identifier(IdKind.EXTERNAL_ID, f"E{i}")], "Import", i)
    assert book.find(Identifier(IdKind.EXTERNAL_ID, "E999")) == 1000
    assert book.get(1000).created_at_ms == 999


def test_find_by_each_kind() -> None:
    book = ContactBook()
    idents = [
        Identifier(IdKind.EXTERNAL_ID, "C-1"),
        EMAIL_A,
        Identifier(IdKind.PHONE, "4420"),
        PUSH_1,
        Identifier(IdKind.KEY, "LC-77", "loyaltyCard"),
        Identifier(IdKind.ANONYMOUS, "cookie"),
    ]
    cid = book.create(idents, "Event", 5)
    for ident in idents:
        assert book.find(ident) == cid
    assert book.find(Identifier(IdKind.CONTACT_ID, str(cid))) == cid
    assert book.find(Identifier(IdKind.CONTACT_ID, "99")) is None
    assert book.find(Identifier(IdKind.KEY, "LC-77", "otherKey")) is None
    assert book.find(Identifier(IdKind.EXTERNAL_ID, "c-1")) is None


def test_attach_rules() -> None:
    book = ContactBook()
    one = book.create([EMAIL_A], "Api", 1)
    two = book.create([], "Api", 1)
    assert book.attach(two, EMAIL_A) is False  # belongs to another contact
    assert book.find(EMAIL_A) == one
    assert book.attach(one, EMAIL_B) is False  # one email per contact
    assert book.find(EMAIL_B) is None
    assert book.attach(one, EMAIL_A) is True  # already its own
    assert book.attach(two, EMAIL_B) is True
    assert book.attach(two, PUSH_1) and book.attach(two, Identifier(IdKind.PUSH_TOKEN, "p2"))
    assert book.get(two).push_tokens == ["p1", "p2"]
    assert book.attach(two, Identifier(IdKind.KEY, "v1", "card")) is True
    assert book.attach(two, Identifier(IdKind.KEY, "v2", "card")) is False
    assert book.attach(two, Identifier(IdKind.KEY, "v2", "badge")) is True
    assert book.get(two).keys == {"card": "v1", "badge": "v2"}
    with pytest.raises(NotFound):
        book.attach(7, PUSH_1)


def test_create_rejects_bad_source_and_fields() -> None:
    book = ContactBook()
    with pytest.raises(InvalidArgument):
        book.create([], "Robot", 1)
    with pytest.raises(InvalidArgument) as info:
        book.create([], "Api", 1, {"birthday": "1990-13-01"})
    assert info.value.field == "fields.birthday"
    assert book.max_id == 0


def test_get_unknown_is_not_found() -> None:
    book = ContactBook()
    with pytest.raises(NotFound):
        book.get(1)
    with pytest.raises(NotFound):
        book.get(0)


# ------------------------------------------------------------------ upsert


def test_upsert_creates_with_everything_normalised() -> None:
    book = ContactBook()
    cid, created, conflicts = book.upsert(ANN, "Import", 1000)
    assert (cid, created, conflicts) == (1, True, [])
    ann = book.get(cid)
    assert ann.external_id == "C-1001"
    assert ann.email == "ann@example.com"
    assert ann.phone == "442079460001"
    assert ann.push_tokens == ["wp:abc"]
    assert ann.keys == {"loyaltyCard": "LC-77"}
    assert ann.fields == {"firstName": "Ann", "city": "London", "birthday": "1990-11-23", "vip": True}
    assert ann.created_at_ms == 1000 and ann.source == "Import"


@pytest.mark.parametrize(
    "doc",
    [
        {"externalId": "C-1001", "fields": {"city": "Paris"}},
        {"email": " ANN@example.COM", "fields": {"city": "Paris"}},
        {"phone": "442079460001", "fields": {"city": "Paris"}},
        {"pushTokens": ["wp:abc"], "fields": {"city": "Paris"}},
        {"keys": {"loyaltyCard": "LC-77"}, "fields": {"city": "Paris"}},
        {"contactId": 1, "fields": {"city": "Paris"}},
        {"contactId": "1", "fields": {"city": "Paris"}},
    ],
)
def test_upsert_finds_by_any_identifier_and_merges_fields(doc: dict[str, Any]) -> None:
    book = ContactBook()
    book.upsert(ANN, "Import", 1000)
    assert book.upsert(doc, "Api", 2000) == (1, False, [])
    ann = book.get(1)
    assert ann.fields["city"] == "Paris" and ann.fields["firstName"] == "Ann"
    assert ann.source == "Import" and ann.created_at_ms == 1000
    assert len(book) == 1


def test_upsert_adds_and_replaces_free_identifiers() -> None:
    book = ContactBook()
    book.upsert(ANN, "Import", 1)
    cid, created, conflicts = book.upsert(
        {"externalId": "C-1001", "email": "new@example.com", "pushTokens": ["ios:1"], "keys": {"loyaltyCard": "LC-78"}},
        "Api",
        2,
    )
    assert (cid, created, conflicts) == (1, False, [])
    ann = book.get(1)
    assert ann.email == "new@example.com" and ann.push_tokens == ["wp:abc", "ios:1"]
    assert ann.keys == {"loyaltyCard": "LC-78"}
    assert book.find(Identifier(IdKind.EMAIL, "ann@example.com")) is None
    assert book.find(Identifier(IdKind.KEY, "LC-77", "loyaltyCard")) is None


def test_upsert_reports_identifiers_of_other_contacts_as_conflicts() -> None:
    book = ContactBook()
    book.upsert({"email": "a@x.com"}, "Api", 1)
    book.upsert({"email": "b@x.com", "phone": "123"}, "Api", 1)
    cid, created, conflicts = book.upsert({"email": "a@x.com", "phone": "1-2-3", "pushTokens": ["t"]}, "Api", 2)
    assert (cid, created, conflicts) == (1, False, ["phone:123"])
    assert book.find(Identifier(IdKind.PHONE, "123")) == 2
    assert book.get(1).push_tokens == ["t"]
    assert book.conflicts == 1


def test_upsert_with_contact_id_first() -> None:
    book = ContactBook()
    book.upsert({"email": "a@x.com"}, "Api", 1)
    book.upsert({"email": "b@x.com"}, "Api", 1)
    assert book.upsert({"contactId": 2, "email": "a@x.com"}, "Api", 2) == (2, False, ["email:a@x.com"])
    assert book.get(2).email == "b@x.com"


def test_upsert_unknown_contact_id_is_invalid() -> None:
    book = ContactBook()
    with pytest.raises(InvalidArgument) as info:
        book.upsert({"contactId": 5, "email": "a@x.com"}, "Api", 1)
    assert info.value.field == "contactId"
    assert book.max_id == 0


def test_upsert_repeated_push_token_is_held_once() -> None:
    book = ContactBook()
    cid, _, _ = book.upsert({"pushTokens": ["t", "t"]}, "Api", 1)
    assert book.get(cid).push_tokens == ["t"]


def test_upsert_without_identifiers_creates() -> None:
    book = ContactBook()
    assert book.upsert({"fields": {"city": "Oslo"}}, "Api", 1) == (1, True, [])
    assert book.upsert({"fields": {"city": "Oslo"}}, "Api", 1) == (2, True, [])


def test_upsert_null_field_removes_it() -> None:
    book = ContactBook()
    book.upsert({"email": "a@x.com", "fields": {"city": "Oslo", "vip": 1}}, "Api", 1)
    book.upsert({"email": "a@x.com", "fields": {"city": None}}, "Api", 2)
    assert book.get(1).fields == {"vip": 1}


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"mail": "a@x.com"}, "mail"),
        ({"email": 5}, "email"),
        ({"email": "  "}, "email"),
        ({"externalId": ""}, "externalId"),
        ({"externalId": ["C"]}, "externalId"),
        ({"phone": "()"}, "phone"),
        ({"pushTokens": "t"}, "pushTokens"),
        ({"pushTokens": ["t", ""]}, "pushTokens[1]"),
        ({"keys": ["x"]}, "keys"),
        ({"keys": {"card": ""}}, "keys.card"),
        ({"keys": {"a:b": "v"}}, "keys.a:b"),
        ({"contactId": 0}, "contactId"),
        ({"contactId": True}, "contactId"),
        ({"fields": ["x"]}, "fields"),
        ({"fields": {"birthday": "23/11/1990"}}, "fields.birthday"),
        ({"fields": {"birthday": "1990-02-30"}}, "fields.birthday"),
        ({"fields": {"birthday": 19901123}}, "fields.birthday"),
        ({"fields": {"firstName": 5}}, "fields.firstName"),
        ({"fields": {"tags": ["a"]}}, "fields.tags"),
        ({"fields": {"score": float("nan")}}, "fields.score"),
        ({"fields": {"createdAt": 5}}, "fields.createdAt"),
        ({"fields": {"source": "Api"}}, "fields.source"),
        ("not a doc", ""),
    ],
)
def test_upsert_validation_names_the_field_and_changes_nothing(doc: Any, field: str) -> None:
    book = ContactBook()
    book.upsert({"email": "keep@x.com"}, "Api", 1)
    before = book.to_state()
    with pytest.raises(InvalidArgument) as info:
        book.upsert(doc, "Api", 2)
    assert info.value.field == field
    assert_same_state(before, book.to_state())


def test_custom_fields_of_every_kind() -> None:
    book = ContactBook()
    fields = {"vip": True, "score": 4.5, "visits": 12, "tier": "gold", "since": "2020-01-31"}
    cid, _, _ = book.upsert({"fields": fields}, "Api", 1)
    assert book.get(cid).fields == fields


# ------------------------------------------------------------------ merge and erase


def test_merge_moves_identifiers_and_fields_into_wins() -> None:
    book = ContactBook()
    a, _, _ = book.upsert({"email": "a@x.com", "pushTokens": ["pa"], "fields": {"city": "Oslo"}}, "Api", 1)
    b, _, _ = book.upsert(
        {"email": "b@x.com", "phone": "55", "pushTokens": ["pb"], "keys": {"card": "K"}, "fields": {"city": "Rome", "vip": True}},
        "Import",
        2,
    )
    book.merge(a, b)
    assert not book.exists(b) and len(book) == 1
    merged = book.get(a)
    assert merged.email == "a@x.com"
    assert merged.phone == "55"
    assert merged.push_tokens == ["pa", "pb"]
    assert merged.keys == {"card": "K"}
    assert merged.fields == {"city": "Oslo", "vip": True}
    assert merged.source == "Api"
    assert book.find(Identifier(IdKind.PHONE, "55")) == a
    assert book.find(Identifier(IdKind.PUSH_TOKEN, "pb")) == a
    assert book.find(EMAIL_B) is None  # a keeps its own email; b's is released
    assert book.conflicts == 1
    with pytest.raises(NotFound):
        book.get(b)


def test_merge_errors() -> None:
    book = ContactBook()
    a = book.create([], "Api", 1)
    with pytest.raises(InvalidArgument):
        book.merge(a, a)
    with pytest.raises(NotFound):
        book.merge(a, 9)
    with pytest.raises(NotFound):
        book.merge(9, a)


def test_erase_releases_identifiers_and_never_reuses_the_id() -> None:
    book = ContactBook()
    a = book.create([EMAIL_A, PUSH_1, Identifier(IdKind.KEY, "K", "card")], "Event", 1, {"city": "Oslo"})
    book.create([EMAIL_B], "Event", 1)
    book.erase(a)
    assert not book.exists(a) and len(book) == 1 and book.max_id == 2
    assert book.find(EMAIL_A) is None and book.find(PUSH_1) is None
    assert book.field_values("city") == {}
    c = book.create([EMAIL_A, PUSH_1, Identifier(IdKind.KEY, "K", "card")], "Event", 3)
    assert c == 3
    assert book.find(EMAIL_A) == 3 and book.find(PUSH_1) == 3
    assert book.ids().tolist() == [2, 3]
    with pytest.raises(NotFound):
        book.erase(a)


def test_erased_contact_leaves_no_trace_in_state() -> None:
    book = ContactBook()
    a = book.create([EMAIL_A], "Event", 123456, {"city": "Oslo"})
    book.erase(a)
    state = book.to_state()
    assert "a@x.com" not in repr(state) and "Oslo" not in repr(state)
    assert state["created_at_ms"][a] == 0


# ------------------------------------------------------------------ segment reads


def test_identifier_masks() -> None:
    book = ContactBook()
    book.create([EMAIL_A], "Api", 1)
    book.create([PUSH_1, Identifier(IdKind.KEY, "K", "card")], "Api", 1)
    book.create([Identifier(IdKind.PHONE, "5"), Identifier(IdKind.KEY, "B", "badge")], "Api", 1)
    book.erase(book.create([EMAIL_B], "Api", 1))
    assert book.has_identifier_mask(IdKind.EMAIL).tolist() == [False, True, False, False, False]
    assert book.has_identifier_mask(IdKind.PUSH_TOKEN).tolist() == [False, False, True, False, False]
    assert book.has_identifier_mask(IdKind.KEY, "card").tolist() == [False, False, True, False, False]
    assert book.has_identifier_mask(IdKind.KEY).tolist() == [False, False, True, True, False]
    assert book.has_identifier_mask(IdKind.KEY, "none").tolist() == [False] * 5
    assert book.has_identifier_mask(IdKind.CONTACT_ID).tolist() == [False, True, True, True, False]
    assert book.has_identifier_mask(IdKind.EXTERNAL_ID).sum() == 0


def test_field_values_include_created_at_and_source() -> None:
    book = ContactBook()
    book.create([], "Api", 100, {"city": "Oslo"})
    book.create([], "Event", 200)
    book.erase(book.create([], "Import", 300, {"city": "Rome"}))
    assert book.field_values("city") == {1: "Oslo"}
    assert book.field_values("createdAt") == {1: 100, 2: 200}
    assert book.field_values("source") == {1: "Api", 2: "Event"}
    assert book.field_values("nothing") == {}
    assert "city" in book.field_names() and "createdAt" in book.field_names()


# ------------------------------------------------------------------ state


def test_state_round_trip_is_exact() -> None:
    book = ContactBook()
    book.upsert(ANN, "Import", 1)
    book.upsert({"email": "b@x.com", "pushTokens": ["t1", "t2"], "fields": {"score": 2.5}}, "Api", 2)
    book.create([Identifier(IdKind.ANONYMOUS, "ck")], "Event", 3)
    book.erase(book.create([EMAIL_A], "Event", 4))
    book.record_conflicts(3)
    state = book.to_state()
    copy = ContactBook.from_state(state)
    assert_same_state(state, copy.to_state())
    assert len(copy) == len(book) and copy.max_id == book.max_id and copy.conflicts == 3
    for cid in book.ids().tolist():
        assert copy.get(cid) == book.get(cid)
    assert copy.find(Identifier(IdKind.KEY, "LC-77", "loyaltyCard")) == 1
    assert copy.create([], "Api", 5) == 5


def test_state_holds_only_plain_data() -> None:
    book = ContactBook()
    book.upsert(ANN, "Import", 1)

    def check(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                assert type(k) is str
                check(v)
        elif isinstance(value, list):
            for v in value:
                check(v)
        else:
            assert value is None or type(value) in (int, float, str, bool, bytes, np.ndarray)

    check(book.to_state())


def test_state_survives_lists_instead_of_arrays() -> None:
    book = ContactBook()
    book.upsert(ANN, "Import", 1)
    state = book.to_state()
    plain = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in state.items()}
    plain["identifiers"] = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in e.items()} for e in state["identifiers"]]
    assert ContactBook.from_state(plain).get(1) == book.get(1)


def _format1(state: dict[str, Any]) -> dict[str, Any]:
    """A format-2 state as the previous release wrote it: identifier and field values as lists."""
    out = dict(state, format=1)
    out["identifiers"] = []
    for e in state["identifiers"]:
        cuts = np.asarray(e["offsets"]).tolist()
        raw = np.asarray(e["data"], dtype=np.uint8).tobytes()
        values = [raw[a:b].decode("utf-8", "surrogatepass") for a, b in zip(cuts[:-1], cuts[1:])]
        out["identifiers"].append({"kind": e["kind"], "key_name": e["key_name"], "ids": e["ids"], "values": values})
    out["fields"] = []
    for f in state["fields"]:
        ids, values = FieldValues.from_arrays(f["ids"], f["tags"], f["payload"], f["offsets"], f["data"]).entries()
        out["fields"].append({"name": f["name"], "ids": ids.astype(np.uint32), "values": values})
    return out


def test_a_format_1_state_restores_to_the_same_book() -> None:
    book = ContactBook()
    book.upsert(ANN, "Import", 1)
    book.upsert({"email": "b@x.com", "pushTokens": ["t1", "t2"], "fields": {"city": "", "n": 2.5}}, "Import", 1)
    assert ContactBook.from_state(book.to_state()).get(2) == book.get(2)  # an empty string field too
    old = ContactBook.from_state(_format1(book.to_state()))
    assert [old.get(c) for c in (1, 2)] == [book.get(c) for c in (1, 2)]
    assert old.find(Identifier(IdKind.PUSH_TOKEN, "t2")) == 2 and old.to_state()["format"] == 2


DAMAGES = ["format", "alive", "identifiers", "fields", "owner", "empty", "number"]


@pytest.mark.parametrize("damage", DAMAGES)
def test_malformed_format_1_state_is_invalid(damage: str) -> None:
    book = ContactBook()
    book.upsert(ANN, "Import", 1)
    book.upsert({"email": "b@x.com", "fields": {"city": "Oslo"}}, "Import", 1)
    state = _format1(book.to_state())
    if damage == "format":
        state["format"] = 99
    elif damage == "alive":
        state["alive"] = state["alive"][:-1]
    elif damage == "identifiers":
        state["identifiers"][0]["values"].append("extra")
    elif damage == "fields":
        state["fields"][0]["ids"] = np.array([9] * len(state["fields"][0]["ids"]), dtype=np.uint32)
    elif damage in ("empty", "number"):
        entry = next(e for e in state["identifiers"] if e["kind"] == "email")
        entry["values"] = list(entry["values"])
        entry["values"][-1] = "" if damage == "empty" else 7
    else:
        entry = next(e for e in state["identifiers"] if e["kind"] == "email")
        entry["values"] = ["same@x.com"] * len(entry["values"])
    with pytest.raises(InvalidArgument):
        ContactBook.from_state(state)


@pytest.mark.parametrize(
    "damage", ["offsets", "empty", "utf8", "split", "twice", "ids", "tag", "index", "nan", "bool", "field-utf8"]
)
def test_malformed_state_is_invalid(damage: str) -> None:
    book = ContactBook()
    book.upsert(ANN, "Import", 1)
    book.upsert({"email": "bé@x.com", "fields": {"city": "Oslo", "score": 1.5, "vip": True}}, "Import", 1)
    state = book.to_state()
    email = next(e for e in state["identifiers"] if e["kind"] == "email")
    field = {f["name"]: f for f in state["fields"]}
    if damage == "offsets":
        email["offsets"] = email["offsets"][:-1]
    elif damage == "empty":
        email["offsets"] = np.concatenate([[0], email["offsets"]])
        email["ids"] = np.concatenate([email["ids"][:1], email["ids"]])
    elif damage == "utf8":
        email["data"] = email["data"].copy()
        email["data"][-1] = 0xFF
    elif damage == "split":  # the second value starts inside "é"
        raw = "bé@x.com".encode()
        email["data"] = np.frombuffer(raw, np.uint8)
        email["offsets"], email["ids"] = np.array([0, 2, len(raw)]), np.array([1, 2], np.uint32)
    elif damage == "twice":
        email["data"] = np.frombuffer(b"a@x.coma@x.com", np.uint8)
        email["offsets"], email["ids"] = np.array([0, 7, 14]), np.array([1, 2], np.uint32)
    elif damage == "ids":
        email["ids"] = email["ids"][:0]
    elif damage == "tag":
        field["city"]["tags"] = np.full_like(field["city"]["tags"], 9)
    elif damage == "index":
        field["city"]["payload"] = field["city"]["payload"] + 5
    elif damage == "nan":
        field["score"]["payload"] = np.array([np.nan]).view(np.int64)
    elif damage == "bool":
        field["vip"]["payload"] = np.ones_like(field["vip"]["payload"])
    else:
        field["city"]["data"] = field["city"]["data"].copy()
        field["city"]["data"][0] = 0xFF
    with pytest.raises(InvalidArgument):
        ContactBook.from_state(state)