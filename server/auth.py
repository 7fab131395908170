"""Bearer tokens: a table of tokens with scopes, and the interceptor that checks them.

Tokens come from a file (`SEGMENTD_TOKENS_FILE`, `--tokens-file`) and/or inline text
(`SEGMENTD_TOKENS`), one per line: ``TOKEN SCOPE [NAME]``. SCOPE is `read-only` or
`read-write`; NAME (default: the token's line) is what logs and audit records show — the
token itself never is. Blank lines and lines starting with ``#`` are ignored.

Policy (docs/OPERATIONS.md): with no tokens configured, every call is allowed. With tokens,
every segmentd.v1 call needs `authorization: Bearer TOKEN`; read-only tokens may call the
reading RPCs, every other RPC (ingest, contact and definition changes, snapshots, and any
method not listed as reading) needs read-write. Health checks never need a token, so
orchestrators can probe; reflection needs a valid token of either scope unless the
`reflection` setting says `open` (or `off`, which does not register it).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from core.errors import InvalidArgument
from server import handlers, logs

HEALTH_SERVICE = "grpc.health.v1.Health"
REFLECTION_SERVICES = ("grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection")
SEGMENTD_SERVICE = "segmentd.v1.Segmentd"
# The reading RPCs of segmentd.v1.Segmentd; everything else there needs read-write.
READ_METHODS = frozenset(
    {
        "ListEventTypes",
        "GetEventHistory",
        "GetContact",
        "GetSegment",
        "ListSegments",
        "PreviewSegment",
        "CountMembers",
        "ListMembers",
        "CheckMembership",
        "GetContactSegments",
        "ExplainMembership",
        "WatchSegments",
        "GetSegmentHistory",
    }
)
REFLECTION_POLICIES = ("auth", "open", "off")


class Scope(enum.IntEnum):
    """What a token may do; a higher scope includes the lower."""

    READ = 1
    WRITE = 2

    @property
    def label(self) -> str:
        return "read-only" if self is Scope.READ else "read-write"


SCOPE_NAMES = {"read-only": Scope.READ, "read": Scope.READ, "read-write": Scope.WRITE, "write": Scope.WRITE}


@dataclass(frozen=True, slots=True)
class Grant:
    scope: Scope
    name: str


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(slots=True)
class TokenTable:
    """Tokens (held as SHA-256 digests) and what each grants."""

    _grants: dict[bytes, Grant] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._grants)

    def add(self, token: str, scope: Scope, name: str) -> None:
        self._grants[_digest(token)] = Grant(scope, name)

    def grant_of(self, token: str) -> Grant | None:
        """What `token` grants, or None for an unknown token (compared in constant time)."""
        wanted = _digest(token)
        found: Grant | None = None
        for digest, grant in self._grants.items():  # no early exit: timing says nothing
            if hmac.compare_digest(digest, wanted):
                found = grant
        return found


def parse_tokens(text: str, source: str, table: TokenTable | None = None) -> TokenTable:
    """Adds the ``TOKEN SCOPE [NAME]`` lines of `text` to `table` (a new one by default).

    Raises InvalidArgument naming `source` and the line for a malformed line; the message
    never repeats the token.
    """
    table = table if table is not None else TokenTable()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        where = f"{source}:{number}"
        if len(parts) not in (2, 3):
            raise InvalidArgument(where, "expected `TOKEN SCOPE [NAME]`")
        token, scope_name = parts[0], parts[1].lower()
        if scope_name not in SCOPE_NAMES:
            raise InvalidArgument(where, f"scope must be read-only or read-write, not {parts[1]!r}")
        if len(token) < 16:
            raise InvalidArgument(where, "a token must be at least 16 characters long")
        table.add(token, SCOPE_NAMES[scope_name], parts[2] if len(parts) == 3 else f"token-{number}")
    return table


def load_tokens(path: Path | None, inline: str = "") -> TokenTable | None:
    """The tokens of the file `path` and of `inline`; None when neither names any token."""
    table = TokenTable()
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidArgument("tokens_file", f"cannot read {path}: {exc.strerror}") from None
        parse_tokens(text, str(path), table)
    if inline:
        parse_tokens(inline.replace(",", "\n").replace(";", "\n"), "SEGMENTD_TOKENS", table)
    return table if len(table) else None


def required_scope(full_method: str, reflection: str = "auth") -> Scope | None:
    """The scope a method needs; None when it needs no token at all."""
    service, method = handlers.method_parts(full_method)
    if service == HEALTH_SERVICE:
        return None
    if service in REFLECTION_SERVICES:
        return None if reflection == "open" else Scope.READ
    if service == SEGMENTD_SERVICE and method in READ_METHODS:
        return Scope.READ
    return Scope.WRITE  # fail closed: anything not known to be reading needs read-write


def bearer_token(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    """The token of an `authorization: Bearer TOKEN` header, "" for another scheme, None if absent."""
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            scheme, _, token = text.strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


class AuthInterceptor(grpc.ServerInterceptor):
    """Refuses calls without a valid token of the scope their method needs.

    UNAUTHENTICATED: no token, another scheme, or an unknown token. PERMISSION_DENIED: a
    valid token whose scope is too low. `on_refusal(reason)` counts refusals for metrics.
    """

    def __init__(
        self,
        tokens: TokenTable,
        *,
        reflection: str = "auth",
        on_refusal: Callable[[str], None] | None = None,
    ) -> None:
        self._tokens = tokens
        self._reflection = reflection
        self._on_refusal = on_refusal or (lambda reason: None)

    def intercept_service(
        self, continuation: Callable[[Any], grpc.RpcMethodHandler | None], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        method: str = details.method  # type: ignore[attr-defined]
        needed = required_scope(method, self._reflection)
        if handler is None or needed is None:
            return handler
        token = bearer_token(details.invocation_metadata)  # type: ignore[attr-defined]
        if token is None:
            return self._refuse(handler, "missing", grpc.StatusCode.UNAUTHENTICATED,
                                "this server needs a bearer token: send `authorization: Bearer TOKEN` metadata")
        grant = self._tokens.grant_of(token) if token else None
        if grant is None:
            return self._refuse(handler, "invalid", grpc.StatusCode.UNAUTHENTICATED,
                                "the bearer token is not valid for this server")
        if grant.scope < needed:
            _, name = handlers.method_parts(method)
            return self._refuse(handler, "scope", grpc.StatusCode.PERMISSION_DENIED,
                                f"{name} needs a {needed.label} token; this one ({grant.name}) is {grant.scope.label}")
        return handlers.wrapped(handler, _as_principal(grant.name))

    def _refuse(
        self, handler: grpc.RpcMethodHandler, reason: str, code: grpc.StatusCode, details: str
    ) -> grpc.RpcMethodHandler:
        self._on_refusal(reason)
        return handlers.refusing(handler, code, details)


def _as_principal(name: str) -> handlers.Wrapper:
    """Records the token's name on the call's log info before serving it."""

    def wrap(behaviour: handlers.Behaviour) -> handlers.Behaviour:
        def serve(request: Any, context: grpc.ServicerContext) -> Any:
            info = logs.current_call()
            if info is not None:
                info.principal = name
            return behaviour(request, context)

        return serve

    return wrap


class BearerClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Client side: adds `authorization: Bearer TOKEN` to every call (any channel, plaintext too)."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [m for m in (details.metadata or ()) if m[0].lower() != "authorization"]
        metadata.append(self._header)
        return _CallDetails(details.method, details.timeout, metadata, details.credentials,
                            details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(
        self, method: str, timeout: float | None, metadata: Any, credentials: Any, wait_for_ready: Any, compression: Any
    ) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression
