"""Limits against hostile input, and the interceptor that applies them.

Every limit is a `Limits` field, configurable under the same name (server/config.py), and a
request over one is refused with a message naming it:

- request bytes: gRPC's own receive limit (RESOURCE_EXHAUSTED from the transport);
- concurrent RPCs: gRPC's admission limit (RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded");
- open streams, stream messages per second, server-side evaluation deadline: RESOURCE_EXHAUSTED;
- batch size, string bytes, list items, JSON nesting, definition depth / conditions / bytes,
  and bytes that are not a message at all: INVALID_ARGUMENT with the field path.

Limits apply to segmentd.v1.Segmentd; health checks and reflection are exempt.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from core.cancel import cancellable
from core.errors import InvalidArgument, ResourceExhausted
from server import handlers
from server.auth import SEGMENTD_SERVICE


MiB = 1024 * 1024
# RPCs whose work is evaluating segments: the server-side deadline applies to them. PutSegment
# is not one: it evaluates inside the engine's write, which must not stop half-way.
EVALUATING_METHODS = frozenset(
    {
        "GetSegment",
        "ListSegments",
        "PreviewSegment",
        "CountMembers",
        "ListMembers",
        "CheckMembership",
        "GetContactSegments",
        "ExplainMembership",
        "GetSegmentHistory",
        "GetContact",
    }
)
# A JSON string within one line (strings cannot hold raw newlines; an unterminated one is left).
_STRING_QUOTED = re.compile(rb'"(?:[^"\\\n]|\\[^\n])*"')
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b"[]{}\n")
_NOT_OPENING = bytes(b for b in range(256) if b not in b"[{\n")
_NEWLINE = ord("\n")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one request or stream may ask; 0 turns a limit off where noted."""

    max_request_bytes: int = 64 * MiB  # one received message, encoded
    max_batch_events: int = 10_000  # events (or contacts) in one batch message
    max_string_bytes: int = 64 * 1024  # one string field of a request, UTF-8 bytes
    max_list_items: int = 10_000  # one repeated field of messages or strings, or one map
    max_json_depth: int = 64  # nesting of one JSON Lines document
    max_definition_depth: int = 16  # nesting of conditions (and of `any` filters)
    max_definition_conditions: int = 256  # condition objects in one definition
    max_definition_bytes: int = 256 * 1024  # one encoded Segment message
    max_concurrent_rpcs: int = 256  # RPCs admitted at once, running or waiting for a worker
    max_streams: int = 8  # streaming RPCs open at once (each holds a worker thread); 0: no limit
    stream_messages_per_s: float = 1000.0  # messages a client stream may send per second; 0: no limit
    eval_deadline_s: float = 60.0  # server-side deadline of an evaluating RPC; 0: none

    def grpc_options(self) -> list[tuple[str, Any]]:
        """Channel arguments that make the transport enforce the request-size limit."""
        return [("grpc.max_receive_message_length", self.max_request_bytes)]


# ----------------------------------------------------------------------------- request checks


def check_request(message: Message, limits: Limits, stream_index: int | None = None) -> None:
    """Raises InvalidArgument naming the field and the limit when `message` breaks one."""
    segment = getattr(message, "segment", None)
    if isinstance(segment, Message) and message.HasField("segment"):  # type: ignore[arg-type]
        check_definition(segment, limits, "segment")
    name = message.DESCRIPTOR.name
    if name in BATCH_MESSAGES:
        _check_batch(message, limits, "", stream_index)
    elif name == "StreamEventsRequest":
        _check_batch(message.batch, limits, "batch", stream_index)  # type: ignore[attr-defined]
    # A message smaller than the threshold cannot hold a too-long string or list: skip the walk
    # (batches are walked anyway; sizing one costs as much as walking it).
    if name in BATCH_MESSAGES or name == "StreamEventsRequest" or message.ByteSize() > _walk_threshold(limits):
        _check_fields(message, limits, "")


def _walk_threshold(limits: Limits) -> int:
    """Below this many encoded bytes a message cannot hold a too-long string or list."""
    return min(limits.max_string_bytes, limits.max_list_items)


BATCH_MESSAGES = ("IngestEventsRequest", "UpsertContactsRequest")


def _check_fields(message: Message, limits: Limits, path: str) -> None:
    if message.DESCRIPTOR.full_name.startswith("google.protobuf."):
        return  # JSON values: the engine checks their strings and nesting, naming the parameter
    threshold = _walk_threshold(limits)
    for fd, value in message.ListFields():
        here = f"{path}.{fd.name}" if path else fd.name
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            _check_count(len(value), limits, here)
            for key, item in value.items():
                _check_scalar(key, limits, here)
                if not isinstance(item, Message):
                    _check_scalar(item, limits, here)
        elif fd.is_repeated:
            if fd.message_type is not None or fd.type == FieldDescriptor.TYPE_STRING:
                _check_count(len(value), limits, here)
            for i, item in enumerate(value):
                if not isinstance(item, Message):
                    _check_scalar(item, limits, f"{here}[{i}]")
                elif item.ByteSize() > threshold:
                    _check_fields(item, limits, f"{here}[{i}]")
        elif isinstance(value, Message):
            if value.ByteSize() > threshold:
                _check_fields(value, limits, here)
        else:
            _check_scalar(value, limits, here)


def _check_count(count: int, limits: Limits, field: str) -> None:
    if count > limits.max_list_items:
        raise InvalidArgument(field, f"{count} items, at most {limits.max_list_items} (max_list_items)")


def _check_scalar(value: Any, limits: Limits, field: str) -> None:
    if isinstance(value, str) and len(value) * 4 > limits.max_string_bytes:
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > limits.max_string_bytes:
            raise InvalidArgument(field, f"{size} bytes, at most {limits.max_string_bytes} (max_string_bytes)")


def _check_batch(message: Message, limits: Limits, path: str, stream_index: int | None) -> None:
    items = "events" if message.DESCRIPTOR.name == "IngestEventsRequest" else "contacts"
    data: bytes = getattr(message, "jsonl", b"")
    count = len(getattr(message, items))
    if data:
        count += data.count(b"\n") + 1
        if count > limits.max_batch_events:  # the fast count is an upper bound: count exactly
            count = len(getattr(message, items)) + sum(1 for line in data.split(b"\n") if line.strip())
    if count > limits.max_batch_events:
        field = f"{path}.{items}" if path else items
        if stream_index is not None:
            raise InvalidArgument(
                field,
                f"message {stream_index} of the stream has {count} {items}, at most {limits.max_batch_events} in one"
                f" batch (max_batch_events); it was not stored (earlier messages were)",
            )
        raise InvalidArgument(
            field,
            f"a batch holds at most {limits.max_batch_events} {items} (max_batch_events), this one has {count};"
            " nothing was stored",
        )
    if data:
        line = too_deep_line(data, limits.max_json_depth)
        if line:
            field = f"{path}.jsonl" if path else "jsonl"
            raise InvalidArgument(
                f"{field}[{line}]", f"JSON nested deeper than {limits.max_json_depth} levels (max_json_depth)"
            )


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in one line of JSON (strings do not count)."""
    depths = _line_depths(_structure(data))
    return int(depths.max()) if depths.size else 0


def too_deep_line(data: bytes, max_depth: int) -> int:
    """The 1-based number of the first line of `data` nested deeper than `max_depth`, 0 if none.

    A line cannot nest deeper than it has opening brackets; only lines with more openings than
    `max_depth` are parsed for their real depth, so ordinary batches cost a few numpy passes.
    """
    codes = np.frombuffer(data.translate(None, _NOT_OPENING), dtype=np.uint8)
    newlines = np.flatnonzero(codes == _NEWLINE)
    if codes.size - newlines.size <= max_depth:
        return 0  # not enough openings anywhere to go that deep
    openings = np.diff(np.concatenate(([-1], newlines, [codes.size]))) - 1  # per line
    candidates = np.flatnonzero(openings > max_depth)
    if not candidates.size:
        return 0
    lines = data.split(b"\n")
    for index in candidates.tolist():
        if json_depth(lines[index]) > max_depth:
            return index + 1
    return 0


def _structure(data: bytes) -> bytes:
    """The brackets and newlines of JSON Lines text, strings left out."""
    return _STRING_QUOTED.sub(b"", data).translate(None, _NOT_STRUCTURE)


def _line_depths(data: bytes) -> np.ndarray:
    """The nesting depth after each byte of `data` (brackets and newlines only are read),
    counted from the start of its line. Strings must have been removed."""
    codes = np.frombuffer(data, dtype=np.uint8)
    steps = np.zeros(codes.size, dtype=np.int64)
    steps[(codes == ord("[")) | (codes == ord("{"))] = 1
    steps[(codes == ord("]")) | (codes == ord("}"))] = -1
    running = np.cumsum(steps)
    # depth within a line: the running sum minus its value at the line's last newline
    newline_at = np.where(codes == _NEWLINE, np.arange(codes.size), -1)
    last_newline = np.maximum.accumulate(newline_at) if codes.size else newline_at
    base = np.where(last_newline >= 0, running[np.maximum(last_newline, 0)], 0)
    return running - base


def check_definition(segment: Message, limits: Limits, field: str = "segment") -> None:
    """Raises InvalidArgument when a Segment message is too large, too deep or has too many conditions."""
    size = segment.ByteSize()
    if size > limits.max_definition_bytes:
        raise InvalidArgument(field, f"{size} bytes, at most {limits.max_definition_bytes} (max_definition_bytes)")
    if not segment.HasField("condition"):  # type: ignore[arg-type]
        return
    count = 0
    pending: list[tuple[Message, str, int]] = [(segment.condition, f"{field}.condition", 1)]  # type: ignore[attr-defined]
    while pending:
        node, at, depth = pending.pop()
        count += 1
        if depth > limits.max_definition_depth:
            raise InvalidArgument(
                at, f"conditions nested deeper than {limits.max_definition_depth} (max_definition_depth)"
            )
        if count > limits.max_definition_conditions:
            raise InvalidArgument(
                at, f"more than {limits.max_definition_conditions} conditions (max_definition_conditions)"
            )
        for key in ("all", "any"):
            for i, child in enumerate(getattr(node, key)):
                pending.append((child, f"{at}.{key}[{i}]", depth + 1))
        if node.HasField("not"):
            pending.append((getattr(node, "not"), f"{at}.not", depth + 1))
        if node.HasField("event"):
            _check_filters(node.event.where, f"{at}.event.where", 1, limits)  # type: ignore[attr-defined]


def _check_filters(filters: Any, at: str, depth: int, limits: Limits) -> None:
    for i, f in enumerate(filters):
        if f.where:
            if depth + 1 > limits.max_definition_depth:
                raise InvalidArgument(
                    f"{at}[{i}].where",
                    f"filters nested deeper than {limits.max_definition_depth} (max_definition_depth)",
                )
            _check_filters(f.where, f"{at}[{i}].where", depth + 1, limits)


# ----------------------------------------------------------------------------- deadlines


class EvaluationStopped(ResourceExhausted):
    """An evaluation stopped because its deadline passed or its caller went away."""


@dataclass(slots=True)
class CallDeadline:
    """When the work of one call must stop: the client's deadline or the server's, the earlier."""

    context: grpc.ServicerContext
    server_deadline: float | None  # time.monotonic() seconds; None: no server-side deadline
    limit_s: float

    def check(self) -> None:
        """Raises EvaluationStopped when the caller is gone or a deadline has passed."""
        if not self.context.is_active():
            raise EvaluationStopped("the caller cancelled the call or its deadline passed")
        if self.server_deadline is not None and time.monotonic() > self.server_deadline:
            raise EvaluationStopped(
                f"the evaluation took longer than the server allows ({self.limit_s:g}s, eval_deadline_s)"
            )

    def scope(self) -> AbstractContextManager[Any]:
        """A block in which core evaluations poll `check` between shards (when the core supports it)."""
        return cancellable(self.check)


# ----------------------------------------------------------------------------- interceptor


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved; `take()` says whether one was there."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens, self._at = burst, clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class LimitsInterceptor(grpc.ServerInterceptor):
    """Applies `Limits` to every segmentd.v1.Segmentd call (see the module docstring)."""

    def __init__(self, limits: Limits, on_refusal: Callable[[str], None] | None = None) -> None:
        self.limits = limits
        self._streams = threading.BoundedSemaphore(limits.max_streams) if limits.max_streams > 0 else None
        self._on_refusal = on_refusal or (lambda limit: None)
        self._prefix = f"/{SEGMENTD_SERVICE}/"

    def intercept_service(
        self, continuation: Callable[[Any], grpc.RpcMethodHandler | None], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        method: str = details.method  # type: ignore[attr-defined]
        if handler is None or not method.startswith(self._prefix):
            return handler
        name = method[len(self._prefix):]
        behaviour = self._limited(handlers.behaviour_of(handler), handler, name)
        return handlers.rebuilt(handler, behaviour, handlers.tolerant(handler.request_deserializer))

    def refused(self, limit: str) -> None:
        self._on_refusal(limit)

    def _limited(self, behaviour: handlers.Behaviour, handler: grpc.RpcMethodHandler, name: str) -> handlers.Behaviour:
        limits = self.limits
        streaming = handler.request_streaming or handler.response_streaming
        evaluating = name in EVALUATING_METHODS and limits.eval_deadline_s > 0

        def admit(request: Any, context: grpc.ServicerContext) -> tuple[Any, CallDeadline]:
            if handler.request_streaming:
                request = self._checked_stream(request)
            else:
                self._check_one(request, context)
            limit_s = limits.eval_deadline_s if evaluating else 0.0
            deadline = CallDeadline(context, time.monotonic() + limit_s if limit_s else None, limit_s)
            return request, deadline

        def acquire(context: grpc.ServicerContext) -> bool:
            if not streaming or self._streams is None:
                return False
            if not self._streams.acquire(blocking=False):
                self.refused("max_streams")
                context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"too many open streams: at most {limits.max_streams} at once (max_streams); retry later",
                )
            return True

        if handler.response_streaming:

            def serve_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                held = acquire(context)
                try:
                    request, deadline = admit(request, context)
                    with deadline.scope():
                        for reply in behaviour(request, context):
                            yield reply
                            if evaluating:
                                self._stop_if_due(deadline, context)
                finally:
                    if held and self._streams is not None:
                        self._streams.release()

            return serve_stream

        def serve(request: Any, context: grpc.ServicerContext) -> Any:
            held = acquire(context)
            try:
                request, deadline = admit(request, context)
                with deadline.scope():
                    return behaviour(request, context)
            finally:
                if held and self._streams is not None:
                    self._streams.release()

        return serve

    def _stop_if_due(self, deadline: CallDeadline, context: grpc.ServicerContext) -> None:
        try:
            deadline.check()
        except EvaluationStopped as exc:
            self.refused("eval_deadline_s")
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))

    def _check_one(self, request: Any, context: grpc.ServicerContext) -> None:
        if isinstance(request, handlers.Undecodable):
            self.refused("message")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid message: {request.reason}")
        try:
            check_request(request, self.limits)
        except InvalidArgument as exc:
            self.refused(_limit_named(str(exc)))
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def _checked_stream(self, requests: Iterator[Any]) -> Iterator[Any]:
        """The messages of a client stream, checked one by one and held to the message rate."""
        rate = self.limits.stream_messages_per_s
        bucket = TokenBucket(rate, max(1.0, rate)) if rate > 0 else None
        for index, message in enumerate(requests):
            if isinstance(message, handlers.Undecodable):
                self.refused("message")
                raise InvalidArgument(f"message {index}", f"not a valid message: {message.reason}")
            if bucket is not None and not bucket.take():
                self.refused("stream_messages_per_s")
                raise ResourceExhausted(
                    f"message {index} of the stream came faster than {rate:g} messages a second"
                    " (stream_messages_per_s); earlier messages were stored"
                )
            try:
                check_request(message, self.limits, stream_index=index)
            except InvalidArgument as exc:
                self.refused(_limit_named(str(exc)))
                raise
            yield message


def _limit_named(message: str) -> str:
    """The limit a refusal message names ("(max_list_items)"), for the refusal counter."""
    found = re.search(r"\((max_\w+|stream_\w+|eval_\w+)\)", message)
    return found.group(1) if found else "other"
