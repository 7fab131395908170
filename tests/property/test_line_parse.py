"""The parse of JSON Lines documents (`parse_line_event`, taken by `intake.prepare` when every
line of the request is short; `intake.prepare_jsonl`, parsing each line as it is decoded)
against the checked parse of the same documents.

Documents of every shape, valid and invalid, are written as lines (ASCII-escaped or as UTF-8,
compact or spaced, v2 items in any key order), read back by `jsonl_docs` as the server reads
them, and parsed both ways: same event (type-aware), same error and field, same leaves.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import intake
from core.errors import InvalidArgument
from core.event_fast import PLAIN_LINE_BYTES
from core.event_model import MAX_DEPTH, Event, leaf_tuples
from core.events import _parse_event_checked, parse_line_event
from core.jsonl import jsonl_docs
from tests.property.test_ingest_paths import DOCS, outcome_of, typed

pytestmark = pytest.mark.property

# JSON texts with what the plain parse must still refuse or hand on: non-ASCII and escaped
# text, lone surrogates, numbers past 64 bits or past float range, NaN, deep nesting, empty
# keys, repeated names, items with a missing or an extra key.
LINE_TEXTS = st.sampled_from(
    [
        '{"eventTypeKey":"v","keyValue":"k","params":{"p":1e400}}',
        '{"eventTypeKey":"v","keyValue":"k","params":{"p":NaN}}',
        '{"eventTypeKey":"v","keyValue":"k","params":{"p":[-Infinity]}}',
        '{"eventTypeKey":"v","keyValue":"k","params":{"p":9223372036854775807}}',
        '{"eventTypeKey":"v","keyValue":"k","params":{"p":-9223372036854775808}}',
        '{"eventTypeKey":"v","keyValue":"k","params":{"p":{"":1}}}',
        '{"eventTypeKey":"v","keyValue":"k","params":{"p":"{\\"\\":1}"}}',
        '{"eventTypeKey":"v","keyValue":"k","params":{"p":"[1e400]"}}',
        '{"eventTypeKey":"v","keyValue":"k","params":{"p":"\\ud800"}}',
        '{"eventTypeKey":"v","keyValue":"\\u00e9","params":{"p":"\\u0041"}}',
        '{"eventTypeKey":"v\\u00e9","keyValue":"k"}',
        '{"eventTypeKey":"v","keyValue":"k","params":{"\\u00e9":{"\\u00e9":"\\u00e9"}}}',
        '{"eventTypeKey":"v","keyValue":"k","params":[{"name":"a","value":1},{"name":"a","value":2}]}',
        '{"eventTypeKey":"v","keyValue":"k","params":[{"name":"a"},{"name":"b","value":2,"x":1}]}',
        '{"eventTypeKey":"v","keyValue":"k","params":[{"value":1,"name":"a"},["name","value"],"nv"]}',
        '{"eventTypeKey":"v","keyValue":"k","params":[{"name":"","value":1}]}',
        '{"eventTypeKey":"v","keyValue":"k","params":[{"name":"a","value":null},{"name":"a","value":3}]}',
        '{"eventTypeKey":"v","keyValue":"k","params":{"a":' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}}",
        '{"eventTypeKey":"v","keyValue":"k","params":{"a":' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}}",
        '{"eventTypeKey":"v","keyValue":"k","params":{"a":"' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + '"}}',
        '{"eventTypeKey":"v","keyValue":"k","params":{"a":"' + "x" * (PLAIN_LINE_BYTES - 60) + '"}}',
        '{"eventTypeKey":"v","keyValue":"k","params":{"a":[' + ",".join(["1e-7"] * 12_000) + "]}}",
        '{"eventTypeKey":"v","keyValue":"k","params":{"a":"x","b":1.5,"c":true,"d":[],"e":{}}}',
        '{"eventTypeKey":"v","timestamp":"bad","params":{"email":"a@x.com"}}',
        '{"eventTypeKey":"v","timestamp":1.5,"params":{"email":"a@x.com"}}',
        '{"eventTypeKey":"v","system":1,"params":{"email":"a@x.com"}}',
        '{"eventTypeKey":"v","params":"a=1"}',
        '{"eventTypeKey":"v","colour":"red"}',
    ]
)


def _line_of(doc: dict[str, Any], ascii_only: bool, spaced: bool) -> str | None:
    """`doc` as one JSON line, or None when it has no JSON text (a surrogate as UTF-8)."""
    try:
        text = json.dumps(doc, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":"))
        text.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError):
        return None
    return text


def _agree(doc: dict[str, Any]) -> None:
    assert outcome_of(parse_line_event, doc) == outcome_of(_parse_event_checked, doc)
    try:
        event = parse_line_event(doc)
    except InvalidArgument:
        return
    if event.leaves is not None:
        assert [(p, typed(v), i) for p, v, i in event.leaves] == [
            (p, typed(v), i) for p, v, i in leaf_tuples(event.params)
        ]


@settings(max_examples=400, deadline=None)
@given(DOCS, st.booleans(), st.booleans())
def test_short_line_documents_parse_as_the_checked_parse(doc: dict[str, Any], ascii_only: bool, spaced: bool) -> None:
    line = _line_of(doc, ascii_only, spaced)
    if line is None or len(line.encode("utf-8")) > PLAIN_LINE_BYTES:
        return
    (read,) = jsonl_docs(line.encode("utf-8"))
    if isinstance(read, InvalidArgument):
        return
    _agree(read)


@settings(max_examples=100, deadline=None)
@given(LINE_TEXTS)
def test_edge_lines_parse_as_the_checked_parse(line: str) -> None:
    assert len(line.encode("utf-8")) <= PLAIN_LINE_BYTES
    (read,) = jsonl_docs(line.encode("utf-8"))
    assert not isinstance(read, InvalidArgument)
    _agree(read)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(DOCS.map(lambda d: _line_of(d, True, False)), LINE_TEXTS), max_size=8), st.booleans())
def test_prepare_of_a_request_is_the_checked_parse_of_each_line(lines: list[str | None], long_line: bool) -> None:
    texts = [line for line in lines if line is not None]
    if long_line:  # one line past PLAIN_LINE_BYTES: the request takes the general parse
        texts.append(json.dumps({"eventTypeKey": "v", "keyValue": "k", "params": {"a": "x" * PLAIN_LINE_BYTES}}))
    data = "\n".join(texts).encode("utf-8")
    docs = jsonl_docs(data)
    prepared = intake.prepare(docs, data)
    streamed = intake.prepare_jsonl(data)  # each document parsed as it is decoded
    assert len(prepared.events) == len(streamed.events) == len(docs)
    assert streamed.jsonl == prepared.jsonl == data
    for doc, got, got_streamed in zip(docs, prepared.events, streamed.events):
        if isinstance(doc, InvalidArgument):
            assert got is doc
            assert isinstance(got_streamed, InvalidArgument)
            assert (got_streamed.field, str(got_streamed)) == (doc.field, str(doc))
            continue
        if isinstance(got, InvalidArgument):
            assert isinstance(got_streamed, InvalidArgument)
            assert (got_streamed.field, str(got_streamed)) == (got.field, str(got))
        else:
            assert isinstance(got_streamed, Event)
            assert [typed(getattr(got_streamed, f)) for f in Event.__slots__] == [
                typed(getattr(got, f)) for f in Event.__slots__
            ]
        want = outcome_of(_parse_event_checked, doc)
        if isinstance(got, InvalidArgument):
            assert ("error", got.field, str(got)) == want
        else:
            assert want == ("event", got.type, got.key_value, got.event_id, got.ts_ms, got.system, typed(got.params))

