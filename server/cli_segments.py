"""`segmentd segment ...`: apply, list, get, delete, count, members, preview, explain, watch, history.

Each action is one entry of `ACTIONS` (a function that adds its parser and sets `run`).
Segment files are validated here with the same parser the server uses, so a bad file is
refused with the path of the offending part (``[1].condition.all[2].event.period``) before
anything is sent.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from core.errors import InvalidArgument
from core.events import parse_timestamp
from core.segments.definition import parse_definition, references
from server import cli
from server import convert_segments as cs
from server.pb import segmentd_pb2 as pb

Run = Callable[[argparse.Namespace], int]


# --------------------------------------------------------------------------- plumbing


def reporting(run: Run) -> Run:
    """`run` with its CliError printed as `main` prints it (also under `python -m server.cli`,
    where the running `main` is another copy of the cli module with its own CliError)."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except cli.CliError as exc:
            print(f"segmentd: {exc}", file=sys.stderr)
            return exc.status

    return wrapper


def as_of_value(text: str | None) -> struct_pb2.Value | None:
    """`--as-of` (RFC 3339 or epoch ms) as the epoch-ms Value of a request; None when not given."""
    if text is None:
        return None
    try:
        ms = parse_timestamp(text, "--as-of")
    except InvalidArgument as exc:
        raise cli.CliError(str(exc)) from None
    return struct_pb2.Value(number_value=ms)


def read_json(name: str) -> Any:
    """The JSON document in file `name` (or stdin for "-")."""
    stream = cli.open_input(name)
    try:
        data = stream.read()
    except OSError as exc:
        raise cli.CliError(f"cannot read {name}: {exc.strerror}") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" (line {exc.lineno} column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise cli.CliError(f"{name}: not valid JSON: {reason}{where}", cli.REFUSED) from None


def load_segments(name: str, *, many: bool, require_name: bool = True) -> list[dict[str, Any]]:
    """The segment objects of a file (one object, or a JSON array of them when `many`),
    each validated; a bad one is refused with its path (``[i].`` first inside an array)."""
    doc = read_json(name)
    docs = doc if many and isinstance(doc, list) else [doc]
    for i, item in enumerate(docs):
        try:
            if not isinstance(item, dict):
                raise InvalidArgument("", "must be a segment object" + (" or an array of them" if many else ""))
            parse_definition(item, require_name=require_name)
        except InvalidArgument as exc:
            failure = exc.under(f"[{i}]") if docs is doc else exc
            raise cli.CliError(f"{name}: {failure}", cli.REFUSED) from None
    if many and not docs:
        raise cli.CliError(f"{name}: the array holds no segment", cli.REFUSED)
    return docs


def in_dependency_order(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`docs` reordered so a segment comes after the segments of the same file it refers to;
    otherwise in file order (a cycle is left for the server to refuse)."""
    by_name = {d.get("name"): d for d in docs}
    placed: set[int] = set()
    ordered: list[dict[str, Any]] = []

    def place(doc: dict[str, Any], seen: frozenset[str]) -> None:
        if id(doc) in placed:
            return
        for ref in sorted(references(parse_definition(doc))):
            dep = by_name.get(ref)
            if dep is not None and ref not in seen:
                place(dep, seen | {ref})
        placed.add(id(doc))
        ordered.append(doc)

    for doc in docs:
        place(doc, frozenset({doc.get("name", "")}))
    return ordered


def to_message(doc: dict[str, Any], name: str) -> pb.Segment:
    """A validated segment object as a Segment message."""
    try:
        return json_format.ParseDict(doc, pb.Segment())
    except json_format.ParseError as exc:
        raise cli.CliError(f"{name}: {exc}", cli.REFUSED) from None


def shown(value: struct_pb2.Value) -> str:
    """A Value as compact JSON text (integral numbers without .0)."""
    return json.dumps(cli.readable(json_format.MessageToDict(value)), ensure_ascii=False)


def call_failed(exc: grpc.RpcError, args: argparse.Namespace, what: str) -> cli.CliError:
    failure = cli.rpc_failure(exc, args.server)
    return cli.CliError(f"{what}: {failure}", failure.status)


# --------------------------------------------------------------------------- actions


@reporting
def run_apply(args: argparse.Namespace) -> int:
    """Creates or replaces every segment of a file; one line per segment."""
    stub = cli.connect(args)
    for doc in in_dependency_order(load_segments(args.file, many=True)):
        message = to_message(doc, args.file)
        try:
            reply = stub.PutSegment(pb.PutSegmentRequest(segment=message), timeout=cli.CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            raise call_failed(exc, args, f"segment {message.name}") from None
        verb = "created" if reply.created else "replaced"
        print(f"{verb} {message.name} size {reply.segment.size}", flush=True)
    return cli.OK


@reporting
def run_list(args: argparse.Namespace) -> int:
    """Prints the saved segments (of one tag with --tag)."""
    reply = cli.connect(args).ListSegments(pb.ListSegmentsRequest(tag=args.tag or ""), timeout=cli.CALL_TIMEOUT_S)
    if args.json:
        print(json.dumps([cli.message_json(s) for s in reply.segments], indent=2, ensure_ascii=False))
        return cli.OK
    rows = [
        (
            s.segment.name,
            "dynamic" if s.segment.HasField("condition") else "static",
            s.size,
            ",".join(s.segment.tags) or "-",
            cli.rfc3339(s.updated_at_ms),
            s.segment.description,
        )
        for s in reply.segments
    ]
    print(cli.table(("NAME", "KIND", "SIZE", "TAGS", "UPDATED", "DESCRIPTION"), rows) if rows else "no segments")
    return cli.OK


@reporting
def run_get(args: argparse.Namespace) -> int:
    """Prints a segment's definition and size as JSON (only the definition with --definition)."""
    info = cli.connect(args).GetSegment(pb.GetSegmentRequest(name=args.name), timeout=cli.CALL_TIMEOUT_S)
    definition = cli.readable(json_format.MessageToDict(info.segment))
    if args.definition:
        print(json.dumps(definition, indent=2, ensure_ascii=False))
        return cli.OK
    doc = {
        "segment": definition,
        "size": info.size,
        "createdAt": cli.rfc3339(info.created_at_ms),
        "updatedAt": cli.rfc3339(info.updated_at_ms),
        "evaluatedAt": cli.rfc3339(info.evaluated_at_ms),
        "lastBuildMs": round(info.last_build_ms, 3),
    }
    print(json.dumps(doc, indent=2, ensure_ascii=False))
    return cli.OK


@reporting
def run_delete(args: argparse.Namespace) -> int:
    cli.connect(args).DeleteSegment(pb.DeleteSegmentRequest(name=args.name), timeout=cli.CALL_TIMEOUT_S)
    print(f"deleted {args.name}")
    return cli.OK


@reporting
def run_count(args: argparse.Namespace) -> int:
    """Prints the number of members (at --as-of when given)."""
    request = pb.CountMembersRequest(name=args.name, as_of=as_of_value(args.as_of))
    reply = cli.connect(args).CountMembers(request, timeout=cli.CALL_TIMEOUT_S)
    print(reply.count)
    return cli.OK


def _member_lines(pages: Iterator[pb.ListMembersResponse], jsonl: bool) -> Iterator[str]:
    for page in pages:
        if not jsonl:
            ids = cs.unpacked_ids(page.packed_contact_ids) if page.packed_contact_ids else page.contact_ids
            yield "".join(f"{cid}\n" for cid in ids)
            continue
        contacts = {c.contact_id: c for c in page.contacts}
        lines = []
        for cid in page.contact_ids:
            found = contacts.get(cid)
            doc = {"contactId": cid, **(cli.message_json(found) if found is not None else {})}
            lines.append(json.dumps(doc, ensure_ascii=False) + "\n")
        yield "".join(lines)


@reporting
def run_members(args: argparse.Namespace) -> int:
    """Streams the members: one id per line, or one JSON object per contact with its identifiers."""
    jsonl = args.format == "jsonl"
    request = pb.ListMembersRequest(
        name=args.name, as_of=as_of_value(args.as_of), with_identifiers=jsonl, packed=not jsonl
    )
    pages = cli.connect(args).ListMembers(request, timeout=cli.CALL_TIMEOUT_S * 10)
    for text in _member_lines(pages, jsonl):
        sys.stdout.write(text)
    sys.stdout.flush()
    return cli.OK


@reporting
def run_preview(args: argparse.Namespace) -> int:
    """Evaluates a definition from a file without saving it: count, sample, per-condition counts."""
    (doc,) = load_segments(args.file, many=False, require_name=False)
    request = pb.PreviewSegmentRequest(
        segment=to_message(doc, args.file), as_of=as_of_value(args.as_of), sample_size=args.sample
    )
    reply = cli.connect(args).PreviewSegment(request, timeout=cli.CALL_TIMEOUT_S)
    if args.json:
        print(json.dumps(cli.message_json(reply), indent=2, ensure_ascii=False))
        return cli.OK
    print(f"count {reply.count} (built in {reply.build_ms:.1f} ms)")
    print("sample " + (" ".join(str(c) for c in reply.sample) or "-"))
    if reply.conditions:
        print(cli.table(("CONDITION", "COUNT"), [(c.path, c.count) for c in reply.conditions]))
    return cli.OK


@reporting
def run_explain(args: argparse.Namespace) -> int:
    """Prints why a contact is (or is not) a member: every condition's value for it."""
    request = pb.ExplainMembershipRequest(
        name=args.name, contact=cli.contact_ref(args.ref), as_of=as_of_value(args.as_of)
    )
    reply = cli.connect(args).ExplainMembership(request, timeout=cli.CALL_TIMEOUT_S)
    if args.json:
        print(json.dumps(cli.message_json(reply), indent=2, ensure_ascii=False))
        return cli.OK
    verdict = "is a member" if reply.member else "is not a member"
    print(f"contact {reply.contact_id} {verdict} of {args.name} at {cli.rfc3339(reply.as_of_ms)}")
    rows = [("yes" if c.holds else "no", c.path, shown(c.value), c.detail) for c in reply.conditions]
    print(cli.table(("HOLDS", "CONDITION", "VALUE", "DETAIL"), rows))
    return cli.OK


# --------------------------------------------------------------------------- registry


def _as_of_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-of", metavar="T", help="evaluate at T (RFC 3339 or epoch ms) instead of now")


def _add_apply(actions: cli.Subparsers) -> None:
    p = actions.add_parser("apply", help="create or replace the segments of a JSON file (one object or an array)")
    p.add_argument("file", metavar="FILE|-")
    cli.add_client_options(p)
    p.set_defaults(run=run_apply)


def _add_list(actions: cli.Subparsers) -> None:
    p = actions.add_parser("list", help="the saved segments with their sizes")
    p.add_argument("--tag", metavar="TAG", help="only segments with this tag")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    cli.add_client_options(p)
    p.set_defaults(run=run_list)


def _add_get(actions: cli.Subparsers) -> None:
    p = actions.add_parser("get", help="one segment's definition and size, as JSON")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--definition", action="store_true", help="print only the definition (a file `apply` takes)")
    cli.add_client_options(p)
    p.set_defaults(run=run_get)


def _add_delete(actions: cli.Subparsers) -> None:
    p = actions.add_parser("delete", help="delete a segment no other segment refers to")
    p.add_argument("name", metavar="NAME")
    cli.add_client_options(p)
    p.set_defaults(run=run_delete)


def _add_count(actions: cli.Subparsers) -> None:
    p = actions.add_parser("count", help="the number of members")
    p.add_argument("name", metavar="NAME")
    _as_of_option(p)
    cli.add_client_options(p)
    p.set_defaults(run=run_count)


def _add_members(actions: cli.Subparsers) -> None:
    p = actions.add_parser("members", help="the members, streamed")
    p.add_argument("name", metavar="NAME")
    _as_of_option(p)
    p.add_argument(
        "--format", choices=("ids", "jsonl"), default="ids",
        help="ids: one contact id per line; jsonl: one object per contact with its identifiers",
    )
    cli.add_client_options(p)
    p.set_defaults(run=run_members)


def _add_preview(actions: cli.Subparsers) -> None:
    p = actions.add_parser("preview", help="evaluate a definition from a file without saving it")
    p.add_argument("file", metavar="FILE|-")
    _as_of_option(p)
    p.add_argument("--sample", type=int, default=10, metavar="N", help="member ids to show (default %(default)s)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    cli.add_client_options(p)
    p.set_defaults(run=run_preview)


def _add_explain(actions: cli.Subparsers) -> None:
    p = actions.add_parser("explain", help="why a contact is or is not a member")
    p.add_argument("name", metavar="NAME")
    p.add_argument("ref", metavar="REF", help="a contactId, or kind:value (email:a@b.c, externalId:C-1)")
    _as_of_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    cli.add_client_options(p)
    p.set_defaults(run=run_explain)


# --------------------------------------------------------------------------- watch, history


WATCH_MAX_BATCH = 500  # changes per streamed message asked of the server (output is one line per change)


def change_json(change: pb.MembershipChange) -> dict[str, Any]:
    """A membership change as one JSON object (numbers as JSON integers)."""
    return {
        "sequence": change.sequence,
        "segment": change.segment,
        "contactId": change.contact_id,
        "entered": change.entered,
        "cause": change.cause,
        "atMs": change.at_ms,
        "at": cli.rfc3339(change.at_ms),
    }


def alert_json(alert: pb.Alert) -> dict[str, Any]:
    """An alert as one JSON object, under the key "alert" (a change line has "sequence")."""
    value = int(alert.value) if float(alert.value).is_integer() else alert.value
    return {"alert": {"segment": alert.segment, "rule": alert.rule, "message": alert.message,
                      "value": value, "atMs": alert.at_ms, "at": cli.rfc3339(alert.at_ms)}}


@reporting
def run_watch(args: argparse.Namespace) -> int:
    """Streams membership changes (and alerts) as JSON lines until interrupted, or --limit changes."""
    if args.limit is not None and args.limit < 1:
        raise cli.CliError("--limit must be at least 1")
    latest = args.from_sequence == "latest"
    request = pb.WatchSegmentsRequest(segments=args.names, from_sequence=0 if latest else args.from_sequence,
                                      from_latest=latest, max_batch=WATCH_MAX_BATCH)
    stream = cli.connect(args).WatchSegments(request)
    seen = 0
    try:
        for event in stream:
            if event.HasField("alert"):
                lines = [json.dumps(alert_json(event.alert), ensure_ascii=False)]
            else:
                batch = list(event.changes) or [event.change]
                if args.limit is not None:
                    batch = batch[:args.limit - seen]
                seen += len(batch)
                lines = [json.dumps(change_json(c), ensure_ascii=False) for c in batch]
            sys.stdout.write("".join(line + "\n" for line in lines))
            sys.stdout.flush()
            if args.limit is not None and seen >= args.limit:
                break
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.CANCELLED:
            return cli.OK
        raise call_failed(exc, args, "watch") from None
    finally:
        stream.cancel()
    return cli.OK


def _instant_value(text: str | None, option: str) -> struct_pb2.Value | None:
    if text is None:
        return None
    try:
        return struct_pb2.Value(number_value=parse_timestamp(text, option))
    except InvalidArgument as exc:
        raise cli.CliError(str(exc)) from None


@reporting
def run_history(args: argparse.Namespace) -> int:
    """Prints a segment's size, entries and exits per bucket of --resolution seconds."""
    if args.resolution < 1:
        raise cli.CliError("--resolution must be at least 1 second")
    request = pb.GetSegmentHistoryRequest(name=args.name, resolution_seconds=args.resolution)
    for field, text, option in (("from", args.start, "--from"), ("to", args.end, "--to")):
        value = _instant_value(text, option)
        if value is not None:
            getattr(request, field).CopyFrom(value)
    reply = cli.connect(args).GetSegmentHistory(request, timeout=cli.CALL_TIMEOUT_S)
    if args.json:
        for p in reply.points:
            doc = {"atMs": p.at_ms, "at": cli.rfc3339(p.at_ms), "size": p.size, "entered": p.entered,
                   "exited": p.exited}
            print(json.dumps(doc))
        return cli.OK
    rows = [(cli.rfc3339(p.at_ms), p.size, p.entered, p.exited) for p in reply.points]
    print(cli.table(("AT", "SIZE", "ENTERED", "EXITED"), rows) if rows else "no history in that range")
    return cli.OK


def _watch_start(text: str) -> int | str:
    """`--from`: a sequence number, or "latest"."""
    if text == "latest":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a sequence number or 'latest', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a sequence number is at least 0, got {value}")
    return value


def _add_watch(actions: cli.Subparsers) -> None:
    p = actions.add_parser("watch", help="stream membership changes as JSON lines (all segments, or those named)")
    p.add_argument("names", metavar="NAME", nargs="*", help="segments to watch (default: every segment)")
    p.add_argument(
        "--from", dest="from_sequence", type=_watch_start, default=0, metavar="SEQ",
        help="resume after change SEQ (default 0: every change still retained, then new ones;"
             " latest: only changes made from now on)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="stop after N changes")
    cli.add_client_options(p)
    p.set_defaults(run=run_watch)


def _add_history(actions: cli.Subparsers) -> None:
    p = actions.add_parser("history", help="a segment's size, entries and exits over time")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--resolution", type=int, default=60, metavar="S", help="bucket width, seconds (default 60)")
    p.add_argument("--from", dest="start", metavar="T", help="first instant (RFC 3339 or epoch ms)")
    p.add_argument("--to", dest="end", metavar="T", help="last instant (default: now)")
    p.add_argument("--json", action="store_true", help="one JSON object per bucket")
    cli.add_client_options(p)
    p.set_defaults(run=run_history)


# Each entry adds one `segment` action.
ACTIONS: list[Callable[[cli.Subparsers], None]] = [
    _add_apply, _add_list, _add_get, _add_delete, _add_count, _add_members, _add_preview, _add_explain,
    _add_watch, _add_history,
]


def add_segment_commands(sub: cli.Subparsers) -> None:
    """Adds `segment ACTION ...` to the top-level subparsers `sub`."""
    p = sub.add_parser(
        "segment", help="saved segments: apply, list, get, delete, count, members, preview, explain, watch, history"
    )
    group = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for add in ACTIONS:
        add(group)
