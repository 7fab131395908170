"""Benchmark clients of the query drivers: a loaded server with the suite saved, and load loops.

`suite_session` starts the benchmark server (``bench.rpcserver``, with its knobs), bulk-loads
the dataset, opens a channel and saves the suite's segments. Two closed-loop load generators
measure one call shape from several concurrent clients:

- ``threads``: N Python threads sharing one sync channel (what most services do);
- ``aio``: N concurrent calls on one ``grpc.aio`` channel in one event-loop thread, which costs
  the client less CPU per call and so leaves more of a small machine to the server.

Both report latency percentiles, calls/s and `CpuSplit`: CPU microseconds per call spent by
the server process and by this client process, read from /proc, which tells client cost from
server cost even when both share the same cores.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench import datagen
from bench.common import (
    Deadline,
    ServerProcess,
    channel,
    ms_since,
    now_s,
    percentiles,
    put_suite,
    stub_for,
)
from bench.rpcserver import ServerKnobs, running
from bench.suite import build_suite

CLIENT_MODES = ("threads", "aio")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int | None = None) -> float:
    """User plus system CPU seconds a process has used (default: this one), from /proc."""
    with open(f"/proc/{pid or 'self'}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime: fields 14 and 15 of stat(5)


class CpuSplit:
    """CPU used by the server process and by this process between `__init__` and `per_call`."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self._server0 = cpu_seconds(server_pid)
        self._client0 = cpu_seconds()
        self._t0 = now_s()

    def per_call(self, calls: int) -> dict[str, float | None]:
        """Server and client CPU microseconds per call, and the cores each kept busy on average."""
        wall = now_s() - self._t0
        server = cpu_seconds(self.server_pid) - self._server0
        client = cpu_seconds() - self._client0
        per = (lambda s: round(s / calls * 1e6, 1)) if calls else (lambda s: None)
        return {"server_cpu_us_per_call": per(server), "client_cpu_us_per_call": per(client),
                "server_cores": round(server / wall, 3) if wall > 0 else None,
                "client_cores": round(client / wall, 3) if wall > 0 else None}


@dataclass(slots=True)
class Session:
    """A running benchmark server with the dataset loaded and the suite saved."""

    server: ServerProcess
    channel: Any
    stub: Any
    names: list[str]
    contacts: int
    put_seconds: float
    knobs: ServerKnobs
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return self.server.address


@contextmanager
def suite_session(ds: datagen.Dataset, *, knobs: ServerKnobs | None = None, n_segments: int | None = None,
                  load_seconds: float | None = None, shard_bits: int = 20) -> Iterator[Session]:
    """A server holding `ds` with the first `n_segments` suite segments saved (all by default)."""
    knobs = knobs or ServerKnobs()
    entries = build_suite(ds.now_ms)[: n_segments or None]
    with running(knobs, start_ms=ds.now_ms, load=str(ds.root), load_seconds=load_seconds,
                 shard_bits=shard_bits) as srv, channel(srv.address) as ch:
        stub = stub_for(ch)
        t0 = now_s()
        names = put_suite(stub, entries)
        yield Session(srv, ch, stub, names, ds.contacts, now_s() - t0, knobs, dict(srv.info))


def single_check(rng: random.Random, contacts: int, names: Sequence[str]) -> Any:
    """A CheckMembership request for one random contact in one random segment."""
    from server.pb import segmentd_pb2 as pb

    return pb.CheckMembershipRequest(contacts=[pb.ContactRef(contact_id=rng.randint(1, contacts))],
                                     segments=[rng.choice(names)])


def _summary(clients: int, mode: str, elapsed: float, samples: list[float], units: int,
             errors: int) -> dict[str, Any]:
    return {"threads": clients, "client": mode, "seconds": round(elapsed, 3), "requests": len(samples),
            "errors": errors, "requests_per_s": round(len(samples) / elapsed, 1) if elapsed > 0 else None,
            "units": units, "units_per_s": round(units / elapsed, 1) if elapsed > 0 else None,
            "latency_ms": percentiles(samples, (50, 90, 99, 99.9))}


def closed_loop(threads: int, seconds: float, call: Callable[[random.Random], int]) -> dict[str, Any]:
    """`threads` threads each calling `call(rng)` back to back for `seconds`; latency and counts.

    `call` returns the units of work a call did (checks, ids); a call that raises is counted
    as an error and left out of the latency.
    """
    lat: list[list[float]] = [[] for _ in range(threads)]
    units = [0] * threads
    errors = [0] * threads
    deadline = Deadline(seconds)
    t0 = now_s()

    def worker(k: int) -> None:
        rng = random.Random(k)
        while not deadline.passed():
            s = now_s()
            try:
                units[k] += call(rng)
            except Exception:  # noqa: BLE001 - counted and reported
                errors[k] += 1
                continue
            lat[k].append(ms_since(s))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    samples = [x for part in lat for x in part]
    return _summary(threads, "threads", now_s() - t0, samples, sum(units), sum(errors))


def closed_loop_aio(address: str, concurrency: int, seconds: float,
                    call: Callable[[Any, random.Random], Awaitable[int]]) -> dict[str, Any]:
    """`concurrency` calls in flight on one grpc.aio channel for `seconds`; latency and counts.

    `call(stub, rng)` is a coroutine function on an aio stub returning units of work. Runs its
    own event loop (in the calling thread).
    """

    async def run() -> dict[str, Any]:
        import grpc

        lat: list[float] = []
        units = errors = 0
        opts = [("grpc.max_receive_message_length", 64 << 20)]
        async with grpc.aio.insecure_channel(address, options=opts) as ch:
            stub = stub_for(ch)
            deadline = Deadline(seconds)
            t0 = now_s()

            async def worker(k: int) -> None:
                nonlocal units, errors
                rng = random.Random(k)
                while not deadline.passed():
                    s = now_s()
                    try:
                        units += await call(stub, rng)
                    except Exception:  # noqa: BLE001 - counted and reported
                        errors += 1
                        continue
                    lat.append(ms_since(s))

            await asyncio.gather(*(worker(k) for k in range(concurrency)))
            return _summary(concurrency, "aio", now_s() - t0, lat, units, errors)

    return asyncio.run(run())


def open_loop_aio(address: str, rate: float, seconds: float,
                  call: Callable[[Any, random.Random], Awaitable[int]], max_in_flight: int = 256) -> dict[str, Any]:
    """Calls started at a fixed `rate` (calls/s) for `seconds`, however long earlier ones take.

    Latency counts from the instant a call was due, not from when it went out, so a client
    that falls behind shows as latency instead of hiding it (no coordinated omission). Calls
    due while `max_in_flight` are still out are counted as `skipped`.
    """

    async def run() -> dict[str, Any]:
        import grpc

        lat: list[float] = []
        sent_lat: list[float] = []  # from when each call went out: the part the client's lateness is not in
        units = errors = skipped = 0
        interval = 1.0 / rate
        async with grpc.aio.insecure_channel(address) as ch:
            stub = stub_for(ch)
            rng = random.Random(0)
            pending: set[asyncio.Task[None]] = set()

            async def one(due: float) -> None:
                nonlocal units, errors
                sent = now_s()
                try:
                    units += await call(stub, rng)
                except Exception:  # noqa: BLE001 - counted and reported
                    errors += 1
                    return
                lat.append(ms_since(due))
                sent_lat.append(ms_since(sent))

            t0 = now_s()
            k = 0
            while True:
                due = t0 + k * interval
                if due - t0 >= seconds:
                    break
                wait = due - now_s()
                if wait > 0:
                    await asyncio.sleep(wait)
                if len(pending) >= max_in_flight:
                    skipped += 1
                else:
                    task = asyncio.create_task(one(due))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                k += 1
            if pending:
                await asyncio.gather(*pending)
            rec = _summary(0, "aio-open", now_s() - t0, lat, units, errors)
            rec.update({"rate_target": rate, "skipped": skipped,
                        "latency_from_send_ms": percentiles(sent_lat, (50, 90, 99, 99.9))})
            return rec

    return asyncio.run(run())


def measure(session: Session, mode: str, clients: int, seconds: float,
            sync_call: Callable[[random.Random], int],
            aio_call: Callable[[Any, random.Random], Awaitable[int]]) -> dict[str, Any]:
    """One closed-loop phase in `mode` ("threads" or "aio") with the CPU split added."""
    if mode not in CLIENT_MODES:
        raise ValueError(f"client mode must be one of {CLIENT_MODES}, not {mode!r}")
    split = CpuSplit(session.server.pid)
    if mode == "threads":
        rec = closed_loop(clients, seconds, sync_call)
    else:
        rec = closed_loop_aio(session.address, clients, seconds, aio_call)
    rec.update(split.per_call(rec["requests"]))
    return rec
