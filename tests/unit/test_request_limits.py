"""Request checks of server/limits.py on messages, without a server (the e2e suite has one per limit)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InvalidArgument
from server.limits import Limits, TokenBucket, check_definition, check_request, json_depth, too_deep_line
from server.pb import segmentd_pb2 as pb

SMALL = Limits(max_batch_events=3, max_string_bytes=16, max_list_items=4, max_json_depth=4,
               max_definition_depth=3, max_definition_conditions=5, max_definition_bytes=400)


def refusal(message: object, limits: Limits = SMALL, **kw: object) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        check_request(message, limits, **kw)  # type: ignore[arg-type]
    return caught.value


def nested(depth: int) -> pb.Condition:
    cond = pb.Condition(event=pb.EventCondition(type="t"))
    for _ in range(depth - 1):
        cond = pb.Condition(all=[cond])
    return cond


def test_batch_size_counts_events_and_jsonl_lines() -> None:
    check_request(pb.IngestEventsRequest(jsonl=b'{"a":1}\n\n{"a":2}\n{"a":3}\n'), SMALL)
    err = refusal(pb.IngestEventsRequest(events=[pb.Event(event_type_key="t")] * 2, jsonl=b"{}\n{}\n"))
    assert err.field == "events" and "max_batch_events" in err.reason
    err = refusal(pb.StreamEventsRequest(batch=pb.IngestEventsRequest(jsonl=b"{}\n" * 4)), stream_index=2)
    assert err.field == "batch.events" and "message 2" in err.reason
    err = refusal(pb.UpsertContactsRequest(jsonl=b"{}\n" * 4))
    assert err.field == "contacts"


def test_strings_lists_and_maps_are_bounded_naming_the_field() -> None:
    err = refusal(pb.GetSegmentRequest(name="n" * 17))
    assert err.field == "name" and "max_string_bytes" in err.reason
    err = refusal(pb.CheckMembershipRequest(segments=["s"] * 5))
    assert err.field == "segments" and "max_list_items" in err.reason
    err = refusal(pb.CheckMembershipRequest(contacts=[pb.ContactRef(ref="email:" + "x" * 20)]))
    assert err.field == "contacts[0].ref"
    err = refusal(pb.SetEventTypeConfigRequest(config=pb.EventTypeConfig(mapping={str(i): "email" for i in range(5)})))
    assert err.field == "config.mapping"
    check_request(pb.GetSegmentRequest(name="n" * 16), SMALL)


def test_multibyte_strings_count_bytes_not_characters() -> None:
    check_request(pb.GetSegmentRequest(name="é" * 8), SMALL)  # 16 bytes
    assert "max_string_bytes" in refusal(pb.GetSegmentRequest(name="é" * 9)).reason


def test_packed_numbers_are_bounded_by_request_size_only() -> None:
    check_request(pb.PutSegmentRequest(segment=pb.Segment(name="s", contacts=list(range(50)))), SMALL)


def test_json_lines_nesting_is_bounded_and_strings_do_not_count() -> None:
    deep = b'{"a":[[[[1]]]]}'
    err = refusal(pb.IngestEventsRequest(jsonl=b'{"a":1}\n' + deep))
    assert err.field == "jsonl[2]" and "max_json_depth" in err.reason
    check_request(pb.IngestEventsRequest(jsonl=b'{"a":"[[[[[[[[[[[[[[["}\n{"b":"\\"[[[[[[[["}'), SMALL)


@settings(max_examples=60, deadline=None)
@given(st.recursive(st.integers() | st.text(max_size=5), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=20))
def test_json_depth_matches_the_nesting_of_the_value(value: object) -> None:
    def depth(v: object) -> int:
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        return 0

    text = json.dumps(value).encode()
    assert json_depth(text) == depth(value)
    assert bool(too_deep_line(text, 2)) == (depth(value) > 2)


def test_definitions_are_bounded_in_depth_conditions_and_bytes() -> None:
    check_definition(pb.Segment(name="s", condition=nested(3)), SMALL)
    err = refusal(pb.PutSegmentRequest(segment=pb.Segment(name="s", condition=nested(4))))
    assert err.field.startswith("segment.condition.all[0]") and "max_definition_depth" in err.reason
    wide = pb.Condition(any=[pb.Condition(segment="x")] * 5)
    err = refusal(pb.PreviewSegmentRequest(segment=pb.Segment(condition=wide)))
    assert "max_definition_conditions" in err.reason
    big = pb.Segment(name="s", condition=nested(2))
    big.condition.all[0].event.where.extend([pb.Filter(param="p" * 15, op="eq")] * 20)
    assert big.ByteSize() > SMALL.max_definition_bytes
    with pytest.raises(InvalidArgument, match="max_definition_bytes"):
        check_definition(big, SMALL)


def test_nested_any_filters_count_towards_depth() -> None:
    inner = pb.Filter(param="a", op="eq")
    for _ in range(3):
        inner = pb.Filter(param="a", op="any", where=[inner])
    cond = pb.Condition(event=pb.EventCondition(type="t", where=[inner]))
    with pytest.raises(InvalidArgument, match="filters nested deeper"):
        check_definition(pb.Segment(name="s", condition=cond), SMALL)


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=2.0, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    now[0] += 0.5
    assert bucket.take() and not bucket.take()
    now[0] += 100.0
    assert sum(bucket.take() for _ in range(5)) == 2  # never more than the burst saved
