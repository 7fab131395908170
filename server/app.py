"""App wiring: the gRPC server (servicer, health, reflection) and the `serve` loop.

Health follows the engine: the overall service ("") and segmentd.v1.Segmentd report
NOT_SERVING until `engine.ready`, SERVING after, and NOT_SERVING again from the moment the
server starts stopping. Until the engine is ready every segmentd RPC answers UNAVAILABLE;
health and reflection always answer, so `grpcurl` and orchestrators work from the start.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from core import trim
from core.engine import Engine
from core.segments.warmup import warm_up
from server.config import Settings
from server.metrics import MetricsEndpoint
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from server.pipeline import (
    Protection,
    bind,
    interceptors,
    protection_from,
    server_options,
)
from server.servicer import Servicer
from server.workers import QUICK_METHODS, LeanPool, QuickLane
from snapshots.durable import Durability, open_durable

log = logging.getLogger("segmentd")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Segmentd"].full_name  # "segmentd.v1.Segmentd"
# Room for a full 10,000-event batch (events up to 1 MiB each are rare; 64 MiB is the cap).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
READY_POLL_S = 0.02
DEFAULT_LISTEN = "127.0.0.1:50051"
# Threads serving the quick reads (server/workers.py); 0 serves them on the main pool.
QUICK_WORKERS = 2


class ReadinessGate(grpc.ServerInterceptor):
    """Answers UNAVAILABLE to segmentd RPCs until the engine is ready."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._prefix = f"/{SERVICE_NAME}/"

    def intercept_service(
        self, continuation: Callable[[Any], grpc.RpcMethodHandler | None], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or self._engine.ready or not details.method.startswith(self._prefix):  # type: ignore[attr-defined]
            return handler
        return _refusing(handler)


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that answers UNAVAILABLE."""

    def refuse(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAVAILABLE, "segmentd is starting; retry when its health check says SERVING")

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse, **kwargs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse, **kwargs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse, **kwargs)
    return grpc.unary_unary_rpc_method_handler(refuse, **kwargs)


class SegmentdServer(grpc.Server):
    """A grpc.Server whose health status follows the engine's readiness and its own stop."""

    def __init__(self, inner: grpc.Server, engine: Engine, health_servicer: health.HealthServicer) -> None:
        self._inner = inner
        self._engine = engine
        self.health = health_servicer
        self.servicer: Servicer | None = None  # set by build_server
        self.quick_pool: LeanPool | None = None  # set by build_server
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._inner.start()
        self._watcher = threading.Thread(target=self._watch_readiness, name="segmentd-readiness", daemon=True)
        self._watcher.start()

    def _watch_readiness(self) -> None:
        while not self._stopping.is_set():
            if self._engine.ready:
                for name in ("", SERVICE_NAME):
                    self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
                log.info("serving")
                return
            self._stopping.wait(READY_POLL_S)

    def stop(self, grace: float | None) -> threading.Event:
        """Reports NOT_SERVING at once, then stops taking calls and lets running ones finish."""
        self._stopping.set()
        self.health.enter_graceful_shutdown()
        stopped = self._inner.stop(grace)
        pool = self.quick_pool
        if pool is not None:  # its threads end once the calls still running are done
            threading.Thread(target=lambda: (stopped.wait(), pool.shutdown(wait=False)), daemon=True).start()
        return stopped

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._inner.wait_for_termination(timeout)

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Sequence[Any]) -> None:
        self._inner.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Any) -> None:
        self._inner.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        return self._inner.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self._inner.add_secure_port(address, server_credentials)


def build_server(
    engine: Engine,
    listen: str = "127.0.0.1:0",
    *,
    max_workers: int = 16,
    protection: Protection | None = None,
    quick_workers: int = QUICK_WORKERS,
) -> tuple[SegmentdServer, int]:
    """A server for `engine` bound to `listen` (port 0 picks a free one); not started.

    `protection`: TLS, tokens, limits, metrics (server/pipeline.py); by default plaintext, no
    tokens, the default limits, no metrics. `max_workers` threads serve streams and most
    calls; `quick_workers` more serve the quick reads (server/workers.py; 0: the main pool
    does). Returns the server and the bound port. Raises Unavailable when the address cannot
    be bound.
    """
    protection = protection or Protection()
    quick_pool = LeanPool(quick_workers) if quick_workers > 0 else None
    lane = [QuickLane(quick_pool, QUICK_METHODS)] if quick_pool is not None else []
    inner = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="segmentd-rpc"),
        interceptors=[*lane, *interceptors(protection), ReadinessGate(engine)],
        options=server_options(protection, MAX_MESSAGE_BYTES),
        maximum_concurrent_rpcs=protection.limits.max_concurrent_rpcs or None,
    )
    servicer = Servicer(engine)
    pb_grpc.add_SegmentdServicer_to_server(servicer, inner)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, inner)
    if protection.reflection != "off":
        reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), inner)
    if protection.metrics is not None:
        protection.metrics.watch_engine(engine)
    try:
        port = bind(inner, listen, protection.tls)
    except BaseException:
        if quick_pool is not None:
            quick_pool.shutdown(wait=False)
        raise
    server = SegmentdServer(inner, engine, health_servicer)
    server.servicer = servicer
    server.quick_pool = quick_pool
    return server, port


def serve(
    listen: str = DEFAULT_LISTEN,
    *,
    data_dir: Path | None = None,
    demo: bool = False,
    grace_s: float = 5.0,
    announce: Callable[[str], None] | None = None,
    fsync: str = "always",
    force_recovery: bool = False,
    settings: Settings | None = None,
) -> int:
    """Runs segmentd until SIGTERM or SIGINT; returns the process exit status.

    The server answers health checks (NOT_SERVING) while the kernels compile, the data
    directory is recovered and the demo loads, then SERVING until a signal arrives, then stops
    gracefully within `grace_s`, takes a final snapshot and closes the log.
    `settings` (server/config.py), when given, decide everything, the keywords before it
    included; without it those keywords are the settings of the same names.
    Raises RecoveryError when the data directory is damaged (see snapshots.recovery), and
    InvalidArgument naming the setting when TLS files or tokens cannot be used.
    """
    if settings is None:
        settings = Settings(listen=listen, data_dir=data_dir, demo=demo, grace_s=grace_s, fsync=fsync,
                            force_recovery=force_recovery)
    listen, data_dir, grace_s = settings.listen, settings.data_dir, settings.grace_s
    say = announce or _say
    protection = protection_from(settings)
    metrics = protection.metrics
    engine = Engine()
    server, port = build_server(engine, listen, max_workers=settings.max_workers,
                                quick_workers=settings.quick_workers, protection=protection)
    endpoint = MetricsEndpoint(metrics.registry, settings.metrics_listen) if metrics is not None else None
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    address = f"{listen.rsplit(':', 1)[0]}:{port}"
    log.info("listening on %s (starting)%s", address, " with TLS" if protection.tls is not None else "")
    if endpoint is not None:
        endpoint.start()
        log.info("metrics on http://%s:%d/metrics", settings.metrics_listen.rpartition(":")[0], endpoint.port)
    durability: Durability | None = None
    status = 0
    try:
        # Kernels compile (or load from their cache) while the data directory is recovered:
        # recovery waits on file reads the compiler can use, and neither needs the other.
        warm_pool = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="segmentd-warm-up")
        warming = warm_pool.submit(warm_up)
        warm_pool.shutdown(wait=False)  # its one thread ends after the warm-up
        if data_dir is not None:
            _, durability = open_durable(
                data_dir,
                fsync=settings.fsync,
                force_recovery=settings.force_recovery,
                engine=engine,
                snapshot_every_bytes=settings.snapshot_every_mb * 1024 * 1024,
                snapshot_every_s=settings.snapshot_every_s,
                fsync_fn=metrics.timed_fsync() if metrics is not None else os.fdatasync,
            )
            if metrics is not None:
                metrics.watch_durability(durability)
            assert server.servicer is not None
            server.servicer.durability = durability
        log.info("kernels compiled or loaded in %.1fs", warming.result())  # raises what warm-up raised
        summary = None
        if settings.demo and not engine.store.type_keys():  # a recovered data directory keeps its own data
            from server import demo as demo_data

            summary = demo_data.load(engine)
        engine.start_background(on_error=lambda exc: log.error("time-driven segment update failed", exc_info=exc))
        engine.ready = True
        _finish_restore_in_background(engine)
        say(f"segmentd serving on {address}")
        if summary is not None:
            say(summary.describe(address))
        while not stop.wait(0.5):
            pass
    finally:  # a signal, or a failure while starting: either way stop serving cleanly
        server.stop(grace_s).wait(grace_s + 1.0)
        engine.stop_background()  # no time-driven write after the log closes
        if durability is not None:
            try:
                durability.close()  # final snapshot, then the log is drained and closed
            except Exception:
                log.exception("final snapshot or log close failed")
                status = 1
        if endpoint is not None:
            endpoint.stop()
        log.info("stopped")
    return status


def _finish_restore_in_background(engine: Engine) -> None:
    """A restored contact book builds its lookup maps on first use; build them now, while the
    first requests (most of which do not need them) are answered."""

    def build() -> None:
        try:
            engine.contacts.finish_restore()
            trim.freeze()  # the restored state is live: full collections need not walk it
            trim.release(force=True)  # the recovery's read buffers and replaced arrays
        except Exception:  # the next caller that needs them builds them (and meets the error)
            log.exception("building the restored lookup maps failed")

    threading.Thread(target=build, name="segmentd-restore-maps", daemon=True).start()


def _say(text: str) -> None:
    print(text, flush=True)
