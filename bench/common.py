"""What every benchmark driver shares: timing, machine facts, result files, a server process.

Result files are JSON Lines under ``bench/results/`` named ``<kind>-<UTC timestamp>.jsonl``;
every line carries ``kind``, ``run`` (the file's timestamp) and the machine facts, so
``bench.report`` can regroup lines from any number of runs.

The benchmark server is a separate process (``python -m bench.common serve``) holding an
``Engine`` behind ``server.app.build_server`` on 127.0.0.1, with a clock that reads the
dataset's ``now`` while it loads and then runs forward in real time from there, so "last 7
days" means the same thing to the server as to the generated data. It can bulk-load a dataset
in-process before it reports SERVING (leaf columns through the bulk loader by default), which
keeps load time out of query benchmarks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


# ------------------------------------------------------------------------- timing


def now_s() -> float:
    return time.perf_counter()


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def percentiles(samples_ms: Sequence[float], qs: Sequence[float] = (50, 90, 99)) -> dict[str, float]:
    """{"p50": …} of the samples (milliseconds); empty samples give an empty dict."""
    if not len(samples_ms):
        return {}
    arr = np.asarray(samples_ms, dtype=np.float64)
    return {f"p{q:g}": round(float(np.percentile(arr, q)), 4) for q in qs}


def median(samples: Sequence[float]) -> float:
    return float(statistics.median(samples)) if samples else float("nan")


@dataclass(slots=True)
class Timed:
    first_ms: float
    median_ms: float
    runs: int
    samples_ms: list[float]
    value: Any


def time_call(fn: Callable[[], Any], runs: int = 5, seconds: float = 30.0) -> Timed:
    """The first call apart from the steady state: median of up to `runs` more within `seconds`."""
    t0 = now_s()
    value = fn()
    first = ms_since(t0)
    samples: list[float] = []
    deadline = now_s() + seconds
    while len(samples) < runs and now_s() < deadline:
        t0 = now_s()
        fn()
        samples.append(ms_since(t0))
    return Timed(first, median(samples) if samples else first, len(samples), samples, value)


class Deadline:
    """A time budget in seconds; `left()` is what remains, never negative."""

    def __init__(self, seconds: float) -> None:
        self.end = now_s() + seconds

    def left(self) -> float:
        return max(0.0, self.end - now_s())

    def passed(self) -> bool:
        return now_s() >= self.end


# ------------------------------------------------------------------- machine facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return float("nan")


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=5, check=False)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _version(module: str) -> str:
    try:
        mod = __import__(module)
        return str(getattr(mod, "__version__", ""))
    except ImportError:
        return ""


_MACHINE: dict[str, Any] | None = None


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory, OS and library versions of this machine (computed once)."""
    global _MACHINE
    if _MACHINE is None:
        _MACHINE = {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "mem_gib": _mem_total_gib(),
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(),
            "numpy": _version("numpy"),
            "numba": _version("numba"),
            "pyroaring": _version("pyroaring"),
            "duckdb": _version("duckdb"),
            "grpcio": _version("grpc"),
            "commit": _git_commit(),
        }
    return _MACHINE


# ------------------------------------------------------------------------ results


class ResultWriter:
    """Appends result lines to ``<dir>/<kind>-<timestamp>.jsonl``."""

    def __init__(self, kind: str, out_dir: str | Path | None = None, argv: Sequence[str] | None = None) -> None:
        self.kind = kind
        self.run = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.dir = Path(out_dir) if out_dir is not None else RESULTS_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / f"{kind}-{self.run}.jsonl"
        n = 1
        while self.path.exists():
            n += 1
            self.path = self.dir / f"{kind}-{self.run}-{n}.jsonl"
        args = list(sys.argv[1:] if argv is None else argv)
        self.command = " ".join(["python", "-m", f"bench.{kind}", *args])
        self.lines = 0

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        line = {"kind": self.kind, "run": self.run, "command": self.command, "machine": machine_info(),
                "loadavg_1m": round(os.getloadavg()[0], 2), **record}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(line, default=_json_default) + "\n")
        self.lines += 1
        return line


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def read_results(paths: Sequence[Path] | None = None) -> list[dict[str, Any]]:
    """Every result line of bench/results/*.jsonl (or of `paths`)."""
    files = list(paths) if paths is not None else sorted(RESULTS_DIR.glob("*.jsonl"))
    out: list[dict[str, Any]] = []
    for f in files:
        for line in Path(f).read_text().splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return out


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (default: this one), from /proc."""
    path = Path(f"/proc/{pid or 'self'}/status")
    for line in path.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# ---------------------------------------------------------------- engine loading


class OffsetClock:
    """Reads `start_ms` until `run()`, then runs forward in real time from there."""

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.origin_wall_ms: int | None = None

    def run(self) -> int:
        """Starts the clock; returns the wall-clock origin (epoch ms)."""
        self.origin_wall_ms = time.time_ns() // 1_000_000
        return self.origin_wall_ms

    def __call__(self) -> int:
        if self.origin_wall_ms is None:
            return self.start_ms
        return self.start_ms + (time.time_ns() // 1_000_000 - self.origin_wall_ms)


def load_engine(engine: Any, ds: Any, batch: int = 5000, seconds: float | None = None,
                columns: bool = False, settle: bool = True) -> dict[str, Any]:
    """Upserts the dataset's contacts then stores its events in-process.

    With `columns`, every event type goes in a chunk at a time through the store's bulk
    loader (`core.bulk.append_leaves` of `bench.columnar` leaf columns, the same store as
    ingesting the documents, without JSON, mapping or the log); otherwise the documents go
    through `Engine.ingest` in batches of `batch`. With `seconds`, stops after the chunk (or
    batch) that passes that budget: the engine then holds a prefix of the event stream,
    `events` long ("complete" tells). With `settle` (columns only), every table's tail is
    merged into its sorted base after the load, timed apart as `settle_s`, as a store
    compacting in the background would have it. Returns counts and seconds. Raises
    RuntimeError when anything is rejected or when the service numbers the contacts
    differently from the dataset.
    """
    from bench import datagen

    t0 = now_s()
    created = 0
    for docs in datagen.iter_contact_docs(ds, batch):
        rep = engine.upsert_contacts(docs)
        if rep.rejected:
            bad = next(o for o in rep.outcomes if o.error)
            raise RuntimeError(f"contact rejected: {bad.error}")
        created += rep.created
        last = rep.outcomes[-1].contact_id if rep.outcomes else 0
        if last and last != created:
            raise RuntimeError(f"contact ids are not dense in upsert order: got {last}, expected {created}")
    contacts_s = now_s() - t0
    t1 = now_s()
    deadline = Deadline(seconds) if seconds is not None else None
    if columns:
        accepted = load_columns(engine.store, ds, deadline)
        events_s = now_s() - t1
        t2 = now_s()
        if settle:
            for key in engine.store.type_keys():
                engine.store.shards(key)  # a sorted read merges every tail
        return {"contacts": created, "events": accepted, "complete": accepted == ds.events, "loader": "columns",
                "contacts_s": round(contacts_s, 3), "events_s": round(events_s, 3),
                "settle_s": round(now_s() - t2, 3)}
    accepted = 0
    for docs in datagen.iter_event_docs(ds, batch):
        rep = engine.ingest(docs)
        if rep.rejected:
            bad = next(o for o in rep.outcomes if o.status == "rejected")
            raise RuntimeError(f"event rejected: {bad.error}")
        accepted += rep.accepted
        if deadline is not None and deadline.passed():
            break
    return {"contacts": created, "events": accepted, "complete": accepted == ds.events, "loader": "documents",
            "contacts_s": round(contacts_s, 3), "events_s": round(now_s() - t1, 3)}


def load_columns(store: Any, ds: Any, deadline: Deadline | None = None,
                 on_chunk: Callable[[int], None] | None = None) -> int:
    """Bulk-loads the dataset's events chunk by chunk, each type of a chunk in one
    `append_leaves`; stops after the chunk that passes `deadline`. Returns events stored;
    `on_chunk(events so far)` runs after every chunk."""
    from bench import columnar, datagen
    from core.bulk import append_leaves

    builder = columnar.LeafColumnsBuilder(ds.contact_columns())
    loaded = 0
    for path in ds.event_chunks():
        chunk = datagen.load_chunk(path)
        for part in columnar.chunk_columns(builder, chunk):
            append_leaves(store, part.type_key, part.contact, part.ts_ms, part.columns)
            loaded += int(part.contact.shape[0])
        del chunk
        if on_chunk is not None:
            on_chunk(loaded)
        if deadline is not None and deadline.passed():
            break
    return loaded


# ------------------------------------------------------------------ server process


@dataclass(slots=True)
class ServerProcess:
    proc: subprocess.Popen[str]
    port: int
    info: dict[str, Any]

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def stop(self, timeout: float = 15.0) -> int:
        """Stops the server (SIGTERM, then SIGKILL after `timeout`); returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode or 0)


def start_server(*, start_ms: int | None = None, load: str | None = None, load_seconds: float | None = None,
                 shard_bits: int = 20, timeout: float | None = None, workers: int = 16,
                 loader: str = "columns") -> ServerProcess:
    """Starts ``python -m bench.common serve`` and waits for the line that names its port.

    `load_seconds` bounds the bulk load (the server then holds a prefix of the events);
    `timeout` bounds the whole start (default: the load budget plus two minutes).
    """
    cmd = [sys.executable, "-m", "bench.common", "serve", "--shard-bits", str(shard_bits), "--workers", str(workers)]
    if start_ms is not None:
        cmd += ["--start-ms", str(start_ms)]
    if load:
        cmd += ["--load", load, "--loader", loader]
    if load_seconds is not None:
        cmd += ["--load-seconds", str(load_seconds)]
    if timeout is None:
        timeout = (load_seconds if load_seconds is not None else 3600.0) + 120.0
    return spawn_server(cmd, timeout)


def spawn_server(cmd: list[str], timeout: float) -> ServerProcess:
    """Runs `cmd` (a benchmark server that prints one JSON line naming its port once it
    serves) and waits up to `timeout` seconds for that line; kills it when none comes."""
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    result: dict[str, Any] = {}

    def read_first() -> None:
        line = proc.stdout.readline() if proc.stdout else ""
        if line:
            result.update(json.loads(line))

    reader = threading.Thread(target=read_first, daemon=True)
    reader.start()
    reader.join(timeout)
    if "port" not in result:
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"benchmark server did not start within {timeout:.0f} s (exit {proc.returncode})")
    return ServerProcess(proc, int(result["port"]), result)


@contextmanager
def running_server(**kwargs: Any) -> Iterator[ServerProcess]:
    srv = start_server(**kwargs)
    try:
        yield srv
    finally:
        srv.stop()


def wait_serving(address: str, timeout: float = 60.0) -> None:
    """Blocks until the health service at `address` says SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    end = now_s() + timeout
    with grpc.insecure_channel(address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while True:
            try:
                res = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                if res.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if now_s() > end:
                raise RuntimeError(f"server at {address} not SERVING after {timeout:.0f} s")
            time.sleep(0.05)


# ------------------------------------------------------------------- gRPC clients


def channel(address: str) -> Any:
    """An insecure channel to a loopback address with large messages allowed."""
    import grpc

    if not address.startswith(("127.", "localhost", "[::1]")):
        raise ValueError(f"benchmarks talk to loopback addresses only, not {address}")
    opts = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    return grpc.insecure_channel(address, options=opts)


def stub_for(ch: Any) -> Any:
    from server.pb import segmentd_pb2_grpc as pb_grpc

    return pb_grpc.SegmentdStub(ch)


def upload_contacts(stub: Any, ds: Any, batch: int = 5000) -> dict[str, Any]:
    """Upserts the dataset's contacts in id order over UpsertContacts (jsonl fast path)."""
    from bench import datagen
    from server.pb import segmentd_pb2 as pb

    t0 = now_s()
    created = rejected = 0
    if ds.contacts_jsonl.exists():
        blocks = datagen.iter_jsonl_batches(ds.contacts_jsonl, batch)
    else:
        enc = json.JSONEncoder(separators=(",", ":"))
        blocks = ("".join(enc.encode(d) + "\n" for d in docs).encode() for docs in datagen.iter_contact_docs(ds, batch))
    for block in blocks:
        rep = stub.UpsertContacts(pb.UpsertContactsRequest(jsonl=block), timeout=600)
        created += rep.created
        rejected += rep.rejected
    if rejected or created != ds.contacts:
        raise RuntimeError(f"contact upload: {created} created, {rejected} rejected, {ds.contacts} expected")
    return {"contacts": created, "seconds": round(now_s() - t0, 3)}


def put_suite(stub: Any, entries: Sequence[Any]) -> list[str]:
    """Saves suite segments over PutSegment; returns the names saved."""
    from google.protobuf import json_format

    from server.pb import segmentd_pb2 as pb

    import grpc

    names = []
    for e in entries:
        seg = json_format.ParseDict(e.definition, pb.Segment())
        try:
            stub.PutSegment(pb.PutSegmentRequest(segment=seg), timeout=600)
        except grpc.RpcError as exc:
            raise RuntimeError(f"PutSegment {e.name}: {exc.code().name}: {exc.details()}") from exc
        names.append(e.name)
    return names


def stored_events(stub: Any) -> int:
    """Events the server holds, summed over ListEventTypes."""
    from server.pb import segmentd_pb2 as pb

    rep = stub.ListEventTypes(pb.ListEventTypesRequest(), timeout=60)
    return int(sum(t.count for t in rep.event_types))


def _serve(args: argparse.Namespace) -> int:
    """The server process: engine, optional bulk load, gRPC on 127.0.0.1, until SIGTERM."""
    from core.engine import Engine
    from server.app import build_server
    from server.limits import Limits
    from server.pipeline import Protection

    clock = OffsetClock(args.start_ms) if args.start_ms is not None else None
    engine = Engine(clock=clock, shard_bits=args.shard_bits)
    # Load runs open more streams at once, and stream faster, than a hostile client may.
    protection = Protection(limits=Limits(max_streams=0, stream_messages_per_s=0))
    server, port = build_server(engine, f"{LOOPBACK}:0", max_workers=args.workers, protection=protection)
    server.start()
    info: dict[str, Any] = {"port": port, "pid": os.getpid(), "start_ms": args.start_ms}
    rss0 = rss_bytes()
    if args.load:
        from bench import datagen

        info["load"] = load_engine(engine, datagen.open_dataset(args.load), seconds=args.load_seconds,
                                   columns=args.loader == "columns")
    info["rss_bytes"] = rss_bytes()
    info["rss_before_load_bytes"] = rss0
    if clock is not None:
        info["clock_origin_wall_ms"] = clock.run()
    background = hasattr(engine, "start_background")
    if background:  # time-driven segment updates, as `segmentd serve` runs them
        engine.start_background(on_error=lambda exc: print(f"time-driven update failed: {exc!r}", file=sys.stderr))
    info["time_driven_updates"] = background
    engine.ready = True
    print(json.dumps(info), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.2):
        pass
    if background:
        engine.stop_background()
    server.stop(2.0).wait(3.0)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.common")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run a benchmark server on 127.0.0.1 (prints its port as JSON)")
    s.add_argument("--start-ms", type=int, default=None, help="the clock's reading at start (epoch ms)")
    s.add_argument("--load", default=None, help="a generated dataset directory to bulk-load first")
    s.add_argument("--load-seconds", type=float, default=None, help="stop the bulk load after this long")
    s.add_argument("--loader", choices=("columns", "documents"), default="columns",
                   help="bulk-load leaf columns, or ingest the documents through Engine.ingest")
    s.add_argument("--shard-bits", type=int, default=20)
    s.add_argument("--workers", type=int, default=16)
    args = ap.parse_args(argv)
    return _serve(args)


if __name__ == "__main__":
    raise SystemExit(main())
