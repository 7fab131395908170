"""Domain error -> gRPC status: one table, applied to every RPC by one class decorator.

A servicer method raises the classes of `core.errors`; `guarded` turns them into the status
code of `STATUS_OF` with the error's own message (which names the field for bad input).
Anything else is a bug: the caller gets INTERNAL with a generic message and a reference,
the server log gets the traceback under the same reference. `str()` of an unexpected
exception never reaches a client.
"""

from __future__ import annotations

import functools
import importlib
import logging
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import grpc

from core.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    SegmentdError,
    Unavailable,
)

log = logging.getLogger("segmentd.rpc")

STATUS_OF: Mapping[type[SegmentdError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}

T = TypeVar("T", bound=type)
GUARDED = "__segmentd_guarded__"  # marks a method wrapped once; a subclass never wraps it twice


def status_of(exc: BaseException, method: str = "") -> tuple[grpc.StatusCode, str]:
    """The status code and details a client sees for `exc` (logs unexpected errors)."""
    for cls in type(exc).__mro__:
        code = STATUS_OF.get(cls)
        if code is not None:
            return code, str(exc)
    if isinstance(exc, NotImplementedError):
        return grpc.StatusCode.UNIMPLEMENTED, f"{method or 'this method'} is not implemented"
    ref = secrets.token_hex(4)
    log.error("internal error in %s (ref %s)", method or "an RPC", ref, exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error (ref {ref}); the server log has the details"


def _client_gone(exc: Exception, context: grpc.ServicerContext, method: str) -> tuple[grpc.StatusCode, str] | None:
    """CANCELLED when `exc` only says that the client went away (not a server fault)."""
    if isinstance(exc, grpc.RpcError) and not context.is_active():
        log.info("%s: the client cancelled the call", method)
        return grpc.StatusCode.CANCELLED, "cancelled by the client"
    return None


def _unary_response(fn: Callable[..., Any], method: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except Exception as exc:  # every exception becomes a status, nothing escapes raw
            code, details = _client_gone(exc, context, method) or status_of(exc, method)
        context.abort(code, details)

    return wrapper


def _streamed_response(fn: Callable[..., Iterator[Any]], method: str) -> Callable[..., Iterator[Any]]:
    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from fn(self, request, context)
            return
        except Exception as exc:
            code, details = _client_gone(exc, context, method) or status_of(exc, method)
        context.abort(code, details)

    return wrapper


def guarded(service_base: type) -> Callable[[T], T]:
    """Class decorator: maps errors to statuses in every RPC the class implements.

    `service_base` is the generated `...Servicer` base; methods still inherited from it
    are left alone (they answer UNIMPLEMENTED themselves).
    """
    service = _service_descriptor(service_base)

    def decorate(cls: T) -> T:
        for method in service.methods:
            impl = getattr(cls, method.name, None)
            if impl is None or impl is getattr(service_base, method.name, None) or hasattr(impl, GUARDED):
                continue  # generated (UNIMPLEMENTED), or guarded already by a base class
            full_name = f"{service.full_name}/{method.name}"
            wrap = _streamed_response if method.server_streaming else _unary_response
            wrapper = wrap(impl, full_name)
            setattr(wrapper, GUARDED, True)
            setattr(cls, method.name, wrapper)
        return cls

    return decorate


def _service_descriptor(service_base: type) -> Any:
    """The ServiceDescriptor of a generated servicer base, found by its class name."""
    pb2 = importlib.import_module(service_base.__module__.removesuffix("_grpc"))
    return pb2.DESCRIPTOR.services_by_name[service_base.__name__.removesuffix("Servicer")]


@contextmanager
def field_prefix(prefix: str) -> Iterator[None]:
    """Re-raises InvalidArgument with its field placed under `prefix` (``contact.ref``)."""
    try:
        yield
    except InvalidArgument as exc:
        raise exc.under(prefix) from None
