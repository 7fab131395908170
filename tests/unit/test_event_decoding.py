"""Event decoding at the server edge: JSON Lines and Event messages, against plain references.

The references decode the obvious way (json.loads per line; json_format's generic message
walk); the server's faster decoders must give the same documents and the same errors.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InvalidArgument
from server import convert
from server.pb import segmentd_pb2 as pb


def reference_jsonl(data: bytes, field: str = "jsonl") -> list[Any]:
    """json.loads of each non-blank line; errors named by line."""
    try:
        lines: list[Any] = data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        lines = data.split(b"\n")
    out: list[Any] = []
    for line_no, line in enumerate(lines, start=1):
        if not line or line.isspace():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            out.append(InvalidArgument(f"{field}[{line_no}]", f"not valid JSON: {exc.msg} (column {exc.colno})"))
            continue
        except ValueError as exc:
            out.append(InvalidArgument(f"{field}[{line_no}]", f"not valid JSON: {exc}"))
            continue
        except RecursionError:
            out.append(InvalidArgument(f"{field}[{line_no}]", "not valid JSON: nested too deeply to decode"))
            continue
        out.append(doc if isinstance(doc, dict) else InvalidArgument(f"{field}[{line_no}]", "must be a JSON object"))
    return out


def comparable(docs: list[Any]) -> list[Any]:
    return [("error", d.field, str(d)) if isinstance(d, InvalidArgument) else ("doc", json.dumps(d)) for d in docs]


LINES = st.one_of(
    st.sampled_from(
        [
            '{"eventTypeKey":"t","params":{"a":1}}',
            '  {"eventTypeKey": "t"}  ',
            '{"eventTypeKey":"t"}\r',
            '\t{"a": [1, 2.5, "x", null, true]}',
            "",
            "   ",
            "\r",
            "[1, 2]",
            '"text"',
            "7",
            "{not json",
            '{"a": 1} {"b": 2}',
            '{"a": 1}, {"b": 2}',
            '{"a": NaN}',
            '{"a": 1e400}',
            "\ufeff{}",
            '{"c":[{"d":1}',
            '{"e":2}]}',
            '{"s": "\\ud800"}',
            '{"é": "ü"}',
            "\x0b{}",
            '{"deep": ' + "[" * 5000 + "]" * 5000 + "}",
        ]
    ),
    st.dictionaries(st.text(max_size=3), st.one_of(st.integers(), st.text(max_size=3), st.none()), max_size=3).map(
        json.dumps
    ),
    st.text(max_size=8),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, max_size=12), st.booleans())
def test_jsonl_decoding_matches_json_loads_per_line(lines: list[str], trailing_newline: bool) -> None:
    data = ("\n".join(lines) + ("\n" if trailing_newline else "")).encode("utf-8", "surrogatepass")
    assert comparable(convert.jsonl_to_docs(data)) == comparable(reference_jsonl(data))


def test_jsonl_lines_that_are_not_utf8_are_named() -> None:
    data = b'{"a": 1}\n\xff\xfe{"b": 2}\n{"c": 3}\n'
    got = convert.jsonl_to_docs(data)
    assert comparable(got) == comparable(reference_jsonl(data))
    assert isinstance(got[1], InvalidArgument) and got[1].field == "jsonl[2]"
    assert got[0] == {"a": 1} and got[2] == {"c": 3}


@pytest.mark.parametrize("bad", [None, "", "7", "{} {}", "{", '{"a":1}\r'])
def test_long_requests_decode_as_json_loads_per_line(bad: str | None) -> None:
    lines = [json.dumps({"eventTypeKey": "t", "n": i}) for i in range(2500)]
    if bad is not None:
        lines[1700] = bad  # past the first lines decoded together
    data = "\n".join(lines).encode()
    assert comparable(convert.jsonl_to_docs(data)) == comparable(reference_jsonl(data))


def test_a_line_nested_too_deeply_to_decode_is_an_error_of_its_line() -> None:
    data = b'{"a": 1}\n' + b"[" * 100_000 + b"]" * 100_000 + b'\n{"c": 3}\n'
    got = convert.jsonl_to_docs(data)
    assert got[0] == {"a": 1} and got[2] == {"c": 3}
    assert isinstance(got[1], InvalidArgument) and got[1].field == "jsonl[2]"


def test_jsonl_values_split_over_lines_are_errors_on_each_line() -> None:
    data = b'{"a": 1}, {"b": 2}\n{"c":[{"d":1}\n{"e":2}]}\n'
    got = convert.jsonl_to_docs(data)
    assert [d.field for d in got] == ["jsonl[1]", "jsonl[2]", "jsonl[3]"]  # type: ignore[union-attr]


def values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-(2**60), 2**60).map(float),
        st.sampled_from([2.0**53, 2.0**53 + 2, -(2.0**53), 0.5]),
        st.text(max_size=4),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
        max_leaves=10,
    )


def as_value(x: Any) -> struct_pb2.Value:
    return json_format.ParseDict(x, struct_pb2.Value())


def typed(value: Any) -> Any:
    if isinstance(value, dict):
        return [(k, typed(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


@settings(max_examples=200, deadline=None)
@given(values(), st.one_of(st.none(), values()))
def test_event_messages_decode_as_the_generic_walk_does(params: Any, timestamp: Any) -> None:
    event = pb.Event(event_type_key="t", key_value="k", event_id="e", system=True)
    if params is not None:
        event.params.CopyFrom(as_value(params))
    if timestamp is not None:
        event.timestamp.CopyFrom(as_value(timestamp))
    expected: dict[str, Any] = {"eventTypeKey": "t", "keyValue": "k", "eventId": "e"}
    if event.HasField("timestamp"):
        ts = convert.value_to_python(event.timestamp)
        if ts is not None:
            expected["timestamp"] = ts
    expected["system"] = True
    if event.HasField("params"):
        p = convert.value_to_python(event.params)
        if p is not None:
            expected["params"] = p
    got = convert.event_to_doc(event)
    assert list(got) == list(expected)
    assert typed(got) == typed(expected)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_numbers_in_messages_fail_as_the_generic_walk_does(bad: float) -> None:
    event = pb.Event(event_type_key="t")
    event.params.struct_value.fields["x"].list_value.values.add().number_value = bad
    with pytest.raises(ValueError) as generic:
        convert.value_to_python(event.params)
    with pytest.raises(ValueError) as fast:
        convert.event_to_doc(event)
    assert str(fast.value) == str(generic.value)
