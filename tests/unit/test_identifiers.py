"""Identifier normalisation, references, mapping specs and the event identifier table."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import InvalidArgument
from core.identifiers import (
    IdKind,
    Identifier,
    TypeMapping,
    event_identifiers,
    normalize_email,
    normalize_phone,
    parse_identifier_spec,
    parse_ref,
)


def idents(params: dict[str, Any], mapping: TypeMapping | None = None) -> list[tuple[str, str]]:
    return [(name, ident.ref()) for name, ident in event_identifiers(params, mapping or TypeMapping())]


# ------------------------------------------------------------------ normalisation


def test_email_is_trimmed_and_lower_cased() -> None:
    assert normalize_email("  Ann@Example.COM \t") == "ann@example.com"


@pytest.mark.parametrize(
    "raw, norm",
    [
        ("+44 20 7946 0001", "442079460001"),
        ("(020) 7946-0001", "02079460001"),
        ("020.7946.0001", "02079460001"),
        ("+1-(555)-010.0000", "15550100000"),
        ("5550100", "5550100"),
        ("++1", "+1"),
    ],
)
def test_phone_normalisation(raw: str, norm: str) -> None:
    assert normalize_phone(raw) == norm


def test_refs() -> None:
    assert Identifier(IdKind.EMAIL, "a@b.c").ref() == "email:a@b.c"
    assert Identifier(IdKind.KEY, "LC-77", "loyaltyCard").ref() == "key:loyaltyCard:LC-77"
    assert Identifier(IdKind.EXTERNAL_ID, "C-1").ref() == "externalId:C-1"
    assert Identifier(IdKind.ANONYMOUS, "ck").ref() == "anonymous:ck"


# ------------------------------------------------------------------ references


def test_parse_ref_contact_ids() -> None:
    assert parse_ref("123") == 123
    assert parse_ref(" 7 ") == 7
    assert parse_ref("contactId:9") == 9


@pytest.mark.parametrize(
    "ref, kind, value, key",
    [
        ("email:Ann@Example.com", IdKind.EMAIL, "ann@example.com", ""),
        ("externalId:C-1", IdKind.EXTERNAL_ID, "C-1", ""),
        ("externalid:C-1", IdKind.EXTERNAL_ID, "C-1", ""),
        ("phone:+44 20 7946 0001", IdKind.PHONE, "442079460001", ""),
        ("pushToken:wp:abc", IdKind.PUSH_TOKEN, "wp:abc", ""),
        ("key:loyaltyCard:LC:77", IdKind.KEY, "LC:77", "loyaltyCard"),
        ("anonymous:cookie-1", IdKind.ANONYMOUS, "cookie-1", ""),
    ],
)
def test_parse_ref_identifiers(ref: str, kind: IdKind, value: str, key: str) -> None:
    assert parse_ref(ref) == Identifier(kind, value, key)


@pytest.mark.parametrize("ref", ["", "0", "-3", "bob", "fax:123", "email:", "email:  ", "key:loyaltyCard", "key::v", "contactId:x", "phone:--"])
def test_parse_ref_rejects_junk(ref: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_ref(ref)


# ------------------------------------------------------------------ mapping specs


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("contactId", (IdKind.CONTACT_ID, "")),
        ("externalId", (IdKind.EXTERNAL_ID, "")),
        ("email", (IdKind.EMAIL, "")),
        ("Email", (IdKind.EMAIL, "")),
        ("phone", (IdKind.PHONE, "")),
        ("pushToken", (IdKind.PUSH_TOKEN, "")),
        ("key:loyaltyCard", (IdKind.KEY, "loyaltyCard")),
    ],
)
def test_identifier_specs(spec: str, expected: tuple[IdKind, str]) -> None:
    assert parse_identifier_spec(spec, "mapping.x") == expected


@pytest.mark.parametrize("spec", ["", "fax", "key", "key:", "key:a:b", "email:x", "anonymous"])
def test_bad_identifier_specs_name_the_field(spec: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_identifier_spec(spec, "mapping[email_client]")
    assert info.value.field == "mapping[email_client]"


def test_type_mapping_validates_its_specs() -> None:
    with pytest.raises(InvalidArgument):
        TypeMapping(params={"p": "fax"})
    with pytest.raises(InvalidArgument):
        TypeMapping(contact_key_name="")


# ------------------------------------------------------------------ the default table


@pytest.mark.parametrize(
    "name, value, ref",
    [
        ("ContactId", "17", "contactId:17"),
        ("contactid", "17", "contactId:17"),
        ("CONTACTID", 17, "contactId:17"),
        ("externalCustomerId", "C-1", "externalId:C-1"),
        ("ExternalCustomerID", "C-1", "externalId:C-1"),
        ("Email", "Ann@X.com", "email:ann@x.com"),
        ("email", "ann@x.com", "email:ann@x.com"),
        ("EmailAddress", "ann@x.com", "email:ann@x.com"),
        ("emailaddress", "ann@x.com", "email:ann@x.com"),
        ("UserEmail", "ann@x.com", "email:ann@x.com"),
        ("USEREMAIL", "ann@x.com", "email:ann@x.com"),
        ("ContactEmail", "ann@x.com", "email:ann@x.com"),
        ("contactEmail", "ann@x.com", "email:ann@x.com"),
        ("Phone", "+44 20", "phone:4420"),
        ("phone", "4420", "phone:4420"),
        ("SMS", "4420", "phone:4420"),
        ("sms", "4420", "phone:4420"),
        ("PhoneNumber", "(44) 20", "phone:4420"),
        ("phoneNUMBER", "4420", "phone:4420"),
        ("PushToken", "wp:abc", "pushToken:wp:abc"),
        ("pushtoken", "wp:abc", "pushToken:wp:abc"),
        ("ContactKey", "LC-77", "key:contactKey:LC-77"),
        ("contact_key", "LC-77", "key:contactKey:LC-77"),
        ("Contact_Key", "LC-77", "key:contactKey:LC-77"),
    ],
)
def test_every_row_of_the_default_table(name: str, value: Any, ref: str) -> None:
    assert idents({"other": "x", name: value}) == [(name, ref)]


def test_values_are_case_sensitive_except_email() -> None:
    assert idents({"externalCustomerId": "Ab-1"}) == [("externalCustomerId", "externalId:Ab-1")]
    assert idents({"PushToken": "TOKEN"}) == [("PushToken", "pushToken:TOKEN")]
    assert idents({"ContactKey": "Lc"}) == [("ContactKey", "key:contactKey:Lc")]
    assert idents({"Email": "  MiXeD@Case.Org "}) == [("Email", "email:mixed@case.org")]


def test_contact_key_uses_the_types_key_name() -> None:
    mapping = TypeMapping(contact_key_name="loyaltyCard")
    assert idents({"ContactKey": "LC-77"}, mapping) == [("ContactKey", "key:loyaltyCard:LC-77")]


def test_numbers_become_canonical_text() -> None:
    assert idents({"contactId": 12312345612}) == [("contactId", "contactId:12312345612")]
    assert idents({"contactId": 12312345612.0}) == [("contactId", "contactId:12312345612")]
    assert idents({"phone": 447946000}) == [("phone", "phone:447946000")]
    assert idents({"externalCustomerId": 5.0}) == [("externalCustomerId", "externalId:5")]


@pytest.mark.parametrize("value", ["", {"a": 1}, [1], True, False, None])
def test_non_identifier_values(value: Any) -> None:
    assert idents({"Email": value, "externalCustomerId": value, "PushToken": value}) == []


def test_blank_values_that_normalise_to_nothing() -> None:
    assert idents({"Email": "   ", "Phone": "( )", "PushToken": ""}) == []


@pytest.mark.parametrize("value", ["0", "-4", "1.5", "abc", "12a", 0, -4, 1.5])
def test_contact_id_must_be_a_positive_integer(value: Any) -> None:
    assert idents({"contactId": value}) == []


def test_contact_id_leading_zeros_are_canonical() -> None:
    assert idents({"contactId": "007"}) == [("contactId", "contactId:7")]


def test_identifiers_come_in_event_order() -> None:
    params = {"PushToken": "p", "city": "x", "email": "e@x", "ContactId": "3", "SMS": "12"}
    assert idents(params) == [
        ("PushToken", "pushToken:p"),
        ("email", "email:e@x"),
        ("ContactId", "contactId:3"),
        ("SMS", "phone:12"),
    ]


def test_names_outside_the_table_are_not_identifiers() -> None:
    assert idents({"email_client": "a@b.c", "mail": "a@b.c", "phones": "1", "token": "t", "customerId": "C"}) == []


def test_custom_mapping_is_the_only_identifier_when_present() -> None:
    mapping = TypeMapping(params={"email_client": "email"})
    params = {"Phone": "12", "email_client": "Ann@X.com", "Email": "other@x.com"}
    assert idents(params, mapping) == [("email_client", "email:ann@x.com")]


def test_custom_mapping_names_are_exact() -> None:
    mapping = TypeMapping(params={"email_client": "email"})
    assert idents({"Email_Client": "a@b.c"}, mapping) == []


def test_first_custom_mapped_parameter_in_event_order_wins() -> None:
    mapping = TypeMapping(params={"loyalty": "key:loyaltyCard", "crm": "externalId"})
    assert idents({"crm": "C-9", "loyalty": "LC-1"}, mapping) == [("crm", "externalId:C-9")]


def test_custom_mapping_absent_falls_back_to_the_table() -> None:
    mapping = TypeMapping(params={"email_client": "email"})
    assert idents({"Email": "a@b.c", "PushToken": "p"}, mapping) == [("Email", "email:a@b.c"), ("PushToken", "pushToken:p")]


def test_custom_mapping_with_unusable_value_falls_back_to_the_table() -> None:
    mapping = TypeMapping(params={"email_client": "email"})
    assert idents({"email_client": "", "Email": "a@b.c"}, mapping) == [("Email", "email:a@b.c")]


def test_custom_mapping_to_a_named_key() -> None:
    mapping = TypeMapping(params={"card": "key:loyaltyCard"})
    assert idents({"card": "LC-77"}, mapping) == [("card", "key:loyaltyCard:LC-77")]
