"""What stands between the network and the servicer: interceptors, options, the bound port.

Order of the interceptors, outermost first: the observer (request id, metrics, access log)
sees every call and its final code, refusals included; then authentication; then limits;
then whatever the caller adds (the readiness gate). Health checks pass auth and limits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from core.errors import InvalidArgument, Unavailable
from server.auth import AuthInterceptor, TokenTable, load_tokens
from server.config import Settings
from server.limits import Limits, LimitsInterceptor
from server.observe import RpcObserver, ServerMetrics
from server.tls import ServerTls, server_credentials, server_tls

log = logging.getLogger("segmentd")


@dataclass(frozen=True)
class Protection:
    """How a server guards and reports itself. The default: plaintext, no tokens, default limits."""

    tls: ServerTls | None = None
    tokens: TokenTable | None = None
    reflection: str = "auth"  # auth | open | off (server/auth.py)
    limits: Limits = field(default_factory=Limits)
    metrics: ServerMetrics | None = None
    access_log: bool = False


def interceptors(protection: Protection) -> list[grpc.ServerInterceptor]:
    """The observer, auth (with tokens) and limits interceptors, outermost first."""
    metrics = protection.metrics
    chain: list[grpc.ServerInterceptor] = [RpcObserver(metrics, access=protection.access_log)]
    if protection.tokens is not None:
        chain.append(
            AuthInterceptor(
                protection.tokens,
                reflection=protection.reflection,
                on_refusal=metrics.refusal_counter("auth") if metrics else None,
            )
        )
    limits = LimitsInterceptor(protection.limits, metrics.refusal_counter("limit") if metrics else None)
    chain.append(PerMethod(limits))
    return chain


class PerMethod(grpc.ServerInterceptor):
    """`inner` with its handler built once per method instead of once per call.

    For an interceptor whose handler depends only on the method name and the handler below it
    (the limits interceptor): while the layers below hand back the same handler, the one
    `inner` built for it is handed back again.
    """

    def __init__(self, inner: grpc.ServerInterceptor) -> None:
        self.inner = inner
        # full method name -> (the handler below, `inner`'s handler for it); one entry a method
        self._built: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler | None]] = {}

    def intercept_service(
        self, continuation: Callable[[Any], grpc.RpcMethodHandler | None], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        below = continuation(details)
        if below is None:
            return None
        method: str = details.method  # type: ignore[attr-defined]
        kept = self._built.get(method)
        if kept is not None and kept[0] is below:
            return kept[1]
        built = self.inner.intercept_service(lambda _: below, details)
        self._built[method] = (below, built)  # holding `below` keeps its identity unique
        return built


def server_options(protection: Protection, max_send_bytes: int) -> list[tuple[str, Any]]:
    """Channel arguments of the server: message sizes, no port sharing."""
    return [
        *protection.limits.grpc_options(),
        ("grpc.max_send_message_length", max_send_bytes),
        ("grpc.so_reuseport", 0),  # a second server on a taken port fails instead of sharing it
    ]


def bind(server: grpc.Server, listen: str, tls: ServerTls | None) -> int:
    """Binds `listen` (TLS when configured); the port. Raises Unavailable when it cannot."""
    try:
        if tls is None:
            port = server.add_insecure_port(listen)
        else:
            port = server.add_secure_port(listen, server_credentials(tls))
    except RuntimeError as exc:
        raise Unavailable(f"cannot listen on {listen}: {exc}") from None
    except InvalidArgument:
        raise
    if port == 0:
        raise Unavailable(f"cannot listen on {listen}: the address is taken or not local")
    return port


def protection_from(settings: Settings) -> Protection:
    """The protection `settings` ask for; metrics only when a metrics address is set.

    Raises InvalidArgument naming the setting when a TLS file or the tokens cannot be used.
    """
    tls = server_tls(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
    tokens = load_tokens(settings.tokens_file, settings.tokens)
    if tokens is not None and tls is None and not _loopback(settings.listen):
        log.warning("bearer tokens travel in plaintext: give the server tls_cert and tls_key")
    return Protection(
        tls=tls,
        tokens=tokens,
        reflection=settings.reflection,
        limits=settings.limits(),
        metrics=ServerMetrics() if settings.metrics_listen else None,
        access_log=settings.access_log,
    )


def _loopback(listen: str) -> bool:
    host = listen.rpartition(":")[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")
