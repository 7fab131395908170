"""Prometheus metrics: a small registry, the text exposition, an HTTP endpoint, the catalogue.

The registry holds counters, gauges and histograms with labels; `Registry.expose()` writes
the Prometheus text format (version 0.0.4). `MetricsEndpoint` serves it at `/metrics` from a
thread of its own, on a port apart from gRPC. `ServerMetrics` names every series segmentd
exports (docs/OPERATIONS.md lists them); gRPC series follow go-grpc-prometheus, so existing
dashboards work. Collectors run at scrape time for values read from the engine and the OS.
"""

from __future__ import annotations

import bisect
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from core.errors import Unavailable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# go-grpc-prometheus's default handling-time buckets, seconds.
RPC_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
EVAL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SNAPSHOT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

Labels = tuple[str, ...]


def _number(value: float) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**53):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(names: Labels, values: Labels, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Metric:
    """One metric family: a name, help text, label names and one child per label values."""

    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names: Labels = tuple(labels)
        self._children: dict[Labels, Any] = {}
        self._lock = threading.Lock()

    def _child(self, values: Labels) -> Any:
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self.label_names):
                raise KeyError(f"{self.name} takes labels {self.label_names}, got {values}")
            with self._lock:
                child = self._children.setdefault(values, self._new_child())
        return child

    def _new_child(self) -> Any:
        raise NotImplementedError

    def _items(self) -> list[tuple[Labels, Any]]:
        with self._lock:
            return sorted(self._children.items(), key=lambda item: item[0])

    def clear(self) -> None:
        """Drops every child (for gauges rebuilt at each scrape)."""
        with self._lock:
            self._children = {}

    def samples(self) -> Iterable[str]:
        raise NotImplementedError

    def expose(self) -> str:
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        head = f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(line + "\n" for line in self.samples())


class Child:
    """The value of one label combination of a counter or gauge."""

    __slots__ = ("value", "_lock")

    def __init__(self) -> None:
        self.value = 0.0
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self.value += amount

    def set(self, value: float) -> None:
        self.value = value


class Counter(Metric):
    """A count that only goes up (`labels(...).inc()`)."""

    kind = "counter"

    def _new_child(self) -> Child:
        return Child()

    def labels(self, *values: str) -> Child:
        """The child of these label values (created at zero on first use)."""
        child: Child = self._child(tuple(values))
        return child

    def samples(self) -> Iterable[str]:
        for values, child in self._items():
            yield f"{self.name}{_label_text(self.label_names, values)} {_number(child.value)}"


class Gauge(Counter):
    """A value that goes up and down (`labels(...).set(v)`)."""

    kind = "gauge"


class Buckets:
    """The observations of one label combination of a histogram."""

    __slots__ = ("bounds", "counts", "total", "count", "_lock")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)  # counts[i]: observations in (bounds[i-1], bounds[i]]
        self.total = 0.0
        self.count = 0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        slot = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self.counts[min(slot, len(self.counts) - 1)] += 1
            self.total += value
            self.count += 1

    def snapshot(self) -> tuple[list[int], float, int]:
        with self._lock:
            return list(self.counts), self.total, self.count


class Histogram(Metric):
    """Observations counted into cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (), buckets: Sequence[float] = RPC_BUCKETS):
        super().__init__(name, help_text, labels)
        self.bounds = tuple(sorted(float(b) for b in buckets)) + (math.inf,)

    def _new_child(self) -> Buckets:
        return Buckets(self.bounds)

    def labels(self, *values: str) -> Buckets:
        """The buckets of these label values."""
        buckets: Buckets = self._child(tuple(values))
        return buckets

    def samples(self) -> Iterable[str]:
        for values, child in self._items():
            counts, total, count = child.snapshot()
            running = 0
            for bound, n in zip(self.bounds, counts):
                running += n
                le = f'le="{_number(bound)}"'
                yield f"{self.name}_bucket{_label_text(self.label_names, values, le)} {running}"
            yield f"{self.name}_sum{_label_text(self.label_names, values)} {_number(total)}"
            yield f"{self.name}_count{_label_text(self.label_names, values)} {count}"


class Registry:
    """Every metric family of a process, and the collectors that refresh some at scrape."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self._collectors: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def _add(self, metric: Metric) -> Any:
        with self._lock:
            if metric.name in self._metrics:
                raise KeyError(f"metric {metric.name} is registered twice")
            self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, help_text, labels))

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(name, help_text, labels))

    def histogram(
        self, name: str, help_text: str, labels: Sequence[str] = (), buckets: Sequence[float] = RPC_BUCKETS
    ) -> Histogram:
        return self._add(Histogram(name, help_text, labels, buckets))

    def collector(self, collect: Callable[[], None]) -> None:
        """Runs `collect` before each exposition (it sets gauges from live state)."""
        self._collectors.append(collect)

    def names(self) -> list[str]:
        return sorted(self._metrics)

    def expose(self) -> str:
        """The whole registry in the Prometheus text format."""
        for collect in self._collectors:
            collect()
        with self._lock:
            metrics = sorted(self._metrics.values(), key=lambda m: m.name)
        return "".join(m.expose() for m in metrics)


# ----------------------------------------------------------------------------- HTTP endpoint


class MetricsEndpoint:
    """`GET /metrics` over HTTP on a thread of its own; `start()` binds, `stop()` closes."""

    def __init__(self, registry: Registry, listen: str) -> None:
        self.registry = registry
        host, _, port = listen.rpartition(":")
        try:
            self._server = ThreadingHTTPServer((host.strip("[]") or "127.0.0.1", int(port)), _handler_for(registry))
        except (OSError, ValueError) as exc:
            raise Unavailable(f"cannot serve metrics on {listen}: {exc}") from None
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _handler_for(registry: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?", 1)[0] not in ("/metrics", "/metrics/"):
                self.send_error(404, "only /metrics is served here")
                return
            body = registry.expose().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # scrapes are not worth a log line each

    return Handler


# ----------------------------------------------------------------------------- process


def process_collector(registry: Registry) -> None:
    """process_* series from /proc (Linux) and os.times: memory, CPU, descriptors, start."""
    rss = registry.gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
    vms = registry.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.")
    cpu = registry.gauge("process_cpu_seconds_total", "User and system CPU time spent, seconds.")
    fds = registry.gauge("process_open_fds", "Open file descriptors.")
    threads = registry.gauge("process_threads", "Threads of the process.")
    start = registry.gauge("process_start_time_seconds", "Start time of the process since the epoch, seconds.")
    start.labels().set(_start_time())
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def collect() -> None:
        try:
            with open("/proc/self/statm") as f:
                size, resident = (int(x) for x in f.read().split()[:2])
            vms.labels().set(size * page)
            rss.labels().set(resident * page)
            fds.labels().set(len(os.listdir("/proc/self/fd")))
        except OSError:
            pass
        times = os.times()
        cpu.labels().set(times.user + times.system)
        threads.labels().set(threading.active_count())

    registry.collector(collect)


def _start_time() -> float:
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()
