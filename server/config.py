"""Server settings: one dataclass, four sources, one precedence.

Every setting is a `Settings` field with a default and help text; its flag is the field name
with dashes (`--max-batch-events`), its environment variable `SEGMENTD_` + the name in
capitals (`SEGMENTD_MAX_BATCH_EVENTS`), its config-file key the name itself
(`max_batch_events = 10000` in TOML). A value given on the command line wins over the
environment, which wins over the config file (`--config FILE` or `SEGMENTD_CONFIG`), which
wins over the default. `segmentd serve --help` lists them all, generated from this table.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from core.errors import InvalidArgument
from server.limits import Limits

ENV_PREFIX = "SEGMENTD_"
CONFIG_ENV = "SEGMENTD_CONFIG"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def setting(default: Any, help_text: str, *, group: str, choices: tuple[str, ...] = (), metavar: str = "") -> Any:
    """A Settings field: its default, help text, --help group and allowed values."""
    return field(default=default, metadata={"help": help_text, "group": group, "choices": choices, "metavar": metavar})


@dataclass(frozen=True)
class Settings:
    """Everything `segmentd serve` can be told. Field order is --help order within a group."""

    # server
    listen: str = setting("127.0.0.1:50051", "address the gRPC server listens on", group="server", metavar="HOST:PORT")
    data_dir: Path | None = setting(None, "where snapshots and the log are kept (created if missing); "
                                    "unset: nothing is kept", group="server", metavar="DIR")
    demo: bool = setting(False, "load a demo dataset (a shop and a fitness app) at start", group="server")
    max_workers: int = setting(16, "threads serving RPCs", group="server", metavar="N")
    quick_workers: int = setting(2, "threads of their own serving CheckMembership and GetContactSegments, so "
                                 "streams and slow calls never hold them up (0: the main pool serves them)",
                                 group="server", metavar="N")
    grace_s: float = setting(5.0, "on SIGTERM/SIGINT, seconds running calls get to finish", group="server",
                             metavar="SECONDS")
    # durability
    fsync: str = setting("always", "when the log is synced: on every acknowledged write, once a second, or never",
                         group="durability", choices=("always", "everysec", "none"))
    force_recovery: bool = setting(False, "start from the previous snapshot when the current one or the log is "
                                   "damaged (loses what they held)", group="durability")
    snapshot_every_mb: int = setting(256, "take a snapshot after this many MiB of log (0: never by size)",
                                     group="durability", metavar="MIB")
    snapshot_every_s: float = setting(3600.0, "take a snapshot after this many seconds with writes (0: never by time)",
                                      group="durability", metavar="SECONDS")
    # security
    tls_cert: Path | None = setting(None, "server certificate chain, PEM; with tls_key turns on TLS", group="security",
                                    metavar="PEM")
    tls_key: Path | None = setting(None, "private key of tls_cert, PEM", group="security", metavar="PEM")
    tls_client_ca: Path | None = setting(None, "CA certificates, PEM: clients must present a certificate signed by "
                                         "one (mutual TLS)", group="security", metavar="PEM")
    tokens_file: Path | None = setting(None, "bearer tokens, one `TOKEN read-only|read-write [NAME]` per line; "
                                       "with any token configured, calls need one", group="security", metavar="FILE")
    tokens: str = setting("", "bearer tokens inline, `TOKEN SCOPE [NAME]` separated by commas (prefer the "
                          "environment or tokens_file: flags show in the process list)", group="security",
                          metavar="LIST")
    reflection: str = setting("auth", "server reflection: `auth` needs a token when tokens are configured, `open` "
                              "never does, `off` disables it", group="security", choices=("auth", "open", "off"))
    # limits
    max_request_bytes: int = setting(64 * 1024 * 1024, "largest request message, bytes", group="limits", metavar="N")
    max_batch_events: int = setting(10_000, "events (or contacts) in one batch message", group="limits", metavar="N")
    max_string_bytes: int = setting(64 * 1024, "one string field of a request, UTF-8 bytes", group="limits",
                                    metavar="N")
    max_list_items: int = setting(10_000, "items of one repeated field (messages or strings) or map in a request",
                                  group="limits", metavar="N")
    max_json_depth: int = setting(64, "nesting of one JSON Lines document", group="limits", metavar="N")
    max_definition_depth: int = setting(16, "nesting of conditions (and of `any` filters) in a definition",
                                        group="limits", metavar="N")
    max_definition_conditions: int = setting(256, "conditions in one definition", group="limits", metavar="N")
    max_definition_bytes: int = setting(256 * 1024, "one encoded segment definition, bytes", group="limits",
                                        metavar="N")
    max_concurrent_rpcs: int = setting(256, "RPCs admitted at once, running or waiting for a thread", group="limits",
                                       metavar="N")
    max_streams: int = setting(8, "streaming RPCs open at once (each holds a thread; 0: no limit); keep it below "
                               "max_workers", group="limits", metavar="N")
    stream_messages_per_s: float = setting(1000.0, "messages one client stream may send per second (0: no limit)",
                                           group="limits", metavar="RATE")
    eval_deadline_s: float = setting(60.0, "server-side deadline of a call that evaluates segments, seconds (0: none)",
                                     group="limits", metavar="SECONDS")
    # observability
    metrics_listen: str = setting("", "address of the Prometheus /metrics endpoint (HTTP); unset: no endpoint",
                                  group="observability", metavar="HOST:PORT")
    log_format: str = setting("json", "log lines as JSON objects or as text", group="observability",
                              choices=("json", "text"))
    log_level: str = setting("info", "lowest level logged", group="observability",
                             choices=("debug", "info", "warning", "error"))
    log_identifiers: bool = setting(False, "let contact identifiers (emails, phones, references) appear in logs",
                                    group="observability")
    access_log: bool = setting(True, "one log line per RPC (health checks at debug level)", group="observability")

    def limits(self) -> Limits:
        """The `Limits` part of these settings."""
        return Limits(**{f.name: getattr(self, f.name) for f in fields(Limits)})


GROUPS = ("server", "durability", "security", "limits", "observability")


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_of(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _kind(f: dataclasses.Field[Any]) -> str:
    text = str(f.type)
    for kind in ("bool", "int", "float", "Path"):
        if text.startswith(kind):
            return kind
    return "str"


def _convert(f: dataclasses.Field[Any], raw: Any, source: str) -> Any:
    """`raw` (text from a flag or the environment, or a TOML value) as the field's type."""
    kind = _kind(f)
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError("expected true or false")
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError("expected an integer")
            value: Any = int(str(raw).replace("_", "")) if not isinstance(raw, int) else raw
            if value < 0:
                raise ValueError("must not be negative")
        elif kind == "float":
            if isinstance(raw, bool):
                raise ValueError("expected a number")
            value = float(raw)
            if not value >= 0 or value == float("inf"):
                raise ValueError("must be a finite number, not negative")
        elif kind == "Path":
            if not isinstance(raw, str):
                raise ValueError("expected a path")
            value = Path(raw).expanduser() if raw else None
        else:
            if not isinstance(raw, str):
                raise ValueError("expected a string")
            value = raw
    except ValueError as exc:
        raise InvalidArgument(source, f"{raw!r} is not valid: {exc}") from None
    choices = f.metadata["choices"]
    if choices and value not in choices:
        raise InvalidArgument(source, f"must be one of {', '.join(choices)}, not {value!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds `--config` and one flag per setting, grouped, each help naming env var and default."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help=f"TOML file of settings (keys are the setting names below); env {CONFIG_ENV}",
    )
    groups = {name: parser.add_argument_group(f"{name} settings") for name in GROUPS}
    for f in fields(Settings):
        meta = f.metadata
        default = "unset" if f.default in (None, "") else f.default
        text = f"{meta['help']} [env {env_of(f.name)}, config {f.name}, default {default}]".replace("%", "%%")
        group = groups[meta["group"]]
        if _kind(f) == "bool":
            group.add_argument(flag_of(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                               help=text)
        else:
            group.add_argument(flag_of(f.name), dest=f.name, default=None, metavar=meta["metavar"] or None,
                               choices=meta["choices"] or None, help=text)


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings of a TOML file: a flat table of setting names (a [segmentd] table also works)."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise InvalidArgument("config", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument("config", f"{path} is not valid TOML: {exc}") from None
    table = doc.get("segmentd", doc) if set(doc) == {"segmentd"} else doc
    known = {f.name for f in fields(Settings)}
    for key in table:
        if key not in known:
            raise InvalidArgument(f"config {path}", f"unknown setting {key!r}")
    return dict(table)


def resolve(
    flags: argparse.Namespace | Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Settings from flags > environment > config file > defaults.

    `flags` holds parsed flags (None for a flag not given); `env` defaults to os.environ;
    the config file is `config_file`, else the `--config` flag, else $SEGMENTD_CONFIG.
    Raises InvalidArgument naming the flag, variable or file key of a bad value.
    """
    given = dict(vars(flags) if isinstance(flags, argparse.Namespace) else (flags or {}))
    environ = os.environ if env is None else env
    path = config_file or given.get("config") or environ.get(CONFIG_ENV) or None
    from_file = read_config_file(Path(path)) if path else {}
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if given.get(f.name) is not None:
            values[f.name] = _convert(f, given[f.name], flag_of(f.name))
        elif env_of(f.name) in environ:
            values[f.name] = _convert(f, environ[env_of(f.name)], env_of(f.name))
        elif f.name in from_file:
            values[f.name] = _convert(f, from_file[f.name], f"config {f.name}")
    return Settings(**values)


def describe() -> list[tuple[str, str, str, str, str]]:
    """(name, flag, env var, default, help) of every setting, for documentation."""
    return [
        (f.name, flag_of(f.name), env_of(f.name), "" if f.default in (None, "") else str(f.default), f.metadata["help"])
        for f in fields(Settings)
    ]
