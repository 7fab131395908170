"""Event parsing, validation limits, timestamps and flattening (EVENTS.md section 1)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from core.errors import InvalidArgument
from core.event_model import (
    MAX_DEPTH,
    MAX_EVENT_BYTES,
    MAX_PARAMS,
    MAX_STRING_BYTES,
    Leaf,
    flatten,
    leaf_tuples,
)
from core.events import _parse_event_checked, encoded_size, parse_event, parse_timestamp


def ms(text: str) -> int:
    """Epoch ms of an ISO date-time via the standard library (the reference)."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def field_of(doc: object) -> str:
    with pytest.raises(InvalidArgument) as info:
        parse_event(doc)  # type: ignore[arg-type]
    return info.value.field


V2 = {
    "eventTypeKey": "productViewed",
    "keyValue": "example@email.com",
    "eventId": "7f0c",
    "timestamp": "2026-11-20T10:15:00Z",
    "params": [
        {"name": "email", "value": "example@email.com"},
        {"name": "product", "value": '{"productId":"WS01-L-Green","price":45.5,"isInStock":1}'},
        {"name": "currencyCode", "value": "USD"},
    ],
}


# ------------------------------------------------------------------ shapes


def test_v2_shape_parses_with_json_in_string() -> None:
    event = parse_event(V2)
    assert event.type == "productViewed"
    assert event.key_value == "example@email.com"
    assert event.event_id == "7f0c"
    assert event.ts_ms == ms("2026-11-20T10:15:00+00:00")
    assert event.system is False
    assert list(event.params) == ["email", "product", "currencyCode"]
    assert event.params["product"] == {"productId": "WS01-L-Green", "price": 45.5, "isInStock": 1}


def test_v3_shape_parses_and_keeps_order() -> None:
    event = parse_event(
        {
            "eventTypeKey": "Applogin",
            "keyValue": "bkeUc9sCpWoKLCOwmcZFKQ--",
            "params": {"contactId": "12312345612", "osType": "iOS"},
        }
    )
    assert event.params == {"contactId": "12312345612", "osType": "iOS"}
    assert list(event.params) == ["contactId", "osType"]
    assert event.ts_ms is None
    assert event.event_id is None


def test_both_shapes_give_the_same_event() -> None:
    as_list = parse_event({"eventTypeKey": "t", "keyValue": "k", "params": [{"name": "a", "value": 1}, {"name": "b", "value": [1, 2]}]})
    as_object = parse_event({"eventTypeKey": "t", "keyValue": "k", "params": {"a": 1, "b": [1, 2]}})
    assert as_list == as_object


def test_value_types_are_kept() -> None:
    event = parse_event({"eventTypeKey": "t", "params": {"i": 3, "f": 3.0, "b": True, "s": "3", "n": None, "big": 2**53}})
    assert event.params == {"i": 3, "f": 3.0, "b": True, "s": "3", "big": 2**53}
    assert type(event.params["i"]) is int and type(event.params["f"]) is float
    assert type(event.params["b"]) is bool


def test_system_flag() -> None:
    assert parse_event({"eventTypeKey": "backInStock", "system": True}).system is True
    assert field_of({"eventTypeKey": "t", "system": "yes"}) == "system"


# ------------------------------------------------------------------ top-level fields


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"keyValue": "k"}, "eventTypeKey"),
        ({"eventTypeKey": ""}, "eventTypeKey"),
        ({"eventTypeKey": "x" * 129}, "eventTypeKey"),
        ({"eventTypeKey": 5}, "eventTypeKey"),
        ({"eventTypeKey": "t", "colour": "red"}, "colour"),
        ({"eventTypeKey": "t", "keyValue": ["k"]}, "keyValue"),
        ({"eventTypeKey": "t", "eventId": {"a": 1}}, "eventId"),
        ({"eventTypeKey": "t", "timestamp": "yesterday"}, "timestamp"),
        ({"eventTypeKey": "t", "params": "a=1"}, "params"),
        ([1, 2], ""),
    ],
)
def test_bad_top_level_fields_are_named(doc: object, field: str) -> None:
    assert field_of(doc) == field


def test_type_key_length_bounds() -> None:
    assert parse_event({"eventTypeKey": "x" * 128}).type == "x" * 128
    assert parse_event({"eventTypeKey": "x"}).type == "x"


def test_numeric_key_value_and_event_id_become_text_and_empty_is_absent() -> None:
    event = parse_event({"eventTypeKey": "t", "keyValue": 42, "eventId": ""})
    assert event.key_value == "42"
    assert event.event_id is None


# ------------------------------------------------------------------ params


def test_duplicate_name_keeps_last_value_at_first_position() -> None:
    event = parse_event(
        {"eventTypeKey": "t", "params": [{"name": "a", "value": 1}, {"name": "b", "value": 2}, {"name": "a", "value": 3}]}
    )
    assert list(event.params.items()) == [("a", 3), ("b", 2)]


def test_null_values_are_absent() -> None:
    event = parse_event(
        {"eventTypeKey": "t", "params": [{"name": "a", "value": 1}, {"name": "a", "value": None}, {"name": "c"}]}
    )
    assert event.params == {"a": 1}


def test_names_are_case_sensitive() -> None:
    event = parse_event({"eventTypeKey": "t", "params": [{"name": "Color", "value": 1}, {"name": "color", "value": 2}]})
    assert event.params == {"Color": 1, "color": 2}


@pytest.mark.parametrize(
    "params, field",
    [
        ([{"name": "", "value": 1}], "params[0].name"),
        ([{"value": 1}], "params[0].name"),
        ([{"name": "a", "value": 1}, {"name": 7, "value": 1}], "params[1].name"),
        ([{"name": "a", "vaule": 1}], "params[0].vaule"),
        (["a"], "params[0]"),
    ],
)
def test_bad_list_items_are_named(params: list[object], field: str) -> None:
    assert field_of({"eventTypeKey": "t", "params": params}) == field


def test_json_in_string_parses_arrays_and_leading_blanks() -> None:
    event = parse_event({"eventTypeKey": "t", "params": {"products": '  [{"id": 1}, {"id": 2}]', "cat": "\n{\"a\": null}"}})
    assert event.params["products"] == [{"id": 1}, {"id": 2}]
    assert event.params["cat"] == {"a": None}


@pytest.mark.parametrize("text", ["{not json", "[1, 2", "{} trailing", "[NaN]", "plain {x}", "x[1]"])
def test_strings_that_are_not_json_stay_strings(text: str) -> None:
    assert parse_event({"eventTypeKey": "t", "params": {"p": text}}).params["p"] == text


def test_json_in_string_is_parsed_only_at_the_top_of_a_value() -> None:
    event = parse_event({"eventTypeKey": "t", "params": {"p": {"inner": '{"a": 1}'}}})
    assert event.params["p"] == {"inner": '{"a": 1}'}


# ------------------------------------------------------------------ limits


def nested(depth: int) -> object:
    value: object = 1
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


def test_param_count_limit() -> None:
    ok = {"eventTypeKey": "t", "params": [{"name": f"p{i}", "value": i} for i in range(MAX_PARAMS)]}
    assert len(parse_event(ok).params) == MAX_PARAMS
    too_many = {"eventTypeKey": "t", "params": [{"name": f"p{i}", "value": i} for i in range(MAX_PARAMS + 1)]}
    assert field_of(too_many) == "params"
    as_object = {"eventTypeKey": "t", "params": {f"p{i}": i for i in range(MAX_PARAMS + 1)}}
    assert field_of(as_object) == "params"


def test_depth_limit_in_both_shapes_and_in_json_strings() -> None:
    assert parse_event({"eventTypeKey": "t", "params": {"p": nested(MAX_DEPTH)}}).params["p"] == nested(MAX_DEPTH)
    assert field_of({"eventTypeKey": "t", "params": {"p": nested(MAX_DEPTH + 1)}}) == "params.p"
    deep_list = {"eventTypeKey": "t", "params": [{"name": "a", "value": 1}, {"name": "b", "value": 2}, {"name": "p", "value": nested(MAX_DEPTH + 1)}]}
    assert field_of(deep_list) == "params[2].value"
    as_string = {"eventTypeKey": "t", "params": [{"name": "p", "value": json.dumps(nested(MAX_DEPTH + 1))}]}
    assert field_of(as_string) == "params[0].value"


def test_string_limit() -> None:
    at_limit = "x" * MAX_STRING_BYTES
    assert parse_event({"eventTypeKey": "t", "params": {"s": at_limit}}).params["s"] == at_limit
    over = "x" * (MAX_STRING_BYTES + 1)
    assert field_of({"eventTypeKey": "t", "params": {"s": over}}) == "params.s"
    assert field_of({"eventTypeKey": "t", "params": [{"name": "s", "value": over}]}) == "params[0].value"
    assert field_of({"eventTypeKey": "t", "params": {"s": {"deep": [over]}}}) == "params.s"


def test_string_limit_counts_utf8_bytes() -> None:
    two_byte = "é" * (MAX_STRING_BYTES // 2)
    assert parse_event({"eventTypeKey": "t", "params": {"s": two_byte}}).params["s"] == two_byte
    assert field_of({"eventTypeKey": "t", "params": {"s": two_byte + "é"}}) == "params.s"


def test_lone_surrogates_are_rejected() -> None:
    assert field_of({"eventTypeKey": "t", "params": {"s": "a\ud800b"}}) == "params.s"


def test_event_size_limit() -> None:
    chunk = "y" * (MAX_STRING_BYTES - 100)
    per_param = encoded_size({"p00": chunk}) - 2
    count = MAX_EVENT_BYTES // per_param + 1
    big = {"eventTypeKey": "t", "params": {f"p{i:02d}": chunk for i in range(count)}}
    assert encoded_size(big) > MAX_EVENT_BYTES
    with pytest.raises(InvalidArgument, match="1 MiB"):
        parse_event(big)
    small = {"eventTypeKey": "t", "params": {f"p{i:02d}": chunk for i in range(count - 2)}}
    assert encoded_size(small) <= MAX_EVENT_BYTES
    assert len(parse_event(small).params) == count - 2


def test_event_size_counts_escapes() -> None:
    # Control characters take six bytes each in JSON: the limit is on the encoded form.
    chunk = "\x01" * 16000  # 16000 UTF-8 bytes, 96000 encoded
    big = {"eventTypeKey": "t", "params": {f"p{i}": chunk for i in range(12)}}
    assert encoded_size(big) > MAX_EVENT_BYTES
    with pytest.raises(InvalidArgument):
        parse_event(big)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 10**400, object()])
def test_unrepresentable_values_are_rejected(bad: object) -> None:
    assert field_of({"eventTypeKey": "t", "params": {"p": bad}}) == "params.p"


def test_empty_object_keys_are_rejected() -> None:
    assert field_of({"eventTypeKey": "t", "params": {"p": {"": 1}}}) == "params.p"


# ------------------------------------------------------------------ timestamps


@pytest.mark.parametrize(
    "text, iso",
    [
        ("2026-11-20T10:15:00Z", "2026-11-20T10:15:00+00:00"),
        ("2026-11-20t10:15:00z", "2026-11-20T10:15:00+00:00"),
        ("2026-11-20 10:15:00Z", "2026-11-20T10:15:00+00:00"),
        ("2026-11-20T10:15:00+02:00", "2026-11-20T10:15:00+02:00"),
        ("2026-11-20T10:15:00-05:30", "2026-11-20T10:15:00-05:30"),
        ("2026-11-20T10:15:00.5Z", "2026-11-20T10:15:00.500+00:00"),
        ("2026-11-20T10:15:00.123456789+01:00", "2026-11-20T10:15:00.123+01:00"),
        ("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999+00:00"),
        ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00+00:00"),
    ],
)
def test_rfc3339_timestamps(text: str, iso: str) -> None:
    assert parse_timestamp(text) == ms(iso)


def test_leap_second_reads_as_the_next_second() -> None:
    assert parse_timestamp("2016-12-31T23:59:60Z") == ms("2017-01-01T00:00:00+00:00")


def test_epoch_millisecond_forms() -> None:
    assert parse_timestamp(1_795_169_700_000) == 1_795_169_700_000
    assert parse_timestamp(1.7951697e12) == 1_795_169_700_000
    assert parse_timestamp("1795169700000") == 1_795_169_700_000
    assert parse_timestamp(0) == 0


@pytest.mark.parametrize(
    "bad",
    [
        "2026-11-20",
        "2026-11-20T10:15:00",
        "2026-02-30T00:00:00Z",
        "2026-11-20T25:00:00Z",
        "2026-11-20T10:15:00+0200",
        "2026-11-20T10:15:00+24:00",
        "20261120T101500Z",
        1.5,
        True,
        None,
        [1],
        10**17,
    ],
)
def test_bad_timestamps_name_the_field(bad: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_timestamp(bad, "events[2].timestamp")
    assert info.value.field == "events[2].timestamp"


def test_event_timestamp_in_either_form() -> None:
    as_text = parse_event({"eventTypeKey": "t", "timestamp": "2026-11-20T11:15:00+01:00"})
    as_ms = parse_event({"eventTypeKey": "t", "timestamp": ms("2026-11-20T10:15:00+00:00")})
    assert as_text.ts_ms == as_ms.ts_ms == datetime(2026, 11, 20, 10, 15, tzinfo=timezone.utc).timestamp() * 1000


# ------------------------------------------------------------------ flatten


def test_flatten_scalars_and_nested_object() -> None:
    leaves = flatten({"currency": "USD", "product": {"id": "WS01", "price": 45.5, "dims": {"w": 2}}, "gone": None})
    assert leaves == [
        Leaf("currency", "USD", ()),
        Leaf("product", None, ()),
        Leaf("product.id", "WS01", ()),
        Leaf("product.price", 45.5, ()),
        Leaf("product.dims", None, ()),
        Leaf("product.dims.w", 2, ()),
    ]


def test_flatten_keeps_bools_as_bools() -> None:
    (leaf,) = flatten({"inStock": True})
    assert leaf.value is True


def test_flatten_array_of_objects_numbers_elements() -> None:
    leaves = flatten({"products": [{"productId": "A", "price": 1}, {"productId": "B"}]})
    assert leaves == [
        Leaf("products", None, (("products", 0),)),
        Leaf("products.productId", "A", (("products", 0),)),
        Leaf("products.price", 1, (("products", 0),)),
        Leaf("products", None, (("products", 1),)),
        Leaf("products.productId", "B", (("products", 1),)),
    ]


def test_flatten_inner_arrays_count_over_the_whole_event() -> None:
    leaves = flatten({"orders": [{"tags": ["a", "b"]}, {"tags": ["c"]}]})
    tags = [(leaf.value, leaf.items) for leaf in leaves if leaf.path == "orders.tags"]
    assert tags == [
        ("a", (("orders", 0), ("orders.tags", 0))),
        ("b", (("orders", 0), ("orders.tags", 1))),
        ("c", (("orders", 1), ("orders.tags", 2))),
    ]


def test_flatten_array_of_scalars_and_nested_arrays() -> None:
    assert flatten({"sizes": ["S", None, "M"]}) == [Leaf("sizes", "S", (("sizes", 0),)), Leaf("sizes", "M", (("sizes", 1),))]
    assert [leaf.items for leaf in flatten({"m": [[1, 2], [3]]})] == [(("m", 0),), (("m", 1),), (("m", 2),)]


def test_flatten_groups_leaves_by_element() -> None:
    params = parse_event(
        {"eventTypeKey": "t", "params": {"items": '[{"title":"sneakers","price":50},{"title":"jacket","price":150}]'}}
    ).params
    by_item: dict[int, dict[str, object]] = {}
    for leaf in flatten(params):
        if leaf.value is not None:
            by_item.setdefault(dict(leaf.items)["items"], {})[leaf.path] = leaf.value
    assert by_item == {0: {"items.title": "sneakers", "items.price": 50}, 1: {"items.title": "jacket", "items.price": 150}}


def test_json_text_values_flatten_as_the_checked_path_does_in_every_order() -> None:
    product = '{"id": "P1", "tags": ["a", "b"], "sizes": [{"eu": 40}, {"eu": 41}]}'
    shapes = [
        [("product", product)],
        [("product", product), ("other", product)],
        [("product.tags", '["x"]'), ("product", product)],  # a dotted name first: ordinals continue
        [("product", product), ("product.tags", '["x"]')],
        [("product", product), ("product", '["x"]')],  # repeated: the last value counts
        [("product", "[not json"), ("product2", "[not json")],
    ]
    for _ in range(2):  # a second round of the same texts gives the same events
        for pairs in shapes:
            doc = {"eventTypeKey": "t", "keyValue": "k", "params": [{"name": n, "value": v} for n, v in pairs]}
            event = parse_event(doc)
            assert (event.leaves if event.leaves is not None else leaf_tuples(event.params)) == leaf_tuples(event.params)
            assert event == _parse_event_checked(doc)
