"""Transport security: server credentials (TLS, mutual TLS) and client channels.

Server: `--tls-cert` and `--tls-key` (PEM) turn on TLS; `--tls-client-ca` adds mutual TLS,
where a client must present a certificate signed by that CA. Client: a channel is TLS when
a CA file, a client certificate or `tls=True` is given (system roots without a CA file),
and carries a bearer token in every call's metadata when one is given.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from core.errors import InvalidArgument
from server.auth import BearerClientInterceptor


@dataclass(frozen=True, slots=True)
class ServerTls:
    """PEM files of a TLS server; `client_ca` set means clients must present certificates."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None


def server_tls(cert: Path | None, key: Path | None, client_ca: Path | None) -> ServerTls | None:
    """The TLS configuration of three settings; None for plaintext.

    Raises InvalidArgument naming the setting when only one of cert/key is given, or a
    client CA without them.
    """
    if cert is None and key is None:
        if client_ca is not None:
            raise InvalidArgument("tls_client_ca", "mutual TLS needs tls_cert and tls_key as well")
        return None
    if cert is None or key is None:
        missing = "tls_cert" if cert is None else "tls_key"
        raise InvalidArgument(missing, "TLS needs both tls_cert and tls_key")
    return ServerTls(cert, key, client_ca)


def _read(path: Path, setting: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(setting, f"cannot read {path}: {exc.strerror}") from None
    if b"-----BEGIN" not in data:
        raise InvalidArgument(setting, f"{path} is not a PEM file")
    return data


def server_credentials(tls: ServerTls) -> grpc.ServerCredentials:
    """gRPC server credentials for `tls` (client certificates required when mutual)."""
    pair = (_read(tls.key, "tls_key"), _read(tls.cert, "tls_cert"))
    root = _read(tls.client_ca, "tls_client_ca") if tls.client_ca is not None else None
    return grpc.ssl_server_credentials([pair], root_certificates=root, require_client_auth=root is not None)


@dataclass(frozen=True, slots=True)
class ClientTls:
    """What a client needs for TLS: the CA to trust (None: system roots) and an optional cert."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str = ""  # the name to check the server's certificate against, when not the host


def client_credentials(tls: ClientTls) -> grpc.ChannelCredentials:
    """gRPC channel credentials for `tls`."""
    if (tls.cert is None) != (tls.key is None):
        raise InvalidArgument("tls_client_cert" if tls.cert is None else "tls_client_key",
                              "a client certificate needs both the certificate and its key")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca, "tls_ca") if tls.ca is not None else None,
        private_key=_read(tls.key, "tls_client_key") if tls.key is not None else None,
        certificate_chain=_read(tls.cert, "tls_client_cert") if tls.cert is not None else None,
    )


def client_channel(
    target: str,
    *,
    tls: ClientTls | None = None,
    token: str = "",
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A channel to `target`: TLS when `tls` is given, a bearer token on every call when given."""
    opts = list(options)
    if tls is None:
        channel = grpc.insecure_channel(target, options=opts)
    else:
        if tls.server_name:
            opts.append(("grpc.ssl_target_name_override", tls.server_name))
        channel = grpc.secure_channel(target, client_credentials(tls), options=opts)
    if token:
        channel = grpc.intercept_channel(channel, BearerClientInterceptor(token))
    return channel


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """The credential options every client command takes (each also read from the environment)."""
    parser.add_argument("--token", metavar="TOKEN", default=None,
                        help="bearer token sent with every call (default: $SEGMENTD_TOKEN)")
    parser.add_argument("--tls", action="store_true", default=None,
                        help="use TLS with the system's trusted roots (default: $SEGMENTD_TLS)")
    parser.add_argument("--tls-ca", metavar="PEM", default=None,
                        help="use TLS, trusting this CA certificate (default: $SEGMENTD_TLS_CA)")
    parser.add_argument("--tls-client-cert", metavar="PEM", default=None,
                        help="client certificate for mutual TLS (default: $SEGMENTD_TLS_CLIENT_CERT)")
    parser.add_argument("--tls-client-key", metavar="PEM", default=None,
                        help="key of the client certificate (default: $SEGMENTD_TLS_CLIENT_KEY)")
    parser.add_argument("--tls-server-name", metavar="NAME", default=None,
                        help="name the server certificate must carry, when not the host of --server "
                             "(default: $SEGMENTD_TLS_SERVER_NAME)")


def client_credentials_from(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> tuple[ClientTls | None, str]:
    """(TLS settings or None for plaintext, bearer token or "") from flags, else the environment."""
    environ = os.environ if env is None else env

    def pick(name: str) -> str:
        given = getattr(args, name, None)
        return str(given) if given else environ.get("SEGMENTD_" + name.upper(), "")

    token = pick("token").strip()
    ca, cert, key = pick("tls_ca"), pick("tls_client_cert"), pick("tls_client_key")
    server_name = pick("tls_server_name")
    tls_env = environ.get("SEGMENTD_TLS", "").lower() in ("1", "true", "yes", "on")
    wants_tls = bool(getattr(args, "tls", None)) or tls_env
    if not (wants_tls or ca or cert or key):
        return None, token
    return ClientTls(Path(ca) if ca else None, Path(cert) if cert else None, Path(key) if key else None,
                     server_name), token


def peer_identity(context: grpc.ServicerContext) -> str:
    """The common name of a client certificate (mutual TLS), "" without one."""
    try:
        names = context.auth_context().get("x509_common_name") or []
    except Exception:  # not every context implements auth_context
        return ""
    return names[0].decode("utf-8", "replace") if names else ""
