"""Real-time membership: event-to-change latency through a real server, and time-driven steps.

- ``latency``: a data directory is built in process (contacts upserted, N events bulk-stored
  with ``EventStore.append_columns``, K saved windowed segments, every tail merged, one
  snapshot), then ``python -m server serve --fsync always`` is started on it (127.0.0.1).
  A WatchSegments watcher listens to every segment while clients offer events at a fixed
  rate through IngestEvents (JSON Lines batches). Sent event i names a (segment, contact)
  pair no earlier event named, and carries the one parameter value only that segment
  counts, so it makes exactly one contact enter exactly one segment. Reported: client-send
  to watcher-receive latency (p50/p99/max), the achieved rate, replies, missing and
  unexpected changes, errors.
- ``ticks``: in process, K windowed segments over N events and a clock the driver moves:
  1 s ticks, 60 s steps, a local midnight crossing; per step p50/p99/max ms and changes.

Results: ``bench/results/realtime-<timestamp>.jsonl``.

CLI: ``python -m bench.realtime latency --contacts N --events M [--segments 20] [--rate 1000]
[--seconds 30]`` and ``python -m bench.realtime ticks --contacts N --events M [--segments 100]
[--ticks 60] [--seconds 600]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    LOOPBACK,
    REPO_ROOT,
    Deadline,
    ResultWriter,
    channel,
    now_s,
    percentiles,
    rss_bytes,
    stub_for,
    wait_serving,
)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
TYPES = ("view", "cart", "buy", "open", "launch")
TZ = "Europe/London"
CONTACT_BATCH = 20_000


# ----------------------------------------------------------------------------- data


def contact_docs(contacts: int) -> Iterator[list[dict[str, Any]]]:
    """Upsert documents of contacts 1..contacts (externalId C-<id>) in batches."""
    for lo in range(1, contacts + 1, CONTACT_BATCH):
        yield [{"externalId": f"C-{i}"} for i in range(lo, min(contacts, lo + CONTACT_BATCH - 1) + 1)]


def store_events(store: Any, contacts: int, events: int, now_ms: int, seed: int, days: int = 30) -> int:
    """Bulk-stores `events` events spread over the TYPES and the last `days` days (arrival in
    time order, as a live stream would give); returns how many."""
    rng = np.random.default_rng(seed)
    per_type = [events // len(TYPES) + (1 if i < events % len(TYPES) else 0) for i in range(len(TYPES))]
    for type_key, n in zip(TYPES, per_type):
        if n == 0:
            continue
        contact = rng.integers(1, contacts + 1, n, dtype=np.int64).astype(np.uint32)
        ts = now_ms - rng.integers(1, days * DAY_MS, n, dtype=np.int64)
        order = np.argsort(ts, kind="stable")
        store.append_columns(type_key, contact[order], ts[order], {"value": (rng.random(n) * 100)[order]})
    return int(sum(per_type))


def latency_segments(k: int) -> list[dict[str, Any]]:
    """Segment i counts events of TYPES[i % 5] carrying rt == i in the last 1 + i // 5 hours."""
    return [{"name": f"rt-{i:03d}", "timezone": TZ, "condition": {"event": {
        "type": TYPES[i % len(TYPES)], "period": {"last": {"hours": 1 + i // len(TYPES)}},
        "where": [{"param": "rt", "op": "eq", "value": i}], "count": {"gte": 1}}}} for i in range(k)]


def windowed_segments(k: int) -> list[dict[str, Any]]:
    """K segments over the TYPES with rolling windows, calendar periods, streak-free measures."""
    out = []
    for i in range(k):
        t = TYPES[i % len(TYPES)]
        kind = i % 10
        if kind < 4:
            unit, amount = [("minutes", 30), ("hours", 6), ("hours", 24), ("days", 7)][kind]
            body: dict[str, Any] = {"type": t, "period": {"last": {unit: amount + i // 10}}, "count": {"gte": 1 + i % 3}}
        elif kind == 4:
            body = {"type": t, "period": {"last": {"days": 3 + i // 10}}, "sum": {"param": "value", "gte": 150}}
        elif kind == 5:
            body = {"type": t, "daysSinceLast": {"gte": 2 + i // 10}}
        elif kind == 6:
            body = {"type": t, "period": {"today": {}}}
        elif kind == 7:
            body = {"type": t, "period": {"before": {"days": 14}}, "last": {}}
        elif kind == 8:
            body = {"type": t, "period": {"last": {"hours": 12}}, "first": {}}
        else:
            body = {"type": t, "period": {"last": {"days": 1 + i // 10}}, "distinct": {"param": "value", "gte": 2}}
        out.append({"name": f"w-{i:03d}", "timezone": TZ, "condition": {"event": body}})
    return out


def build_data_dir(data_dir: Path, contacts: int, events: int, segments: int, seed: int) -> dict[str, Any]:
    """A durable data directory holding the contacts, events and saved segments (one snapshot)."""
    from snapshots.durable import open_durable

    t0 = now_s()
    engine, durability = open_durable(data_dir, fsync="none")
    try:
        for docs in contact_docs(contacts):
            rep = engine.upsert_contacts(docs)
            if rep.rejected:
                raise RuntimeError("a contact was rejected")
        contacts_s = now_s() - t0
        t1 = now_s()
        stored = store_events(engine.store, contacts, events, engine.clock(), seed)
        engine.store.compact_all()
        events_s = now_s() - t1
        t2 = now_s()
        for doc in latency_segments(segments):
            engine.put_segment(doc)
        segments_s = now_s() - t2
        t3 = now_s()
        _, size, _ = durability.snapshot_now(rewrite=True)
        snapshot_s = now_s() - t3
    finally:
        durability.close(snapshot=False)
    return {"contacts": contacts, "events": stored, "segments": segments, "contacts_s": round(contacts_s, 2),
            "events_s": round(events_s, 2), "segments_s": round(segments_s, 2), "snapshot_s": round(snapshot_s, 2),
            "snapshot_bytes": size, "build_s": round(now_s() - t0, 2)}


# ----------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@dataclass(slots=True)
class Served:
    proc: subprocess.Popen[bytes]
    address: str
    log_path: Path

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode or 0)


def serve(data_dir: Path, log_path: Path, timeout: float) -> Served:
    """`python -m server serve` on a free loopback port with --fsync always, once SERVING."""
    address = f"{LOOPBACK}:{free_port()}"
    cmd = [sys.executable, "-m", "server", "serve", "--data-dir", str(data_dir), "--listen", address,
           "--fsync", "always"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    served = Served(proc, address, log_path)
    try:
        wait_serving(address, timeout)
    except BaseException:
        served.stop()
        raise
    return served


# ----------------------------------------------------------------------------- latency


def _watch_child(address: str, from_sequence: int, max_batch: int, out: Any, stop: Any) -> None:
    """The watcher process: streams WatchSegments (up to `max_batch` changes a message) and sends
    (segment, contact, entered, cause, sequence, at_ms, received wall ms) tuples to `out` in small
    chunks until `stop` is set."""
    import grpc

    from server.pb import segmentd_pb2 as pb

    stub = stub_for(channel(address))
    call = stub.WatchSegments(pb.WatchSegmentsRequest(from_sequence=from_sequence, max_batch=max_batch))
    threading.Thread(target=lambda: (stop.wait(), call.cancel()), daemon=True).start()
    out.put("ready")
    lock = threading.Lock()
    chunk: list[tuple[Any, ...]] = []

    def flush() -> None:  # every 20 ms: the parent sees a change at most that much later than now
        nonlocal chunk
        while not stop.wait(0.02):
            with lock:
                ready, chunk = chunk, []
            if ready:
                out.put(ready)

    flusher = threading.Thread(target=flush, daemon=True)
    flusher.start()
    try:
        for event in call:
            if event.HasField("alert"):
                continue
            got = time.time() * 1000  # one receive time for every change of the message
            rows = [(ch.segment, int(ch.contact_id), ch.entered, ch.cause, int(ch.sequence), int(ch.at_ms), got)
                    for ch in (event.changes or (event.change,))]
            with lock:
                chunk.extend(rows)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.CANCELLED:
            out.put(("error", f"{exc.code().name}: {exc.details()}"))
    flusher.join()
    if chunk:
        out.put(chunk)
    out.put("done")


class Watcher:
    """A WatchSegments stream read in a process of its own (so the senders' threads do not slow
    it down); remembers when (wall clock, ms) each (segment, contact) entry arrived."""

    def __init__(self, address: str, from_sequence: int, max_batch: int = 1) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.entered: dict[tuple[str, int], float] = {}  # wall ms received
        self.delivery_ms: dict[tuple[str, int], float] = {}  # received - the change's at_ms
        self.other = 0  # exits and repeated entries
        self.other_samples: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._queue = ctx.Queue()
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_watch_child, args=(address, from_sequence, max_batch, self._queue, self._stop),
                                 daemon=True)
        self._proc.start()
        if self._queue.get(timeout=60) != "ready":
            raise RuntimeError("the watcher process did not start")
        self._thread = threading.Thread(target=self._drain, name="watcher", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item == "done":
                return
            if isinstance(item, tuple):
                self.errors.append(item[1])
                continue
            for segment, contact, entered, cause, seq, at_ms, got in item:
                key = (segment, contact)
                if entered and key not in self.entered:
                    self.entered[key] = got
                    self.delivery_ms[key] = got - at_ms
                else:
                    self.other += 1
                    if len(self.other_samples) < 5:
                        self.other_samples.append({"segment": segment, "contact": contact, "entered": entered,
                                                   "cause": cause, "seq": seq})

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()


def event_line(i: int, segments: int, contacts: int) -> tuple[str, tuple[str, int]]:
    """Sent event i as a JSON line, and the (segment, contact) entry it must cause."""
    k = i % segments
    contact = 1 + (i // segments) % contacts
    doc = {"eventTypeKey": TYPES[k % len(TYPES)], "params": {"externalCustomerId": f"C-{contact}", "rt": k,
                                                          "value": float(i % 100)}}
    return json.dumps(doc, separators=(",", ":")), (f"rt-{k:03d}", contact)


def offer(stub: Any, *, rate: float, batch: int, seconds: float, senders: int, segments: int,
          contacts: int, first: int = 0) -> dict[str, Any]:
    """Sends batches on a fixed schedule (rate / batch a second) from `senders` threads until
    `seconds` pass, events numbered from `first`; returns the send time of every expected
    entry (wall clock, ms) and the replies."""
    import grpc

    from server.pb import segmentd_pb2 as pb

    interval = batch / rate
    limit = segments * contacts  # beyond it (segment, contact) pairs would repeat
    lock = threading.Lock()
    state = {"next": 0}
    sent: dict[tuple[str, int], float] = {}
    reply_ms: list[float] = []
    errors: list[str] = []
    counts = {"accepted": 0, "rejected": 0, "events": 0}
    start = time.perf_counter() + 0.05
    end = start + seconds

    def run() -> None:
        while True:
            with lock:
                j = state["next"]
                state["next"] = j + 1
            at = start + j * interval
            if at >= end or first + (j + 1) * batch > limit:
                return
            pause = at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            lines, keys = zip(*(event_line(first + i, segments, contacts) for i in range(j * batch, (j + 1) * batch)))
            body = "\n".join(lines).encode()
            began = time.perf_counter()
            began_wall = time.time() * 1000  # compared with the watcher process's clock
            try:
                reply = stub.IngestEvents(pb.IngestEventsRequest(jsonl=body), timeout=60)
            except grpc.RpcError as exc:
                with lock:
                    errors.append(f"{exc.code().name}: {exc.details()}")
                continue
            done = time.perf_counter()
            with lock:
                for key in keys:
                    sent[key] = began_wall
                reply_ms.append((done - began) * 1000)
                counts["accepted"] += reply.accepted
                counts["rejected"] += reply.rejected
                counts["events"] += len(keys)

    threads = [threading.Thread(target=run, name=f"sender-{n}") for n in range(senders)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = max(time.perf_counter(), end) - start  # the offer window, longer when sends fell behind
    return {"sent": sent, "reply_ms": reply_ms, "errors": errors, "elapsed_s": elapsed, **counts}


def run_latency(*, contacts: int, events: int, segments: int, rates: list[float], seconds: float,
                batch: int, senders: int, seed: int, settle_s: float = 30.0, work_dir: str | None = None,
                start_timeout: float = 1800.0, watch_batch: int = 500) -> Iterator[dict[str, Any]]:
    """One record per offered rate (one server for all of them); the watcher asks for up to
    `watch_batch` changes per streamed message (1: one change a message)."""
    tmp = Path(tempfile.mkdtemp(prefix="segmentd-realtime-", dir=work_dir))
    try:
        data_dir = tmp / "data"
        built = build_data_dir(data_dir, contacts, events, segments, seed)
        t0 = now_s()
        served = serve(data_dir, tmp / "server.log", start_timeout)
        start_s = now_s() - t0
        try:
            ch = channel(served.address)
            stub = stub_for(ch)
            offset = 0  # sent events so far: every phase uses fresh (segment, contact) pairs
            watcher = Watcher(served.address, from_sequence=0, max_batch=watch_batch)
            time.sleep(0.5)  # the stream is open before the first event
            all_sent: set[tuple[str, int]] = set()
            other = stray = 0  # exits / repeats, and entries no sent event named, reported so far
            try:
                for rate in rates:
                    got = offer(stub, rate=rate, batch=batch, seconds=seconds, senders=senders, segments=segments,
                                contacts=contacts, first=offset)
                    deadline = time.perf_counter() + settle_s
                    while time.perf_counter() < deadline and not all(k in watcher.entered for k in got["sent"]):
                        time.sleep(0.05)
                    offset += got["events"]
                    all_sent.update(got["sent"])
                    strays = sum(1 for k in list(watcher.entered) if k not in all_sent)
                    unexpected = strays - stray + watcher.other - other  # this phase's
                    stray, other = strays, watcher.other
                    rec = _latency_record(built, start_s, served, rate, seconds, batch, senders, got, watcher,
                                          unexpected)
                    yield {**rec, "watch_batch": watch_batch}
            finally:
                watcher.stop()
        finally:
            served.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _latency_record(built: dict[str, Any], start_s: float, served: Served, rate: float, seconds: float, batch: int,
                    senders: int, got: dict[str, Any], watcher: Watcher, unexpected: int) -> dict[str, Any]:
    sent = got["sent"]
    lat = [watcher.entered[k] - t for k, t in sent.items() if k in watcher.entered]
    missing = sum(1 for k in sent if k not in watcher.entered)
    a = np.array(lat) if lat else np.zeros(0)
    return {
        "mode": "latency", **built, "server_start_s": round(start_s, 2), "server_rss_bytes": rss_bytes(served.proc.pid),
        "rate_offered": rate, "seconds": seconds, "batch": batch, "senders": senders, "fsync": "always",
        "events_sent": got["events"], "accepted": got["accepted"], "rejected": got["rejected"],
        "rate_achieved": round(got["accepted"] / got["elapsed_s"], 1),
        "changes_matched": len(lat), "missing": missing, "unexpected": unexpected,
        "errors": len(got["errors"]) + len(watcher.errors), "error_samples": (got["errors"] + watcher.errors)[:3],
        "unexpected_samples": watcher.other_samples[:5],
        "latency_ms": {**percentiles(lat, (50, 99)), "max": round(float(a.max()), 4) if a.shape[0] else None},
        # of that: from the instant of the write that made the change (its `now`, read as the write began)
        # to the watcher; includes the step, the log sync and the stream
        "delivery_ms": percentiles([watcher.delivery_ms[k] for k in sent if k in watcher.delivery_ms], (50, 99)),
        "reply_ms": percentiles(got["reply_ms"], (50, 99)),
    }


# ----------------------------------------------------------------------------- ticks


def run_ticks(*, contacts: int, events: int, segments: int, ticks: int, minutes: int, seed: int,
              seconds: float) -> Iterator[dict[str, Any]]:
    """Records: the build, then one per kind of step (1 s ticks, 60 s steps, a midnight crossing)."""
    from core.engine import Engine
    from core.segments.timing import next_midnight

    now = 1_790_000_000_000  # a Wednesday, 11:33 in London
    clock = [now]
    engine = Engine(clock=lambda: clock[0])
    t0 = now_s()
    for docs in contact_docs(contacts):
        engine.upsert_contacts(docs, now_ms=now - 31 * DAY_MS)
    stored = store_events(engine.store, contacts, events, now, seed)
    engine.store.compact_all()
    load_s = now_s() - t0
    t1 = now_s()
    for doc in windowed_segments(segments):
        engine.put_segment(doc)
    reg = engine.segments
    sizes = [len(reg.get(n).members) for n in reg.names()]
    base = {"mode": "ticks", "contacts": contacts, "events": stored, "segments": segments}
    yield {**base, "phase": "build", "load_s": round(load_s, 2), "segments_s": round(now_s() - t1, 2),
           "members_median": int(np.median(sizes)) if sizes else 0, "members_max": max(sizes, default=0),
           "time_index_bytes": reg._times.nbytes(), "rss_bytes": rss_bytes()}
    deadline = Deadline(seconds)

    def steps(step_ms: int, count: int) -> tuple[list[float], list[int]]:
        took, changed = [], []
        for _ in range(count):
            if deadline.passed():
                break
            clock[0] += step_ms
            seq = reg.changes.last_sequence
            started = time.perf_counter()
            reg.advance(clock[0])
            took.append((time.perf_counter() - started) * 1000)
            changed.append(reg.changes.last_sequence - seq)
        return took, changed

    for phase, step_ms, count in (("tick_1s", 1000, ticks), ("step_60s", MINUTE_MS, minutes)):
        took, changed = steps(step_ms, count)
        yield {**base, "phase": phase, "steps": len(took), "step_ms": step_ms, "ms": _summary(took),
               "changes_per_step_median": int(np.median(changed)) if changed else 0, "changes": int(sum(changed))}
    midnight = next_midnight(clock[0], TZ)
    clock[0] = midnight - 500
    reg.advance(clock[0])
    clock[0] = midnight + 500
    seq = reg.changes.last_sequence
    started = time.perf_counter()
    reg.advance(clock[0])
    took_ms = (time.perf_counter() - started) * 1000
    yield {**base, "phase": "midnight", "ms": round(took_ms, 2), "changes": reg.changes.last_sequence - seq}


def _summary(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"p50": None, "p99": None, "max": None}
    return {**percentiles(samples, (50, 99)), "max": round(max(samples), 3)}


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.realtime", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    lat = sub.add_parser("latency", help="event-to-change latency through a real server")
    lat.add_argument("--rate", default="1000", help="offered events/s; a list (1000,5000) runs one phase each")
    lat.add_argument("--segments", type=int, default=20)
    lat.add_argument("--batch", type=int, default=50, help="events per IngestEvents call")
    lat.add_argument("--senders", type=int, default=4, help="client threads sending batches")
    lat.add_argument("--work-dir", default=None, help="where the temporary data directory goes")
    lat.add_argument("--watch-batch", type=int, default=500,
                     help="changes per WatchSegments message the watcher asks for (1: one change a message)")
    tk = sub.add_parser("ticks", help="time-driven steps in process")
    tk.add_argument("--segments", type=int, default=100)
    tk.add_argument("--ticks", type=int, default=60, help="1 s ticks")
    tk.add_argument("--minutes", type=int, default=30, help="60 s steps")
    for p in (lat, tk):
        p.add_argument("--contacts", type=int, required=True)
        p.add_argument("--events", type=int, required=True)
        p.add_argument("--seconds", type=float, default=30.0, help="latency: per rate; ticks: all steps")
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--out-dir", default=None)
    args = ap.parse_args(argv)
    writer = ResultWriter("realtime", args.out_dir, argv)
    status = 0
    if args.mode == "latency":
        rates = [float(x) for x in str(args.rate).split(",") if x.strip()]
        records = run_latency(contacts=args.contacts, events=args.events, segments=args.segments, rates=rates,
                              seconds=args.seconds, batch=args.batch, senders=args.senders, seed=args.seed,
                              work_dir=args.work_dir, watch_batch=args.watch_batch)
    else:
        records = run_ticks(contacts=args.contacts, events=args.events, segments=args.segments, ticks=args.ticks,
                            minutes=args.minutes, seed=args.seed, seconds=args.seconds)
    for rec in records:
        writer.write(rec)
        if rec.get("errors") or rec.get("missing"):
            status = 1
        print(json.dumps({k: v for k, v in rec.items() if k != "error_samples"}), file=sys.stderr, flush=True)
    print(f"wrote {writer.path}", file=sys.stderr)
    return status


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
