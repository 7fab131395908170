"""Event -> contact mapping (EVENTS.md section 3 steps 4-6), end to end from event JSON."""

from __future__ import annotations

from typing import Any

import pytest

from core.contacts import ContactBook
from core.errors import InvalidArgument
from core.events import parse_event
from core.identifiers import IdKind, Identifier, TypeMapping
from core.mapping import Resolution, resolve

NOW = 1_800_000_000_000


def ingest(
    book: ContactBook,
    params: dict[str, Any] | list[dict[str, Any]] | None = None,
    key_value: str | None = None,
    mapping: TypeMapping | None = None,
    dry_run: bool = False,
    **extra: Any,
) -> Resolution:
    doc: dict[str, Any] = {"eventTypeKey": "t", **extra}
    if params is not None:
        doc["params"] = params
    if key_value is not None:
        doc["keyValue"] = key_value
    return resolve(book, parse_event(doc), mapping or TypeMapping(), NOW, dry_run=dry_run)


def test_new_contact_gets_all_identifiers_and_source_event() -> None:
    book = ContactBook()
    res = ingest(book, [{"name": "Email", "value": "Ann@X.com"}, {"name": "PushToken", "value": "p1"}])
    assert res == Resolution(1, "email:ann@x.com", True, ("email:ann@x.com", "pushToken:p1"), (), "ann@x.com")
    ann = book.get(1)
    assert ann.source == "Event" and ann.created_at_ms == NOW
    assert ann.email == "ann@x.com" and ann.push_tokens == ["p1"]


def test_same_identifier_lands_on_the_same_contact() -> None:
    book = ContactBook()
    first = ingest(book, {"email": "a@x.com"})
    again = ingest(book, {"EmailAddress": " A@X.COM"})
    assert first.contact_id == again.contact_id == 1
    assert again.created is False and again.identifier == "email:a@x.com"
    assert len(book) == 1


def test_first_identifier_that_finds_a_contact_decides() -> None:
    book = ContactBook()
    ingest(book, {"phone": "111"})
    ingest(book, {"PushToken": "tok"})
    res = ingest(book, {"Email": "new@x.com", "PushToken": "tok", "Phone": "111"})
    assert res.contact_id == 2 and res.identifier == "pushToken:tok"
    assert res.attached == ("email:new@x.com",)
    assert res.conflicts == ("phone:111",)


def test_unification_of_cookie_then_push_token_then_email() -> None:
    book = ContactBook()
    first = ingest(book, key_value="cookie-1")
    assert first.created and first.identifier == "anonymous:cookie-1"
    second = ingest(book, {"PushToken": "wp:1"}, key_value="cookie-1")
    assert (second.contact_id, second.created, second.attached) == (1, False, ("pushToken:wp:1",))
    third = ingest(book, {"email": "ann@x.com"}, key_value="cookie-1")
    assert (third.contact_id, third.created, third.attached) == (1, False, ("email:ann@x.com",))
    # Later events carrying only one of them all reach the same profile.
    assert ingest(book, {"email": "ann@x.com"}).contact_id == 1
    assert ingest(book, {"PushToken": "wp:1"}).contact_id == 1
    assert ingest(book, key_value="cookie-1").contact_id == 1
    ann = book.get(1)
    assert (ann.anonymous_keys, ann.push_tokens, ann.email) == (["cookie-1"], ["wp:1"], "ann@x.com")
    assert len(book) == 1 and book.conflicts == 0


def test_conflicts_are_counted_and_not_moved() -> None:
    book = ContactBook()
    ingest(book, {"email": "a@x.com"})
    ingest(book, {"email": "b@x.com", "PushToken": "pb"})
    res = ingest(book, {"email": "a@x.com", "PushToken": "pb"})
    assert res.contact_id == 1 and res.conflicts == ("pushToken:pb",) and res.attached == ()
    assert book.find(Identifier(IdKind.PUSH_TOKEN, "pb")) == 2
    assert book.conflicts == 1
    ingest(book, {"email": "a@x.com", "PushToken": "pb"})
    assert book.conflicts == 2


def test_a_second_email_is_a_conflict_not_a_replacement() -> None:
    book = ContactBook()
    ingest(book, {"externalCustomerId": "C-1", "email": "a@x.com"})
    res = ingest(book, {"externalCustomerId": "C-1", "UserEmail": "other@x.com"})
    assert res.contact_id == 1 and res.conflicts == ("email:other@x.com",)
    assert book.get(1).email == "a@x.com" and book.find(Identifier(IdKind.EMAIL, "other@x.com")) is None
    assert book.conflicts == 1


def test_two_emails_in_one_new_event() -> None:
    book = ContactBook()
    res = ingest(book, {"Email": "a@x.com", "UserEmail": "b@x.com"})
    assert res.created and res.attached == ("email:a@x.com",) and res.conflicts == ("email:b@x.com",)
    assert book.get(1).email == "a@x.com"


def test_anonymous_contact_keyed_by_key_value() -> None:
    book = ContactBook()
    a = ingest(book, {"page": "/"}, key_value="visitor-A")
    b = ingest(book, {"page": "/x"}, key_value="visitor-B")
    a2 = ingest(book, {"page": "/y"}, key_value="visitor-A")
    assert (a.contact_id, b.contact_id, a2.contact_id) == (1, 2, 1)
    assert a2.identifier == "anonymous:visitor-A" and not a2.created
    assert book.get(1).anonymous_keys == ["visitor-A"]


def test_key_values_are_case_sensitive() -> None:
    book = ContactBook()
    assert ingest(book, key_value="Abc").contact_id == 1
    assert ingest(book, key_value="abc").contact_id == 2


def test_key_value_that_repeats_an_identifier_is_not_an_anonymous_key() -> None:
    book = ContactBook()
    res = ingest(book, {"email": "example@email.com"}, key_value="Example@Email.com")
    assert res.attached == ("email:example@email.com",)
    assert book.get(1).anonymous_keys == []


def test_absent_key_value_is_taken_from_the_first_identifier() -> None:
    book = ContactBook()
    res = ingest(book, {"city": "x", "Phone": "+1 555", "email": "a@x.com"})
    assert res.key_value == "1555" and res.identifier == "phone:1555"


def test_a_shared_cookie_does_not_pull_in_another_person() -> None:
    book = ContactBook()
    ingest(book, {"email": "ann@x.com"}, key_value="family-pc")
    res = ingest(book, {"email": "bob@x.com"}, key_value="family-pc")
    assert res.created and res.contact_id == 2
    assert res.conflicts == ("anonymous:family-pc",)
    assert book.get(1).email == "ann@x.com" and book.get(2).email == "bob@x.com"


def test_unknown_contact_id_is_not_an_identifier() -> None:
    book = ContactBook()
    res = ingest(book, {"contactId": "12312345612", "osType": "iOS"}, key_value="bkeUc9sCpWoKLCOwmcZFKQ--")
    assert res.created and res.identifier == "anonymous:bkeUc9sCpWoKLCOwmcZFKQ--"
    res = ingest(book, {"contactId": "999", "email": "a@x.com"})
    assert res.identifier == "email:a@x.com" and res.contact_id == 2
    with pytest.raises(InvalidArgument) as info:
        ingest(book, {"contactId": "999"})
    assert info.value.field == "keyValue"


def test_known_contact_id_decides() -> None:
    book = ContactBook()
    ingest(book, {"email": "a@x.com"})
    ingest(book, {"email": "b@x.com"})
    res = ingest(book, {"email": "a@x.com", "ContactId": 2})
    assert res.contact_id == 1 and res.conflicts == ("contactId:2",)
    res = ingest(book, {"ContactId": "2", "PushToken": "p"}, key_value="bkeU")
    assert res.contact_id == 2 and res.identifier == "contactId:2"
    assert res.attached == ("pushToken:p", "anonymous:bkeU")


def test_erased_contact_id_is_not_an_identifier() -> None:
    book = ContactBook()
    ingest(book, {"email": "a@x.com"})
    book.erase(1)
    res = ingest(book, {"contactId": 1}, key_value="k")
    assert res.contact_id == 2 and res.identifier == "anonymous:k"


def test_no_identifier_and_no_key_value_is_rejected() -> None:
    book = ContactBook()
    with pytest.raises(InvalidArgument) as info:
        ingest(book, {"city": "Oslo", "email": ""})
    assert info.value.field == "keyValue"
    assert book.max_id == 0


def test_system_event_belongs_to_no_contact() -> None:
    book = ContactBook()
    res = ingest(book, {"productId": "X", "email": "a@x.com"}, system=True)
    assert (res.contact_id, res.identifier, res.created) == (0, "", False)
    assert book.max_id == 0
    assert ingest(book, None, system=True).contact_id == 0


def test_phone_and_phone_number_are_one_identifier() -> None:
    book = ContactBook()
    ingest(book, {"phone": "+44 20 7946 0001"})
    res = ingest(book, {"PhoneNumber": "44-20-7946-0001"})
    assert res.contact_id == 1 and res.identifier == "phone:442079460001"


def test_email_client_only_with_a_custom_mapping() -> None:
    book = ContactBook()
    ingest(book, {"email": "a@x.com"})
    plain = ingest(book, {"email_client": "a@x.com"}, key_value="k")
    assert plain.contact_id == 2 and plain.identifier == "anonymous:k"
    mapped = ingest(book, {"email_client": "A@x.com"}, key_value="k2", mapping=TypeMapping(params={"email_client": "email"}))
    assert mapped.contact_id == 1 and mapped.identifier == "email:a@x.com"


def test_custom_mapping_overrides_the_table() -> None:
    book = ContactBook()
    ingest(book, {"email": "a@x.com"})
    ingest(book, {"externalCustomerId": "C-9"})
    mapping = TypeMapping(params={"crm": "externalId"})
    res = ingest(book, {"email": "a@x.com", "crm": "C-9"}, mapping=mapping)
    assert res.contact_id == 2 and res.conflicts == ()


def test_contact_key_goes_to_the_named_key() -> None:
    book = ContactBook()
    mapping = TypeMapping(contact_key_name="loyaltyCard")
    res = ingest(book, {"Contact_key": "LC-77"}, mapping=mapping)
    assert res.identifier == "key:loyaltyCard:LC-77"
    assert book.get(res.contact_id).keys == {"loyaltyCard": "LC-77"}
    book.upsert({"keys": {"loyaltyCard": "LC-77"}, "fields": {"vip": True}}, "Api", NOW)
    assert book.get(res.contact_id).fields == {"vip": True}


def test_upserted_contact_is_found_by_events() -> None:
    book = ContactBook()
    cid, _, _ = book.upsert({"externalId": "C-1001", "email": "Ann@Example.com"}, "Import", 1)
    assert ingest(book, {"externalCustomerId": "C-1001"}).contact_id == cid
    assert ingest(book, {"ContactEmail": "ann@example.com"}).contact_id == cid
    assert ingest(book, {"externalCustomerId": "c-1001"}).contact_id != cid  # case-sensitive


def test_merged_contact_identifiers_map_to_the_survivor() -> None:
    book = ContactBook()
    ingest(book, {"email": "a@x.com"})
    ingest(book, {"PushToken": "p"})
    book.merge(1, 2)
    assert ingest(book, {"PushToken": "p"}).contact_id == 1


def test_erased_identifiers_make_a_new_contact() -> None:
    book = ContactBook()
    ingest(book, {"email": "a@x.com"})
    book.erase(1)
    res = ingest(book, {"email": "a@x.com"})
    assert res.created and res.contact_id == 2


def test_dry_run_changes_nothing() -> None:
    book = ContactBook()
    ingest(book, {"email": "a@x.com"})
    ingest(book, {"email": "b@x.com", "PushToken": "pb"})
    before = book.to_state()
    found = ingest(book, {"email": "a@x.com", "PushToken": "pb", "phone": "1"}, dry_run=True)
    assert found == Resolution(1, "email:a@x.com", False, ("phone:1",), ("pushToken:pb",), "a@x.com")
    new = ingest(book, {"email": "c@x.com", "UserEmail": "d@x.com"}, key_value="k", dry_run=True)
    assert new == Resolution(3, "email:c@x.com", True, ("email:c@x.com", "anonymous:k"), ("email:d@x.com",), "k")
    after = book.to_state()
    assert before["max_id"] == after["max_id"] and before["conflicts"] == after["conflicts"] == 0
    assert repr(before["identifiers"]) == repr(after["identifiers"])
    # The dry run predicts what the real mapping then does.
    assert ingest(book, {"email": "c@x.com", "UserEmail": "d@x.com"}, key_value="k") == new
    assert ingest(book, {"email": "a@x.com", "PushToken": "pb", "phone": "1"}) == found
