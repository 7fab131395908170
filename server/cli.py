"""The `segmentd` command line: `serve`, and client commands that talk to a server over gRPC.

Subcommands register through `COMMANDS`: each entry adds one subcommand's parser and sets
its `run(args) -> exit status`. Exit statuses: 0 done, 1 the server refused something (a
rejected event, NOT_FOUND, INVALID_ARGUMENT...), 2 usage or connection problems. Expected
errors print one line on stderr and never a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor

from core.errors import InvalidArgument
from server import config, tls
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc

DEFAULT_SERVER = "localhost:50051"
MAX_BATCH_ITEMS = 10_000  # the server's limit on events in one batch
MAX_BATCH_BYTES = 8 * 1024 * 1024
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CALL_TIMEOUT_S = 60.0
USAGE, REFUSED, OK = 2, 1, 0
# proto3 JSON writes these as strings; the CLI prints them as numbers.
WIDE_INTEGERS = frozenset(
    getattr(FieldDescriptor, f"TYPE_{t}") for t in ("INT64", "UINT64", "SINT64", "FIXED64", "SFIXED64")
)

Subparsers = Any  # argparse's private _SubParsersAction


class CliError(Exception):
    """An expected failure: printed as one line, exits with `status`."""

    def __init__(self, message: str, status: int = USAGE) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- plumbing


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """The options every client command takes."""
    parser.add_argument(
        "--server",
        default=os.environ.get("SEGMENTD_SERVER") or DEFAULT_SERVER,
        metavar="HOST:PORT",
        help="the segmentd server (default: $SEGMENTD_SERVER, else %(default)s)",
    )
    tls.add_client_arguments(parser)


def connect(args: argparse.Namespace) -> pb_grpc.SegmentdStub:
    """A stub on a channel to `args.server`, with the TLS and token options of `args`."""
    try:
        credentials, token = tls.client_credentials_from(args)
        channel = tls.client_channel(
            args.server,
            tls=credentials,
            token=token,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
    except InvalidArgument as exc:
        raise CliError(str(exc)) from None
    return pb_grpc.SegmentdStub(channel)


def rpc_failure(exc: grpc.RpcError, server: str) -> CliError:
    """The one-line message and exit status for a failed call."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE:
        return CliError(
            f"cannot reach segmentd at {server}: {details}\n"
            "  is it running? start it with `segmentd serve`, or point --server / SEGMENTD_SERVER at it",
            USAGE,
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return CliError(f"segmentd at {server} did not answer in time", USAGE)
    return CliError(f"{code.name.lower().replace('_', ' ')}: {details}", REFUSED)


def open_input(name: str) -> BinaryIO:
    """The file `name` for reading bytes, or stdin for "-"."""
    if name == "-":
        return sys.stdin.buffer
    try:
        return open(name, "rb")
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror}") from None


def rfc3339(ts_ms: int) -> str:
    """Epoch milliseconds as an RFC 3339 UTC time ("" for 0)."""
    if not ts_ms:
        return ""
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def message_json(message: Any) -> Any:
    """A message in its proto3 JSON form, 64-bit and integral numbers as JSON integers."""
    return _int64_as_numbers(readable(json_format.MessageToDict(message)), message.DESCRIPTOR)


def readable(value: Any) -> Any:
    """`value` with integral doubles as ints, for printing."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [readable(v) for v in value]
    return value


def _int64_as_numbers(doc: Any, descriptor: Any) -> Any:
    by_json = {f.json_name: f for f in descriptor.fields}
    for key, value in doc.items():
        fd = by_json.get(key)
        if fd is None:
            continue
        message = fd.message_type
        if message is not None:
            if message.full_name.startswith("segmentd.") and not message.GetOptions().map_entry:
                for item in value if isinstance(value, list) else [value]:
                    _int64_as_numbers(item, message)
        elif fd.type in WIDE_INTEGERS:
            doc[key] = [int(v) for v in value] if isinstance(value, list) else int(value)
    return doc


# --------------------------------------------------------------------------- JSON Lines


@dataclass(slots=True)
class Batch:
    """Non-blank lines of the input joined as one `jsonl` payload."""

    payload: bytes
    lines: array  # file line number (1-based) of each document in `payload`


@dataclass(slots=True)
class LineReader:
    """Cuts a JSON Lines stream into batches of at most `max_items` lines / `max_bytes`.

    Reads line by line, so a file of any size takes the memory of one batch. A line larger
    than `max_bytes` is not sent: it is recorded in `oversized` with its line number.
    """

    stream: BinaryIO
    max_items: int = MAX_BATCH_ITEMS
    max_bytes: int = MAX_BATCH_BYTES
    lines_read: int = 0
    bytes_read: int = 0
    oversized: list[int] = field(default_factory=list)
    finished: bool = False

    def __iter__(self) -> Iterator[Batch]:
        parts: list[bytes] = []
        numbers = array("I")
        size = 0
        for line in self.stream:
            self.lines_read += 1
            self.bytes_read += len(line)
            if not line.strip():
                continue
            if len(line) > self.max_bytes:
                self.oversized.append(self.lines_read)
                continue
            if parts and (len(parts) >= self.max_items or size + len(line) > self.max_bytes):
                yield Batch(b"".join(parts), numbers)
                parts, numbers, size = [], array("I"), 0
            if not line.endswith(b"\n"):
                line += b"\n"
            parts.append(line)
            numbers.append(self.lines_read)
            size += len(line)
        self.finished = True
        if parts:
            yield Batch(b"".join(parts), numbers)


class Progress:
    """A self-overwriting progress line on stderr, only when stderr is a terminal."""

    def __init__(self, reader: LineReader, total_bytes: int | None) -> None:
        self.reader = reader
        self.total_bytes = total_bytes
        self.enabled = sys.stderr.isatty()
        self.started = time.monotonic()
        self.last = 0.0
        self._lock = threading.Lock()  # the sending thread and the waiting one both redraw

    def update(self) -> None:
        """Redraws the line, at most five times a second (the first call draws it)."""
        if not self.enabled:
            return
        with self._lock:
            self._draw()

    def _draw(self) -> None:
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        elapsed = now - self.started
        share = f" ({100 * self.reader.bytes_read / self.total_bytes:.0f}%)" if self.total_bytes else ""
        state = ", waiting for the server" if self.reader.finished else ""
        sys.stderr.write(f"\r\033[K{self.reader.lines_read:,} lines read{share}, {elapsed:.0f}s{state}")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            with self._lock:
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()


def _size_of(stream: BinaryIO) -> int | None:
    try:
        size = os.fstat(stream.fileno()).st_size
    except (OSError, ValueError, AttributeError):
        return None
    return size or None


@dataclass(slots=True)
class Rejections:
    """Rejected input lines: all counted, the first `limit` kept for printing."""

    limit: int
    count: int = 0
    shown: list[tuple[int, str]] = field(default_factory=list)

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        if len(self.shown) < self.limit:
            self.shown.append((line, reason))

    def report(self) -> None:
        for line, reason in sorted(self.shown):
            print(f"line {line}: {reason}", file=sys.stderr)
        if self.count > len(self.shown):
            print(f"... and {self.count - len(self.shown)} more rejected", file=sys.stderr)


# --------------------------------------------------------------------------- commands


def _wait(call: Any, progress: Progress) -> Any:
    """The result of a call future, redrawing the progress line while it runs."""
    try:
        while True:
            try:
                return call.result(timeout=0.2)
            except grpc.FutureTimeoutError:
                progress.update()
    except KeyboardInterrupt:
        call.cancel()
        raise


def run_ingest(args: argparse.Namespace) -> int:
    """Streams a JSON Lines file of events to the server over one StreamEvents call."""
    stub = connect(args)
    stream = open_input(args.file)
    reader = LineReader(stream)
    progress = Progress(reader, _size_of(stream))
    line_of = array("I")  # position in the stream -> file line number
    read_error: list[OSError] = []

    def requests() -> Iterator[pb.StreamEventsRequest]:
        try:
            for batch in reader:
                line_of.extend(batch.lines)
                progress.update()  # shown from the first batch on, however fast the server is
                yield pb.StreamEventsRequest(batch=pb.IngestEventsRequest(jsonl=batch.payload, dry_run=args.dry_run))
        except OSError as exc:
            read_error.append(exc)
            raise

    call = stub.StreamEvents.future(requests())
    try:
        reply = _wait(call, progress)
    except grpc.RpcError:
        if read_error:
            raise CliError(f"cannot read {args.file}: {read_error[0]}") from None
        raise
    finally:
        progress.done()
    rejections = Rejections(args.max_errors)
    for line in reader.oversized:
        rejections.add(line, f"larger than {MAX_BATCH_BYTES // (1024 * 1024)} MiB; not sent")
    for result in reply.results:
        if result.status == pb.EventResult.REJECTED:
            rejections.add(line_of[result.index], result.error or "rejected")
    rejections.report()
    verb = "would be accepted" if args.dry_run else "accepted"
    print(f"{verb} {reply.accepted}, duplicates {reply.duplicates}, rejected {rejections.count}")
    return REFUSED if rejections.count else OK


def run_contacts_import(args: argparse.Namespace) -> int:
    """Upserts a JSON Lines file of contacts, one UpsertContacts call per batch, in order."""
    stub = connect(args)
    stream = open_input(args.file)
    reader = LineReader(stream)
    progress = Progress(reader, _size_of(stream))
    rejections = Rejections(args.max_errors)
    created = updated = 0
    try:
        for batch in reader:
            reply = stub.UpsertContacts(pb.UpsertContactsRequest(jsonl=batch.payload), timeout=CALL_TIMEOUT_S * 10)
            created += reply.created
            updated += reply.updated
            for result in reply.results:
                if result.error:
                    rejections.add(batch.lines[result.index], result.error)
            progress.update()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc}") from None
    finally:
        progress.done()
    for line in reader.oversized:
        rejections.add(line, f"larger than {MAX_BATCH_BYTES // (1024 * 1024)} MiB; not sent")
    rejections.report()
    print(f"created {created}, updated {updated}, rejected {rejections.count}")
    return REFUSED if rejections.count else OK


def contact_ref(text: str) -> pb.ContactRef:
    """A ContactRef from the command line: digits are a contact id, else "kind:value"."""
    text = text.strip()
    if text.isdigit():
        return pb.ContactRef(contact_id=int(text))
    return pb.ContactRef(ref=text)


def run_contact_get(args: argparse.Namespace) -> int:
    """Prints one contact, its recent events and segments as JSON."""
    reply = connect(args).GetContact(
        pb.GetContactRequest(contact=contact_ref(args.ref), recent_events=args.events), timeout=CALL_TIMEOUT_S
    )
    doc = message_json(reply.contact)
    doc["fields"] = dict(sorted(doc.get("fields", {}).items()))
    doc["recentEvents"] = []
    for e in reply.recent_events:
        event = {"eventTypeKey": e.event_type_key, "time": rfc3339(e.ts_ms), **message_json(e)}
        event.pop("contactId", None)
        event["params"] = dict(sorted(event.get("params", {}).items()))
        doc["recentEvents"].append(event)
    doc["segments"] = list(reply.segments)
    print(json.dumps(doc, indent=2, ensure_ascii=False))
    return OK


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as left-aligned text columns under `headers`."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def _examples(values: Sequence[Any], width: int = 48) -> str:
    text = ", ".join(json.dumps(readable(json_format.MessageToDict(v)), ensure_ascii=False) for v in values)
    return text if len(text) <= width else text[: width - 1] + "…"


def run_event_types(args: argparse.Namespace) -> int:
    """Prints the event types, or one type's parameter paths."""
    reply = connect(args).ListEventTypes(pb.ListEventTypesRequest(key=args.type or ""), timeout=CALL_TIMEOUT_S)
    if args.json:
        print(json.dumps([message_json(t) for t in reply.event_types], indent=2, ensure_ascii=False))
        return OK
    if not args.type:
        rows: list[tuple[Any, ...]] = [
            (t.key, t.count, len(t.paths), rfc3339(t.first_ts_ms), rfc3339(t.last_ts_ms))
            for t in sorted(reply.event_types, key=lambda t: t.key)
        ]
        print(table(("TYPE", "EVENTS", "PATHS", "FIRST", "LAST"), rows) if rows else "no event types yet")
        return OK
    for t in reply.event_types:
        print(f"{t.key}: {t.count} events, {rfc3339(t.first_ts_ms)} .. {rfc3339(t.last_ts_ms)}")
        config = t.config
        if config.mapping:
            print("mapping: " + ", ".join(f"{k} -> {v}" for k, v in sorted(config.mapping.items())))
        if config.retention_days:
            print(f"retention: {config.retention_days} days")
        paths = [(p.path, p.kind, p.count, _examples(p.examples)) for p in t.paths]
        print(table(("PATH", "KIND", "COUNT", "EXAMPLES"), paths) if paths else "no parameters")
    return OK


def run_serve(args: argparse.Namespace) -> int:
    """Runs the server in the foreground until SIGTERM / SIGINT."""
    from core.errors import FailedPrecondition, InvalidArgument, Unavailable
    from server import logs
    from server.app import serve
    from snapshots import RecoveryError

    try:
        settings = config.resolve(args)
    except InvalidArgument as exc:
        raise CliError(str(exc)) from None
    logs.configure(fmt=settings.log_format, level=settings.log_level, log_identifiers=settings.log_identifiers)
    try:
        return serve(settings=settings)
    except (Unavailable, FailedPrecondition, InvalidArgument) as exc:
        raise CliError(str(exc)) from None
    except RecoveryError as exc:
        raise CliError(
            f"cannot recover the data directory: {exc}\n"
            "  --force-recovery starts from what is consistent (the rest is lost)",
            REFUSED,
        ) from None


def run_snapshot(args: argparse.Namespace) -> int:
    """Asks the server for a snapshot now and prints where it went."""
    reply = connect(args).Snapshot(pb.SnapshotRequest(), timeout=None)
    print(f"snapshot {reply.path}: {reply.bytes} bytes in {reply.seconds:.2f}s")
    return OK


# --------------------------------------------------------------------------- registry


def _add_serve(sub: Subparsers) -> None:
    p = sub.add_parser(
        "serve",
        help="run the server",
        description="Run the server. Every setting below can also come from the environment or a config "
        "file; a flag wins over the environment, which wins over the file, which wins over the default.",
    )
    config.add_arguments(p)
    p.set_defaults(run=run_serve)


def _add_snapshot(sub: Subparsers) -> None:
    p = sub.add_parser("snapshot", help="take a snapshot of the server's state now")
    add_client_options(p)
    p.set_defaults(run=run_snapshot)


def _add_ingest(sub: Subparsers) -> None:
    p = sub.add_parser("ingest", help="send events from a JSON Lines file (or - for stdin)")
    p.add_argument("file", metavar="FILE|-")
    p.add_argument("--dry-run", action="store_true", help="validate and map only; store nothing")
    p.add_argument("--max-errors", type=int, default=20, metavar="N", help="rejected lines to print (default %(default)s)")
    add_client_options(p)
    p.set_defaults(run=run_ingest)


def _add_contacts(sub: Subparsers) -> None:
    p = sub.add_parser("contacts", help="contact bulk operations")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = actions.add_parser("import", help="upsert contacts from a JSON Lines file (or - for stdin)")
    imp.add_argument("file", metavar="FILE|-")
    imp.add_argument("--max-errors", type=int, default=20, metavar="N", help="rejected lines to print (default %(default)s)")
    add_client_options(imp)
    imp.set_defaults(run=run_contacts_import)


def _add_contact(sub: Subparsers) -> None:
    p = sub.add_parser("contact", help="one contact")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    get = actions.add_parser("get", help="print a contact with its recent events")
    get.add_argument("ref", metavar="REF", help="a contactId, or kind:value (email:a@b.c, externalId:C-1)")
    get.add_argument("--events", type=int, default=20, metavar="N", help="recent events to include (default %(default)s)")
    add_client_options(get)
    get.set_defaults(run=run_contact_get)


def _add_event_types(sub: Subparsers) -> None:
    p = sub.add_parser("event-types", help="event types, or one type's parameter paths")
    p.add_argument("type", nargs="?", metavar="TYPE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_client_options(p)
    p.set_defaults(run=run_event_types)


def _add_segment(sub: Subparsers) -> None:
    from server.cli_segments import add_segment_commands  # imports this module: loaded on use

    add_segment_commands(sub)


# Each entry adds one subcommand; segment and snapshot commands are added the same way.
COMMANDS: list[Callable[[Subparsers], None]] = [
    _add_serve, _add_ingest, _add_contacts, _add_contact, _add_event_types, _add_segment, _add_snapshot
]


def parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    top = argparse.ArgumentParser(prog="segmentd", description="In-memory, event-based customer segmentation.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `segmentd` console script."""
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except grpc.RpcError as exc:
        failure = rpc_failure(exc, getattr(args, "server", ""))
    except CliError as exc:
        failure = exc
    except KeyboardInterrupt:
        print("segmentd: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (| head); nothing more to say
        return OK
    print(f"segmentd: {failure}", file=sys.stderr)
    return failure.status


if __name__ == "__main__":
    sys.exit(main())
