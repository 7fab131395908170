"""gRPC method handlers reshaped: the same RPC with its behaviour wrapped or replaced.

Server interceptors (auth, limits, observation) see a handler and hand back one of the same
shape: same streaming arity, same (de)serializers unless replaced. A behaviour takes
(request or request iterator, context) and returns a reply or a reply iterator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

Behaviour = Callable[[Any, grpc.ServicerContext], Any]
Wrapper = Callable[[Behaviour], Behaviour]

UNARY, CLIENT_STREAM, SERVER_STREAM, BIDI_STREAM = "unary", "client_stream", "server_stream", "bidi_stream"


def kind_of(handler: grpc.RpcMethodHandler) -> str:
    """The go-grpc-prometheus `grpc_type` of a handler."""
    if handler.request_streaming and handler.response_streaming:
        return BIDI_STREAM
    if handler.request_streaming:
        return CLIENT_STREAM
    if handler.response_streaming:
        return SERVER_STREAM
    return UNARY


def behaviour_of(handler: grpc.RpcMethodHandler) -> Behaviour:
    """The callable that serves the RPC."""
    return {
        UNARY: handler.unary_unary,
        CLIENT_STREAM: handler.stream_unary,
        SERVER_STREAM: handler.unary_stream,
        BIDI_STREAM: handler.stream_stream,
    }[kind_of(handler)]


def rebuilt(
    handler: grpc.RpcMethodHandler,
    behaviour: Behaviour,
    request_deserializer: Callable[[bytes], Any] | None = None,
) -> grpc.RpcMethodHandler:
    """A handler of `handler`'s shape serving `behaviour` (and a new deserializer if given)."""
    kwargs = {
        "request_deserializer": request_deserializer or handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    make = {
        UNARY: grpc.unary_unary_rpc_method_handler,
        CLIENT_STREAM: grpc.stream_unary_rpc_method_handler,
        SERVER_STREAM: grpc.unary_stream_rpc_method_handler,
        BIDI_STREAM: grpc.stream_stream_rpc_method_handler,
    }[kind_of(handler)]
    return make(behaviour, **kwargs)


def wrapped(handler: grpc.RpcMethodHandler, wrap: Wrapper) -> grpc.RpcMethodHandler:
    """`handler` with its behaviour passed through `wrap`."""
    return rebuilt(handler, wrap(behaviour_of(handler)))


def refusing(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, details: str) -> grpc.RpcMethodHandler:
    """A handler of `handler`'s shape that answers every call with `code` and `details`."""

    def refuse(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, details)

    return rebuilt(handler, refuse)


@dataclass(frozen=True, slots=True)
class Undecodable:
    """Stands in for a request message whose bytes did not parse."""

    reason: str


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer that returns Undecodable instead of raising.

    gRPC answers a request that fails to parse with INTERNAL; with this in place the
    behaviour sees the Undecodable and can answer INVALID_ARGUMENT instead.
    """
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # any parse failure is the client's bad bytes
            return Undecodable(type(exc).__name__ + (f": {exc}" if str(exc) else ""))

    return parse


def method_parts(full_method: str) -> tuple[str, str]:
    """("segmentd.v1.Segmentd", "IngestEvents") from "/segmentd.v1.Segmentd/IngestEvents"."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method
