"""Columnar contact fields (core.fields) and the attribute conditions judged through them."""

from __future__ import annotations

import itertools

import numpy as np

from core import fields
from core.contacts import ContactBook
from core.identifiers import IdKind, make_identifier
from core.segments.attributes import attribute_members, attribute_members_among
from core.segments.plan import AttrCond
from tests.reference import RefContact, attribute_holds

NOW = 1_772_202_600_000  # 2026-02-27T14:30Z
TZ = "Europe/Oslo"
VALUES = [
    "Oslo", "oslo", "Åre", "", "12", "-3.5", "1e3", "1e999", "abc12", "2020-02-29", "1979-12-31",
    "1980-01-01", "2021-02-30", "1990-02-28", 12, -3.5, 0, 1000.0, True, False, 2**62,
]
LIKES = ["Oslo", "o", "12", "1980-01-01", "2020-02-29", "Z", "", 12, -3.5, 0.0, 1000.0, True, False]


def book_of(values: list) -> ContactBook:
    book = ContactBook()
    for i, v in enumerate(values):
        book.create((), "Api", NOW - i * 86_400_000 * 97, {"f": v} if v is not None else None)
    return book


def expected(cond: AttrCond, book: ContactBook) -> list[int]:
    """The members by the spec's reference evaluator (tests/reference.py), contact by contact."""
    value = list(cond.value) if isinstance(cond.value, tuple) else cond.value
    spec = {"field": cond.field, "op": cond.op, "value": value}
    out = []
    for cid in book.ids().tolist():
        contact = book.get(cid)
        ref = RefContact(cid, fields=dict(contact.fields), created_at_ms=contact.created_at_ms, source=contact.source)
        if attribute_holds(spec, ref, NOW, TZ):
            out.append(cid)
    return out


def conditions() -> list[AttrCond]:
    conds = [AttrCond("f", op) for op in ("exists", "not_exists")]
    for op, like in itertools.product(("eq", "ne", "gt", "gte", "lt", "lte", "contains", "not_contains",
                                       "starts_with", "ends_with"), LIKES):
        conds.append(AttrCond("f", op, like))
    for a, b in itertools.product(LIKES, LIKES):
        if type(a) is type(b):  # the parser takes two numbers or two strings
            conds.append(AttrCond("f", "between", (a, b)))
    for items in (("Oslo", 12), ("12",), (12.0, True), ("1980-01-01", "x"), (), (False,)):
        conds += [AttrCond("f", "in", items), AttrCond("f", "not_in", items)]
    conds += [AttrCond("f", "anniversaryInDays", n) for n in (0, 1, 2, 365)]
    conds += [AttrCond("createdAt", op, v) for op, v in (("gt", NOW - 10**10), ("eq", NOW), ("lt", "x"))]
    conds += [AttrCond("createdAt", "anniversaryInDays", n) for n in (0, 3, 97)]
    conds += [AttrCond("source", "eq", "Api"), AttrCond("source", "starts_with", "E")]
    return conds


def test_columns_judge_exactly_as_one_value_at_a_time() -> None:
    book = book_of(VALUES + [None, None])
    book.erase(3)
    for cond in conditions():
        want = expected(cond, book)
        assert attribute_members(cond, book, NOW, TZ).tolist() == want, cond
        candidates = book.ids()[::2]
        among = attribute_members_among(cond, book, candidates, NOW, TZ).tolist()
        assert among == [c for c in want if c in set(candidates.tolist())], cond


def test_a_column_is_rebuilt_after_every_change() -> None:
    book = book_of(["1980-03-01", "Oslo"])
    cond = AttrCond("f", "eq", "Oslo")
    assert attribute_members(cond, book, NOW, TZ).tolist() == [2]
    first = fields.field_column(book, "f")
    assert fields.field_column(book, "f") is first
    book.upsert({"contactId": 1, "fields": {"f": "Oslo"}}, "Api", NOW)
    assert fields.cached_column(book, "f") is None
    assert attribute_members(cond, book, NOW, TZ).tolist() == [1, 2]
    book.create((), "Api", NOW, {"f": "Oslo"})
    assert attribute_members(cond, book, NOW, TZ).tolist() == [1, 2, 3]
    book.merge(1, 2)
    assert attribute_members(cond, book, NOW, TZ).tolist() == [1, 3]
    assert attribute_members(AttrCond("f", "not_exists"), book, NOW, TZ).tolist() == []


def test_column_layout() -> None:
    book = book_of(["1980-03-01", "b", "a", 7, True, None])
    col = fields.field_column(book, "f")
    assert col.kind.tolist() == [0, 4, 2, 2, 1, 3, 0]
    assert col.strings == ("a", "b")
    assert col.code[2:4].tolist() == [1, 0]
    assert col.day[1] == (np.datetime64("1980-03-01") - np.datetime64("1970-01-01")).astype(int)
    assert col.month_day[1] == fields.month_day(3, 1)
    assert col.number[4:6].tolist() == [7.0, 1.0]
    assert col.holders().tolist() == [1, 2, 3, 4, 5]


def test_identifier_holders_follow_the_book() -> None:
    book = ContactBook()
    a = book.create([make_identifier(IdKind.EMAIL, "a@x.io")], "Api", NOW)
    b = book.create([make_identifier(IdKind.PUSH_TOKEN, "tok")], "Api", NOW)
    assert list(fields.identifier_holders(book, IdKind.EMAIL)) == [a]
    assert fields.identifier_holders(book, IdKind.EMAIL) is fields.identifier_holders(book, IdKind.EMAIL)
    book.attach(b, make_identifier(IdKind.EMAIL, "b@x.io"))
    assert list(fields.identifier_holders(book, IdKind.EMAIL)) == [a, b]
    book.erase(a)
    assert list(fields.identifier_holders(book, IdKind.EMAIL)) == [b]
    assert list(fields.identifier_holders(book, IdKind.PUSH_TOKEN)) == [b]
    assert list(fields.identifier_holders(book, IdKind.KEY, "card")) == []


def test_attribute_members_are_kept_per_book_state_and_typed_value() -> None:
    book = book_of([True, 1, 1.0, "1", None])
    flag, one = AttrCond("f", "eq", True), AttrCond("f", "eq", 1.0)
    first = attribute_members(flag, book, NOW, TZ)
    assert first.tolist() == [1] and attribute_members(flag, book, NOW, TZ) is first
    assert attribute_members(one, book, NOW, TZ).tolist() == [2, 3, 4]  # True is no number
    assert not first.flags.writeable
    book.upsert({"contactId": 5, "fields": {"f": True}}, "Api", NOW)
    assert attribute_members(flag, book, NOW, TZ).tolist() == [1, 5]


def test_anniversaries_are_kept_per_day() -> None:
    book = book_of(["1990-02-28", "1990-03-01"])
    cond = AttrCond("f", "anniversaryInDays", 1)
    day = 86_400_000
    assert attribute_members(cond, book, NOW, TZ).tolist() == [1]  # 27 Feb: tomorrow is 28 Feb
    assert attribute_members(cond, book, NOW + day, TZ).tolist() == [2]


def test_many_candidates_build_the_column_few_do_not() -> None:
    book = book_of(["Oslo", "Bergen"] * 100)
    cond = AttrCond("f", "eq", "Oslo")
    few = book.ids()[:3]
    assert attribute_members_among(cond, book, few, NOW, TZ).tolist() == [1, 3]
    assert fields.cached_column(book, "f") is None
    many = book.ids()[:100]
    assert attribute_members_among(cond, book, many, NOW, TZ).tolist() == list(range(1, 101, 2))
    assert fields.cached_column(book, "f") is not None


def test_built_identifier_holders_only_when_current() -> None:
    book = ContactBook()
    a = book.create([make_identifier(IdKind.EMAIL, "a@x.io")], "Api", NOW)
    assert fields.built_identifier_holders(book, IdKind.EMAIL) is None
    holders = fields.identifier_holders(book, IdKind.EMAIL)
    assert fields.built_identifier_holders(book, IdKind.EMAIL) is holders and list(holders) == [a]
    assert fields.built_identifier_holders(book, IdKind.PHONE) is None
    book.create([make_identifier(IdKind.EMAIL, "b@x.io")], "Api", NOW)
    assert fields.built_identifier_holders(book, IdKind.EMAIL) is None


def test_attribute_bitmaps_match_the_ids_and_are_kept() -> None:
    from core.segments.attributes import attribute_bitmap

    book = book_of(VALUES)
    for cond in conditions():
        got = attribute_bitmap(cond, book, NOW, TZ)
        assert list(got) == attribute_members(cond, book, NOW, TZ).tolist(), cond
        assert attribute_bitmap(cond, book, NOW, TZ) is got
    cond = AttrCond("f", "eq", "Oslo")
    before = attribute_bitmap(cond, book, NOW, TZ)
    book.create((), "Api", NOW, {"f": "Oslo"})
    after = attribute_bitmap(cond, book, NOW, TZ)
    assert list(after) == list(before) + [len(VALUES) + 1]
