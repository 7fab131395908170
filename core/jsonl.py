"""JSON Lines batches: the documents of a block of lines, one per non-blank line.

The server decodes a request's `jsonl` bytes with `iter_jsonl_docs` (each document parsed
as soon as it is decoded), and recovery with `jsonl_docs` when a log record holds those bytes
instead of the documents: the same bytes give the same documents, position for position, so
a record can name the positions it did not store.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Mapping
from json.scanner import make_scanner
from typing import Any

from core.errors import InvalidArgument
from core.event_model import Event

DocOrError = Mapping[str, Any] | InvalidArgument

# An "ingest" log record of a JSON Lines request: {"now_ms", RECORD_BYTES: the request's
# bytes, RECORD_SKIP: positions in `jsonl_docs` order that were not stored}.
RECORD_BYTES = "jsonl"
RECORD_SKIP = "skip"
# An "ingest" log record of a column batch: {"now_ms", RECORD_COLUMNS: core.columnar.record_of}.
RECORD_COLUMNS = "columns"

_scan_json = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # json.loads' own settings
_JSON_BLANKS = " \t\n\r"


def jsonl_docs(data: bytes, field: str = "jsonl") -> list[DocOrError]:
    """One document per non-blank line of `data`, in order.

    A line that is not a JSON object becomes ``InvalidArgument("jsonl[N]", ...)`` at its
    position (N is the 1-based line number within `data`), so the ingest reports it there.
    """
    # Decoding allocates a container per JSON object and array and makes no cycles.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return list(iter_jsonl_docs(data, field))
    finally:
        if collecting:
            gc.enable()


def iter_jsonl_docs(data: bytes, field: str = "jsonl") -> Iterator[DocOrError]:
    """`jsonl_docs` one document at a time: each line is decoded when the next document is
    asked for, so a consumer that is done with a document before asking for the next one
    keeps only one in memory (and in cache)."""
    try:
        text = data.decode("utf-8")  # one decode for the batch is the fast path
    except UnicodeDecodeError:
        yield from _line_docs(list(data.split(b"\n")), field)  # not all UTF-8: line by line
        return
    scan = _scan_json
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        # The decoder's scanner on the line is json.loads(line) for a line that is one
        # JSON value, optionally followed by blanks; anything else takes json.loads.
        try:
            doc, end = scan(line, 0)
        except (StopIteration, ValueError, RecursionError):
            yield from _line_docs([line], field, line_no)
            continue
        if end != len(line) and line[end:].strip(_JSON_BLANKS):
            yield from _line_docs([line], field, line_no)
            continue
        if type(doc) is not dict:
            yield InvalidArgument(f"{field}[{line_no}]", "must be a JSON object")
            continue
        yield doc


def _line_docs(lines: list[Any], field: str, first_line_no: int = 1) -> list[DocOrError]:
    """Each non-blank line decoded by json.loads, or the error naming its line."""
    docs: list[DocOrError] = []
    for line_no, line in enumerate(lines, start=first_line_no):
        if not line or line.isspace():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            docs.append(InvalidArgument(f"{field}[{line_no}]", f"not valid JSON: {exc.msg} (column {exc.colno})"))
            continue
        except ValueError as exc:  # bytes that are not UTF-8
            docs.append(InvalidArgument(f"{field}[{line_no}]", f"not valid JSON: {exc}"))
            continue
        except RecursionError:
            docs.append(InvalidArgument(f"{field}[{line_no}]", "not valid JSON: nested too deeply to decode"))
            continue
        if not isinstance(doc, dict):
            docs.append(InvalidArgument(f"{field}[{line_no}]", "must be a JSON object"))
            continue
        docs.append(doc)
    return docs


def journal_doc(event: Event) -> dict[str, Any]:
    """An accepted event as an "ingest" log record document: object params, the server's
    timestamp filled in."""
    doc: dict[str, Any] = {"eventTypeKey": event.type, "timestamp": event.ts_ms, "params": event.params}
    if event.key_value is not None:
        doc["keyValue"] = event.key_value
    if event.event_id is not None:
        doc["eventId"] = event.event_id
    if event.system:
        doc["system"] = True
    return doc
