"""Restart time with a loaded store: from spawning `segmentd serve --data-dir D` to answers.

Two steps, each in its own process so neither holds the other's memory:

1. build (``python -m bench.restart build``): a durable engine on a fresh data directory
   (`snapshots.durable.open_durable`, fsync none), the dataset's contacts upserted through
   the engine (journalled), its events bulk-loaded as leaf columns, one saved segment, then
   a snapshot (timed, with its file size) and a close without another snapshot.
2. restart: ``segmentd serve --data-dir D --listen 127.0.0.1:PORT`` as a subprocess; timed
   from spawn until the health service reports SERVING, until a first CheckMembership of
   the saved segment answers (by contact id), and until a CheckMembership by identifier
   (``externalId:C-1``, which needs the contact book's identifier maps, built after SERVING)
   answers; the server's RSS at each answer; then SIGTERM and its exit.

Results: ``bench/results/restart-<timestamp>.jsonl``.

CLI: ``python -m bench.restart --contacts N --events M [--seed S] [--data DIR] [--data-dir D]
[--restarts K] [--keep]``; ``python -m bench.restart restart --data-dir D`` times restarts of a
directory built before with ``--keep`` (its build record is kept beside it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import datagen
from bench.common import LOOPBACK, REPO_ROOT, ResultWriter, channel, load_engine, now_s, rss_bytes, stub_for

# The saved segment the first CheckMembership asks about: all-time, so the wall clock of the
# restarted server (not the dataset's `now`) gives it the same members.
SEGMENT = {"name": "restart-probe", "condition": {"event": {"type": "cartUpdated", "period": {"allTime": {}},
                                                            "count": {"gte": 1}}}}
PROBE_EXTERNAL_ID = "C-1"  # bench.datagen gives contact i the externalId C-i


def build(ds: datagen.Dataset, data_dir: Path, shard_bits: int = 20) -> dict[str, Any]:
    """Fills a fresh data directory with the dataset and a snapshot; returns timings."""
    from snapshots.durable import open_durable

    if data_dir.exists():
        shutil.rmtree(data_dir)
    t0 = now_s()
    engine, durability = open_durable(data_dir, fsync="none", shard_bits=shard_bits)
    try:
        load = load_engine(engine, ds, columns=True)
        engine.put_segment(SEGMENT)
        members = len(engine.segments.current(str(SEGMENT["name"]), engine.clock()))
        rss = rss_bytes()
        store_bytes = int(engine.store.nbytes())
        path, size, seconds = durability.snapshot_now(rewrite=True)
    finally:
        durability.close(snapshot=False)
    files = {p.name: p.stat().st_size for p in sorted(data_dir.iterdir()) if p.is_file()}
    return {"load": load, "events": load["events"], "contacts": load["contacts"], "segment_members": members,
            "build_rss_bytes": rss, "store_bytes": store_bytes, "snapshot_path": path, "snapshot_bytes": size,
            "snapshot_s": round(seconds, 3), "build_s": round(now_s() - t0, 3), "data_dir_files": files,
            "data_dir_bytes": int(sum(files.values()))}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _health(stub: Any, pb: Any) -> int:
    import grpc

    try:
        return int(stub.Check(pb.HealthCheckRequest(service=""), timeout=2).status)
    except grpc.RpcError:
        return -1


def restart(data_dir: Path, timeout: float = 600.0) -> dict[str, Any]:
    """Spawns `segmentd serve` on the data directory and times it to SERVING and a first answer."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from server.pb import segmentd_pb2 as pb

    port = _free_port()
    address = f"{LOOPBACK}:{port}"
    cmd = [sys.executable, "-m", "server", "serve", "--data-dir", str(data_dir), "--listen", address,
           "--fsync", "none", "--log-level", "warning"]
    log_path = data_dir.parent / f"{data_dir.name}-serve.log"
    with open(log_path, "w") as log_fh:
        t0 = now_s()
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log_fh, stderr=subprocess.STDOUT)
        try:
            serving_s = answer_s = None
            with channel(address) as ch:
                health = health_pb2_grpc.HealthStub(ch)
                while serving_s is None:
                    if proc.poll() is not None:
                        raise RuntimeError(f"segmentd serve exited with {proc.returncode}; see {log_path}")
                    if now_s() - t0 > timeout:
                        raise RuntimeError(f"segmentd serve not SERVING after {timeout:.0f} s; see {log_path}")
                    if _health(health, health_pb2) == health_pb2.HealthCheckResponse.SERVING:
                        serving_s = now_s() - t0
                    else:
                        time.sleep(0.02)
                stub = stub_for(ch)
                request = pb.CheckMembershipRequest(contacts=[pb.ContactRef(contact_id=1)],
                                                    segments=[SEGMENT["name"]])
                reply = stub.CheckMembership(request, timeout=timeout)
                answer_s = now_s() - t0
                rss = rss_bytes(proc.pid)
                by_ref = pb.CheckMembershipRequest(contacts=[pb.ContactRef(ref=f"externalId:{PROBE_EXTERNAL_ID}")],
                                                   segments=[SEGMENT["name"]])
                ref_reply = stub.CheckMembership(by_ref, timeout=timeout)
                ref_answer_s = now_s() - t0
                ref_rss = rss_bytes(proc.pid)
                t1 = now_s()
                proc.send_signal(15)
                try:
                    code = proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    code = proc.wait(10)
                stop_s = now_s() - t1
        except grpc.RpcError as exc:
            raise RuntimeError(f"CheckMembership failed: {exc.code().name}: {exc.details()}") from exc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    if list(ref_reply.contact_ids) != [1] or list(ref_reply.results) != list(reply.results):
        raise RuntimeError(f"externalId:{PROBE_EXTERNAL_ID} answered {ref_reply}, contact 1 answered {reply}")
    return {"serving_s": round(serving_s, 3), "first_answer_s": round(answer_s, 3),
            "first_answer_member": bool(reply.results[0]) if reply.results else None,
            "server_rss_bytes": rss, "ref_answer_s": round(ref_answer_s, 3), "ref_answer_rss_bytes": ref_rss,
            "stop_s": round(stop_s, 3), "exit_code": code}


def _build_in_child(ds: datagen.Dataset, data_dir: Path, shard_bits: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.restart", "build", "--data", str(ds.root), "--data-dir", str(data_dir),
           "--shard-bits", str(shard_bits)]
    out = subprocess.run(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _build_record(data_dir: Path) -> Path:
    return data_dir.parent / f"{data_dir.name}-build.json"


def _timed_restarts(data_dir: Path, built: dict[str, Any], restarts: int, writer: ResultWriter) -> None:
    for i in range(max(1, restarts)):
        rec = restart(data_dir)
        writer.write({"record": "restart", "attempt": i, "contacts": built["contacts"], "events": built["events"],
                      "seed": built["seed"], **rec, "build": built})
        print(f"restart {i}: SERVING after {rec['serving_s']:.2f} s, first CheckMembership after "
              f"{rec['first_answer_s']:.2f} s (by externalId after {rec['ref_answer_s']:.2f} s); server RSS "
              f"{rec['server_rss_bytes'] / 2**30:.2f} GiB, {rec['ref_answer_rss_bytes'] / 2**30:.2f} GiB; "
              f"stopped in {rec['stop_s']:.1f} s (exit {rec['exit_code']})", file=sys.stderr)


def _restart_only(data_dir: Path, args: argparse.Namespace, argv: list[str] | None) -> int:
    record = _build_record(data_dir)
    if not record.exists():
        raise SystemExit(f"{record} is missing: build the directory with --keep first")
    writer = ResultWriter("restart", args.out_dir, argv)
    _timed_restarts(data_dir, json.loads(record.read_text()), args.restarts, writer)
    print(f"wrote {writer.path}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.restart", description=__doc__.splitlines()[0])
    ap.add_argument("step", nargs="?", choices=("all", "build", "restart"), default="all",
                    help="all: build then restart (default); build: only fill the data directory; "
                         "restart: only restart a directory built with --keep")
    ap.add_argument("--contacts", type=int, default=None)
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=None, help="dataset directory (generated there when missing)")
    ap.add_argument("--data-dir", default=None, help="segmentd data directory to build (default: a temp dir)")
    ap.add_argument("--restarts", type=int, default=2, help="timed restarts of the same directory")
    ap.add_argument("--shard-bits", type=int, default=20)
    ap.add_argument("--keep", action="store_true", help="keep the data directory afterwards")
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args(argv)
    if args.step == "restart":
        if not args.data_dir:
            ap.error("restart needs the --data-dir of an earlier run with --keep")
        return _restart_only(Path(args.data_dir), args, argv)
    if args.data and args.contacts is None:
        ds = datagen.open_dataset(args.data)
    else:
        if args.contacts is None or args.events is None:
            ap.error("--contacts and --events are required without --data")
        cfg = datagen.GenConfig(contacts=args.contacts, events=args.events, seed=args.seed)
        data = Path(args.data) if args.data else datagen.default_data_dir(args.contacts, args.events, args.seed)
        ds = datagen.ensure_dataset(cfg, data, jsonl=False)
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="segmentd-restart-")) / "data"
    if args.step == "build":
        print(json.dumps(build(ds, data_dir, args.shard_bits)))
        return 0
    writer = ResultWriter("restart", args.out_dir, argv)
    try:
        built = _build_in_child(ds, data_dir, args.shard_bits)
        print(f"built {data_dir}: {built['events']:,} events, {built['contacts']:,} contacts in {built['build_s']:.1f} s;"
              f" snapshot {built['snapshot_bytes'] / 2**20:.0f} MiB written in {built['snapshot_s']:.2f} s",
              file=sys.stderr)
        if args.keep:
            _build_record(data_dir).write_text(json.dumps({**built, "seed": ds.meta["seed"]}))
        _timed_restarts(data_dir, {**built, "seed": ds.meta["seed"]}, args.restarts, writer)
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
            if not args.data_dir:
                shutil.rmtree(data_dir.parent, ignore_errors=True)
    print(f"wrote {writer.path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
