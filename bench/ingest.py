"""Ingest throughput over gRPC: the CLI file path and the fastest client paths.

Each mode gets a fresh benchmark server (so event ids are never duplicates of an earlier
mode), the dataset's contacts uploaded first, then the events of ``events.jsonl``:

- ``cli``: ``python -m server ingest FILE --server ADDR`` (one StreamEvents call);
- ``jsonl``: IngestEvents with ``jsonl`` batches from several concurrent client threads;
- ``stream``: several concurrent StreamEvents calls, each fed ``jsonl`` batches;
- ``bulk`` (only when named in ``--modes``): the events of the flat types (every parameter a scalar) as column batches
  (``IngestEventsRequest.columns``: packed contact ids, timestamps and parameter columns,
  the identifier parameter included as a string column), from several client threads.
  The other types are not sent in this mode; ``complete`` compares with the flat events.

Every mode stops at its time limit; the events the server holds are then counted with
ListEventTypes. Results: ``bench/results/ingest-<timestamp>.jsonl``.

``--fsync always|everysec|none`` runs the real server instead (``segmentd serve --data-dir
TMP --fsync MODE``: write-ahead log on, every acknowledged batch synced in ``always``);
``--fsync off`` (the default) runs the benchmark server, which keeps no log.

CLI: ``python -m bench.ingest --contacts N --events M [--modes cli,jsonl,stream] [--streams 4]
[--fsync always]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

from bench import datagen, eventdocs
from bench.common import (
    Deadline,
    ResultWriter,
    channel,
    ms_since,
    now_s,
    percentiles,
    rss_bytes,
    running_server,
    stored_events,
    stub_for,
    upload_contacts,
    wait_serving,
)

MODES = ("cli", "jsonl", "stream")  # the default run
EXTRA_MODES = ("bulk",)  # on request: --modes bulk
FSYNC_MODES = ("off", "always", "everysec", "none")  # off: the benchmark server, no log
_LISTENING = re.compile(r"listening on [^\s]*:(\d+)")


class _LoggedServer:
    """`segmentd serve` on 127.0.0.1 with a data directory (the write-ahead log on)."""

    def __init__(self, data_dir: Path, fsync: str) -> None:
        cmd = [sys.executable, "-m", "server", "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir),
               "--fsync", fsync, "--log-format", "text", "--max-streams", "0", "--stream-messages-per-s", "0"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        self.port = 0
        for line in self.proc.stderr:
            found = _LISTENING.search(line)
            if found:
                self.port = int(found.group(1))
                break
        if not self.port:
            self.proc.kill()
            raise RuntimeError(f"segmentd serve did not start (exit {self.proc.wait()})")
        # keep draining the log so the server never blocks on a full pipe
        threading.Thread(target=lambda: [None for _ in self.proc.stderr or ()], daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def rss_bytes(self) -> int:
        return rss_bytes(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextlib.contextmanager
def _server(fsync: str, start_ms: int, shard_bits: int) -> Iterator[Any]:
    if fsync == "off":
        with running_server(start_ms=start_ms, shard_bits=shard_bits) as srv:
            yield srv
        return
    with tempfile.TemporaryDirectory(prefix="segmentd-ingest-") as tmp:
        logged = _LoggedServer(Path(tmp), fsync)
        try:
            yield logged
        finally:
            logged.stop()


class _Batches:
    """A thread-safe iterator of jsonl blocks that stops at a deadline."""

    def __init__(self, path: Path, batch: int, deadline: Deadline) -> None:
        self._it = datagen.iter_jsonl_batches(path, batch)
        self._lock = threading.Lock()
        self._deadline = deadline
        self.sent_lines = 0
        self.sent_bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._deadline.passed():
            raise StopIteration
        with self._lock:
            block = next(self._it)
            self.sent_lines += block.count(b"\n")
            self.sent_bytes += len(block)
            return block


def _run_cli(address: str, ds: datagen.Dataset, deadline: Deadline) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "server", "ingest", str(ds.events_jsonl), "--server", address]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=max(1.0, deadline.left()))
        timed_out = False
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        timed_out = True
    return {"exit_code": proc.returncode, "timed_out": timed_out, "stderr_tail": (err or "")[-400:]}


def _run_jsonl(stub: Any, batches: _Batches, streams: int) -> dict[str, Any]:
    from server.pb import segmentd_pb2 as pb

    lat: list[float] = []
    counts = {"accepted": 0, "rejected": 0, "duplicates": 0, "errors": 0}
    lock = threading.Lock()

    def worker() -> None:
        for block in batches:
            t0 = now_s()
            try:
                rep = stub.IngestEvents(pb.IngestEventsRequest(jsonl=block), timeout=600)
            except Exception:  # noqa: BLE001 - counted and reported
                with lock:
                    counts["errors"] += 1
                continue
            ms = ms_since(t0)
            with lock:
                lat.append(ms)
                counts["accepted"] += rep.accepted
                counts["rejected"] += rep.rejected
                counts["duplicates"] += rep.duplicates

    threads = [threading.Thread(target=worker) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {**counts, "batch_latency_ms": percentiles(lat)}


def _run_stream(stub: Any, batches: _Batches, streams: int) -> dict[str, Any]:
    from server.pb import segmentd_pb2 as pb

    counts = {"accepted": 0, "rejected": 0, "duplicates": 0, "errors": 0}
    lock = threading.Lock()

    def worker() -> None:
        reqs = (pb.StreamEventsRequest(batch=pb.IngestEventsRequest(jsonl=b)) for b in batches)
        try:
            rep = stub.StreamEvents(reqs, timeout=3600)
        except Exception:  # noqa: BLE001 - counted and reported
            with lock:
                counts["errors"] += 1
            return
        with lock:
            counts["accepted"] += rep.accepted
            counts["rejected"] += rep.rejected
            counts["duplicates"] += rep.duplicates

    threads = [threading.Thread(target=worker) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _column_requests(ds: datagen.Dataset, batch: int) -> Iterator[Any]:
    """IngestEventsRequests of column batches of the dataset's flat event types."""
    import numpy as np

    from server.convert import batch_to_columns
    from server.pb import segmentd_pb2 as pb

    contacts = ds.contact_columns()
    for path in ds.event_chunks():
        with np.load(path) as z:
            chunk = {k: z[k] for k in z.files}
        for name in sorted(eventdocs.FLAT_TYPES):
            if f"{name}.contact" not in chunk:
                continue
            params = eventdocs.flat_columns(chunk, contacts, name)
            contact, ts = chunk[f"{name}.contact"], chunk[f"{name}.ts_ms"]
            for lo in range(0, contact.shape[0], batch):
                hi = lo + batch
                cols = batch_to_columns(name, contact[lo:hi], ts[lo:hi], {k: v[lo:hi] for k, v in params.items()})
                yield pb.IngestEventsRequest(columns=cols)


def _flat_events(ds: datagen.Dataset) -> int:
    return sum(n for name, n in ds.meta["event_counts"].items() if name in eventdocs.FLAT_TYPES)


def _run_bulk(stub: Any, ds: datagen.Dataset, streams: int, batch: int, deadline: Deadline) -> dict[str, Any]:
    """Column batches from `streams` threads (requests are built before the clock starts)."""
    requests = list(_column_requests(ds, batch))
    lock = threading.Lock()
    lat: list[float] = []
    counts = {"accepted": 0, "rejected": 0, "duplicates": 0, "errors": 0, "sent_events": 0, "requests": len(requests)}
    t0 = now_s()

    def worker() -> None:
        while not deadline.passed():
            with lock:
                if not requests:
                    return
                req = requests.pop(0)
            t1 = now_s()
            try:
                rep = stub.IngestEvents(req, timeout=600)
            except Exception:  # noqa: BLE001 - counted and reported
                with lock:
                    counts["errors"] += 1
                continue
            with lock:
                lat.append(ms_since(t1))
                counts["accepted"] += rep.accepted
                counts["rejected"] += rep.rejected
                counts["sent_events"] += len(req.columns.contact_ids) // 4

    threads = [threading.Thread(target=worker) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {**counts, "send_seconds": round(now_s() - t0, 3), "batch_latency_ms": percentiles(lat)}


def run_mode(mode: str, ds: datagen.Dataset, *, seconds: float, streams: int, batch: int,
             shard_bits: int = 20, fsync: str = "off") -> dict[str, Any]:
    """One mode against a fresh server; returns the result record."""
    with _server(fsync, ds.now_ms, shard_bits) as srv:
        wait_serving(srv.address)
        with channel(srv.address) as ch:
            stub = stub_for(ch)
            contacts = upload_contacts(stub, ds)
            rss0 = srv.rss_bytes()
            deadline = Deadline(seconds)
            cpu0 = _cpu_s(srv.pid)
            t0 = now_s()
            rec: dict[str, Any] = {"mode": mode, "fsync": fsync, "streams": streams if mode != "cli" else 1,
                                   "batch_lines": batch if mode != "cli" else None}
            batches = _Batches(ds.events_jsonl, batch, deadline)
            if mode == "cli":
                rec.update(_run_cli(srv.address, ds, deadline))
            elif mode == "jsonl":
                rec.update(_run_jsonl(stub, batches, streams))
            elif mode == "stream":
                rec.update(_run_stream(stub, batches, streams))
            elif mode == "bulk":
                rec.update(_run_bulk(stub, ds, streams, min(batch * 5, 10_000), deadline))
            else:
                raise ValueError(f"unknown mode {mode!r}")
            elapsed = now_s() - t0
            if mode == "bulk":  # the requests were built before the clock started
                elapsed = rec["send_seconds"]
            cpu = _cpu_s(srv.pid) - cpu0
            stored = stored_events(stub)
            rec.update({
                "server_cpu_s": round(cpu, 3),
                "server_cpu_us_per_event": round(cpu / stored * 1e6, 2) if stored else None,
                "seconds": round(elapsed, 3), "stored_events": stored,
                "events_per_s": round(stored / elapsed, 1) if elapsed > 0 else None,
                "complete": stored == (_flat_events(ds) if mode == "bulk" else ds.events),
                "contact_upload": contacts,
                "contacts_per_s": round(contacts["contacts"] / contacts["seconds"], 1) if contacts["seconds"] else None,
                "server_rss_bytes": srv.rss_bytes(), "server_rss_before_events_bytes": rss0,
            })
            if mode == "bulk":
                pass
            elif mode != "cli":
                rec["sent_events"] = batches.sent_lines
                rec["mb_per_s"] = round(batches.sent_bytes / 1e6 / elapsed, 3) if elapsed > 0 else None
            else:
                size = ds.events_jsonl.stat().st_size
                rec["mb_per_s"] = round(size * stored / max(1, ds.events) / 1e6 / elapsed, 3) if elapsed > 0 else None
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--modes", default=",".join(MODES), help=f"of {','.join(MODES + EXTRA_MODES)}")
    ap.add_argument("--streams", type=int, default=4, help="concurrent client calls (jsonl, stream)")
    ap.add_argument("--batch", type=int, default=2000, help="events per jsonl batch")
    ap.add_argument("--seconds", type=float, default=120.0, help="time limit per mode")
    ap.add_argument("--shard-bits", type=int, default=20)
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--fsync", choices=FSYNC_MODES, default="off",
                    help="off: the benchmark server (no log); else `segmentd serve --data-dir TMP --fsync MODE`")
    args = ap.parse_args(argv)
    cfg = datagen.GenConfig(contacts=args.contacts, events=args.events, seed=args.seed)
    data = Path(args.data) if args.data else datagen.default_data_dir(args.contacts, args.events, args.seed)
    ds = datagen.ensure_dataset(cfg, data, jsonl=True)
    writer = ResultWriter("ingest", args.out_dir, argv)
    status = 0
    for mode in [m for m in args.modes.split(",") if m]:
        rec = run_mode(mode, ds, seconds=args.seconds, streams=args.streams, batch=args.batch,
                       shard_bits=args.shard_bits, fsync=args.fsync)
        writer.write({"contacts": ds.contacts, "events": ds.events, "seed": ds.meta["seed"], **rec})
        errors = rec.get("errors", 0) or rec.get("rejected", 0)
        if errors:
            status = 1
        print(f"{mode:7s} fsync {args.fsync:8s} {rec['stored_events']:>10,} events in {rec['seconds']:7.2f} s = "
              f"{rec['events_per_s'] or 0:>10,.0f} events/s ({rec.get('mb_per_s') or 0:.1f} MB/s)"
              f"{'' if rec['complete'] else ' (time limit reached)'}; errors {errors};"
              f" server CPU {rec['server_cpu_us_per_event'] or 0:.1f} us/event", file=sys.stderr)
    print(f"wrote {writer.path}", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
