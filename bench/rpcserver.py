"""The benchmark server with its serving knobs, for latency experiments on membership reads.

``python -m bench.rpcserver`` serves like ``python -m bench.common serve`` (same engine, clock
and bulk load; it prints one JSON line with the port) and takes the knobs under test:

- ``--workers N`` main pool threads, ``--quick-workers N`` quick-read threads (0: none);
- ``--observe``: metrics and access log on, as a production server runs (access lines go to
  a null handler: the cost of building them is counted, not of a terminal);
- ``--chain none``: no interceptors at all, the servicer straight on gRPC (an ablation that
  shows what the interceptor chain costs; health and readiness are skipped too);
- ``--chain aio``: the same bare servicer on a ``grpc.aio`` server, its methods called inline
  on the event loop (the most a grpc.aio read path could win; errors are not mapped, so
  only for error-free load).

`start` runs one in a child process and hands back a ``bench.common.ServerProcess``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.common import (
    LOOPBACK,
    OffsetClock,
    ServerProcess,
    load_engine,
    rss_bytes,
    spawn_server,
)


@dataclass(frozen=True, slots=True)
class ServerKnobs:
    """How the benchmark server serves; the defaults are segmentd's own."""

    workers: int = 16
    quick_workers: int | None = None  # None: server.app.QUICK_WORKERS
    observe: bool = False
    chain: str = "full"  # full | none | aio

    def args(self) -> list[str]:
        out = ["--workers", str(self.workers), "--chain", self.chain]
        if self.quick_workers is not None:
            out += ["--quick-workers", str(self.quick_workers)]
        if self.observe:
            out.append("--observe")
        return out

    def describe(self) -> dict[str, Any]:
        from server.app import QUICK_WORKERS

        quick = QUICK_WORKERS if self.quick_workers is None else self.quick_workers
        return {"workers": self.workers, "quick_workers": quick, "observe": self.observe, "chain": self.chain}


def start(knobs: ServerKnobs, *, start_ms: int | None, load: str | None, load_seconds: float | None = None,
          shard_bits: int = 20) -> ServerProcess:
    """Starts the server process and waits for its JSON line (the load's budget plus two minutes)."""
    cmd = [sys.executable, "-m", "bench.rpcserver", "--shard-bits", str(shard_bits), *knobs.args()]
    if start_ms is not None:
        cmd += ["--start-ms", str(start_ms)]
    if load:
        cmd += ["--load", load]
    if load_seconds is not None:
        cmd += ["--load-seconds", str(load_seconds)]
    return spawn_server(cmd, (load_seconds if load_seconds is not None else 3600.0) + 120.0)


@contextmanager
def running(knobs: ServerKnobs, **kwargs: Any) -> Iterator[ServerProcess]:
    srv = start(knobs, **kwargs)
    try:
        yield srv
    finally:
        srv.stop()


def _bare_server(engine: Any, workers: int) -> tuple[Any, int]:
    """The servicer alone on a gRPC server: no interceptors, no health service."""
    import grpc

    from server.pb import segmentd_pb2_grpc as pb_grpc
    from server.servicer import Servicer

    inner = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_SegmentdServicer_to_server(Servicer(engine), inner)
    return inner, inner.add_insecure_port(f"{LOOPBACK}:0")


class _Inline:
    """The servicer's unary and server-streaming methods as coroutines run on the event loop."""

    def __init__(self, servicer: Any) -> None:
        from server.pb import segmentd_pb2 as pb

        for method in pb.DESCRIPTOR.services_by_name["Segmentd"].methods:
            impl = getattr(servicer, method.name)
            if method.client_streaming:
                continue
            setattr(self, method.name, _streamed(impl) if method.server_streaming else _unary(impl))

    def __getattr__(self, name: str) -> Any:  # client streams: not served by this variant
        raise AttributeError(name)


def _unary(impl: Any) -> Any:
    async def call(request: Any, context: Any) -> Any:
        return impl(request, context)

    return call


def _streamed(impl: Any) -> Any:
    async def call(request: Any, context: Any) -> Any:
        for reply in impl(request, context):
            yield reply

    return call


class _AioServer:
    """A grpc.aio server on an event loop of its own thread, with the sync server's start/stop."""

    def __init__(self, engine: Any) -> None:
        import asyncio

        import grpc

        from server.pb import segmentd_pb2_grpc as pb_grpc
        from server.servicer import Servicer

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="aio-server", daemon=True)
        self._thread.start()

        async def build() -> tuple[Any, int]:
            server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
            servicer = Servicer(engine)
            proxy = _Inline(servicer)
            for name in ("StreamEvents",):  # client streams stay unserved
                setattr(proxy, name, getattr(servicer, name))
            pb_grpc.add_SegmentdServicer_to_server(proxy, server)
            return server, server.add_insecure_port(f"{LOOPBACK}:0")

        self._server, self.port = asyncio.run_coroutine_threadsafe(build(), self._loop).result()

    def start(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self._server.start(), self._loop).result()

    def stop(self, grace: float) -> threading.Event:
        import asyncio

        asyncio.run_coroutine_threadsafe(self._server.stop(grace), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(grace + 1.0)
        done = threading.Event()
        done.set()
        return done


def _serve(args: argparse.Namespace) -> int:
    from core.engine import Engine
    from server.app import QUICK_WORKERS, build_server
    from server.limits import Limits
    from server.observe import ServerMetrics
    from server.pipeline import Protection

    clock = OffsetClock(args.start_ms) if args.start_ms is not None else None
    engine = Engine(clock=clock, shard_bits=args.shard_bits)
    if args.chain == "none":
        server, port = _bare_server(engine, args.workers)
    elif args.chain == "aio":
        server = _AioServer(engine)
        port = server.port
    else:
        if args.observe:  # access lines are built and handed to logging, then dropped
            access = logging.getLogger("segmentd.access")
            access.addHandler(logging.NullHandler())
            access.setLevel(logging.INFO)
            access.propagate = False
        protection = Protection(limits=Limits(max_streams=0, stream_messages_per_s=0),
                                metrics=ServerMetrics() if args.observe else None, access_log=args.observe)
        quick = QUICK_WORKERS if args.quick_workers is None else args.quick_workers
        server, port = build_server(engine, f"{LOOPBACK}:0", max_workers=args.workers, protection=protection,
                                    quick_workers=quick)
    server.start()
    info: dict[str, Any] = {"port": port, "pid": os.getpid(), "start_ms": args.start_ms}
    if args.load:
        from bench import datagen

        info["load"] = load_engine(engine, datagen.open_dataset(args.load), seconds=args.load_seconds)
    info["rss_bytes"] = rss_bytes()
    if clock is not None:
        info["clock_origin_wall_ms"] = clock.run()
    engine.start_background(on_error=lambda exc: print(f"time-driven update failed: {exc!r}", file=sys.stderr))
    engine.ready = True
    print(json.dumps(info), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.2):
        pass
    engine.stop_background()
    server.stop(2.0).wait(3.0)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.rpcserver", description=__doc__.splitlines()[0])
    ap.add_argument("--start-ms", type=int, default=None, help="the clock's reading at start (epoch ms)")
    ap.add_argument("--load", default=None, help="a generated dataset directory to bulk-load first")
    ap.add_argument("--load-seconds", type=float, default=None, help="stop the bulk load after this long")
    ap.add_argument("--shard-bits", type=int, default=20)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--quick-workers", type=int, default=None)
    ap.add_argument("--observe", action="store_true", help="metrics and access log on")
    ap.add_argument("--chain", choices=("full", "none", "aio"), default="full")
    return _serve(ap.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
