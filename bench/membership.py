"""Membership queries over gRPC against a loaded server.

The server bulk-loads the dataset in-process, the suite's segments are saved with
PutSegment, then, each phase within its share of the time limit:

- ``single``: CheckMembership of one contact in one segment from concurrent clients, one
  phase per client count (``--clients 1,2,4,8``) and client mode (``--client-mode
  threads,aio``, see bench/clients.py); latency percentiles, requests/s, and the CPU each
  call cost the server and the client; with ``--rate R``, also ``single_open``: calls
  started at R a second whatever the replies do, latency counted from when each was due;
- ``batched``: CheckMembership of many contacts in every segment per call; checks/s;
- ``list``: ListMembers of every segment, largest first, streamed to the end, pass after pass
  until the phase's time is up, ids packed as uint32 bytes (``--unpacked``: as repeated
  contact_ids); ids/s, overall and for segments under 10,000 members;
- ``count``: CountMembers latency.

Clients are Python gRPC clients in one process on the same machine as the server, so
latency includes client overhead; the CPU split says how much. The server's knobs
(``--workers``, ``--quick-workers``, ``--observe``, ``--chain``) are bench/rpcserver.py's.
Results: ``bench/results/membership-<timestamp>.jsonl``.

CLI: ``python -m bench.membership --contacts N --events M [--clients 1,2,4,8] [--client-mode threads,aio]
[--seconds 60] [--unpacked]``.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench import datagen
from bench.clients import (
    CLIENT_MODES,
    CpuSplit,
    Session,
    measure,
    open_loop_aio,
    single_check,
    suite_session,
)
from bench.common import Deadline, ResultWriter, ms_since, now_s, percentiles
from bench.rpcserver import ServerKnobs

SMALL_SEGMENT = 10_000  # members: below this a ListMembers call costs more than its ids


def run(ds: datagen.Dataset, *, clients: int | list[int], seconds: float, batch: int, n_segments: int | None,
        load_seconds: float | None = None, shard_bits: int = 20, packed: bool = True,
        modes: tuple[str, ...] = ("threads",), knobs: ServerKnobs | None = None,
        rates: tuple[float, ...] = ()) -> list[dict[str, Any]]:
    """Every phase against one loaded server; one record per phase (per client count and mode for
    ``single``)."""
    from server.pb import segmentd_pb2 as pb

    counts_of = [clients] if isinstance(clients, int) else list(clients)
    t0 = now_s()
    with suite_session(ds, knobs=knobs, n_segments=n_segments, load_seconds=load_seconds,
                       shard_bits=shard_bits) as session:
        load_s = now_s() - t0 - session.put_seconds
        stub, names, srv = session.stub, session.names, session.server
        loaded = (srv.info.get("load") or {}).get("events", ds.events)
        counts: dict[str, int] = {}
        count_lat: list[float] = []
        for name in names:
            s = now_s()
            counts[name] = int(stub.CountMembers(pb.CountMembersRequest(name=name), timeout=600).count)
            count_lat.append(ms_since(s))
        base = {"contacts": ds.contacts, "events": loaded, "dataset_events": ds.events, "seed": ds.meta["seed"],
                "segments": len(names), "server_load_s": round(load_s, 3), "server_load": srv.info.get("load"),
                "put_segments_s": round(session.put_seconds, 3), "server_rss_bytes": srv.rss_bytes(),
                "server": session.knobs.describe()}
        out: list[dict[str, Any]] = [{**base, "phase": "count", "latency_ms": percentiles(count_lat),
                                      "members": counts}]
        phase_s = max(1.0, seconds / 3)
        single_s = max(1.0, phase_s / (len(counts_of) * len(modes)))
        n = ds.contacts

        def single(rng: random.Random) -> int:
            stub.CheckMembership(single_check(rng, n, names), timeout=30)
            return 1

        async def single_aio(aio_stub: Any, rng: random.Random) -> int:
            await aio_stub.CheckMembership(single_check(rng, n, names), timeout=30)
            return 1

        for mode in modes:
            for k in counts_of:
                out.append({**base, "phase": "single", **measure(session, mode, k, single_s, single, single_aio)})
        for rate in rates:  # open loop: calls at a fixed rate, latency from when each was due
            split = CpuSplit(srv.pid)
            rec = open_loop_aio(session.address, rate, single_s, single_aio)
            out.append({**base, "phase": "single_open", **rec, **split.per_call(rec["requests"])})

        def batched(rng: random.Random) -> int:
            ids = [pb.ContactRef(contact_id=rng.randint(1, n)) for _ in range(batch)]
            rep = stub.CheckMembership(pb.CheckMembershipRequest(contacts=ids, segments=names), timeout=60)
            return len(rep.results)

        rec = measure(session, "threads", max(1, max(counts_of) // 4), phase_s, batched, single_aio)
        rec["checks_per_s"] = rec.pop("units_per_s")
        out.append({**base, "phase": "batched", "batch_contacts": batch, **rec})
        out.append({**base, **_list_phase(session, counts, phase_s, packed)})
    return out


def _list_phase(session: Session, counts: dict[str, int], seconds: float, packed: bool) -> dict[str, Any]:
    """ListMembers of every segment, largest first, pass after pass; ids/s overall and for the
    small segments alone (where the cost of a call, not of its ids, dominates)."""
    from server.pb import segmentd_pb2 as pb

    stub = session.stub
    deadline = Deadline(seconds)
    listed = passes = 0
    small_ids = small_calls = 0
    small_s = 0.0
    lists = []
    order = sorted(counts, key=lambda x: -counts[x])
    t0 = now_s()
    while not deadline.passed():  # every segment once per pass; passes until the time is up
        for name in order:
            if deadline.passed():
                break
            s = now_s()
            got = 0
            for page in stub.ListMembers(pb.ListMembersRequest(name=name, packed=packed), timeout=600):
                got += len(np.frombuffer(page.packed_contact_ids, dtype="<u4")) if packed else len(page.contact_ids)
            ms = ms_since(s)
            if not passes:
                # The server's clock runs: a time-driven segment may have moved since the count
                # phase, so the list must match a count taken just before or just after it.
                after = int(stub.CountMembers(pb.CountMembersRequest(name=name), timeout=600).count)
                lists.append({"segment": name, "ids": got, "ms": round(ms, 3),
                              "agree": got in (counts[name], after)})
            if counts[name] < SMALL_SEGMENT:
                small_ids += got
                small_calls += 1
                small_s += ms / 1000
            listed += got
        passes += 1
    el = now_s() - t0
    return {"phase": "list", "packed": packed, "passes": passes, "ids": listed, "seconds": round(el, 3),
            "ids_per_s": round(listed / el, 1) if el > 0 else None,
            "small_segment_members": SMALL_SEGMENT, "small_calls": small_calls, "small_ids": small_ids,
            "small_ids_per_s": round(small_ids / small_s, 1) if small_s > 0 else None,
            "small_ms_per_call": round(small_s * 1000 / small_calls, 3) if small_calls else None,
            "lists": lists}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.membership", description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--clients", default="8",
                    help="concurrent clients for single checks: a number or a list (1,2,4,8), one phase each")
    ap.add_argument("--client-mode", default="threads",
                    help="how single-check clients run: threads, aio or both (threads,aio); see bench/clients.py")
    ap.add_argument("--rate", default="",
                    help="also single checks at these fixed rates, calls/s (open loop, e.g. 500,1000)")
    ap.add_argument("--batch", type=int, default=1000, help="contacts per batched CheckMembership")
    ap.add_argument("--segments", type=int, default=None, help="use the first K suite segments")
    ap.add_argument("--seconds", type=float, default=60.0, help="time limit of the query phases")
    ap.add_argument("--load-seconds", type=float, default=600.0, help="time limit of the server's bulk load")
    ap.add_argument("--shard-bits", type=int, default=20)
    ap.add_argument("--unpacked", action="store_true",
                    help="list members as repeated contact_ids instead of packed uint32 bytes")
    ap.add_argument("--workers", type=int, default=16, help="server: main pool threads")
    ap.add_argument("--quick-workers", type=int, default=None, help="server: quick-read threads (0: none)")
    ap.add_argument("--observe", action="store_true", help="server: metrics and access log on")
    ap.add_argument("--chain", choices=("full", "none", "aio"), default="full",
                    help="server: interceptors as served (full), none, or none on a grpc.aio server (ablations)")
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args(argv)
    modes = tuple(m.strip() for m in args.client_mode.split(",") if m.strip())
    if not modes or any(m not in CLIENT_MODES for m in modes):
        ap.error(f"--client-mode takes {', '.join(CLIENT_MODES)} (comma-separated)")
    clients = [int(x) for x in str(args.clients).split(",") if x.strip()]
    knobs = ServerKnobs(workers=args.workers, quick_workers=args.quick_workers, observe=args.observe,
                        chain=args.chain)
    cfg = datagen.GenConfig(contacts=args.contacts, events=args.events, seed=args.seed)
    data = Path(args.data) if args.data else datagen.default_data_dir(args.contacts, args.events, args.seed)
    ds = datagen.ensure_dataset(cfg, data, jsonl=False)
    writer = ResultWriter("membership", args.out_dir, argv)
    status = 0
    for rec in run(ds, clients=clients, seconds=args.seconds, batch=args.batch, n_segments=args.segments,
                   load_seconds=args.load_seconds, shard_bits=args.shard_bits, packed=not args.unpacked,
                   modes=modes, knobs=knobs, rates=tuple(float(x) for x in args.rate.split(",") if x.strip())):
        writer.write(rec)
        lat = rec.get("latency_ms", {})
        if rec.get("errors"):
            status = 1
        if rec["phase"] == "list":
            if not all(x["agree"] for x in rec["lists"]):
                status = 2
            print(f"list    {rec['ids']:,} ids in {rec['seconds']:.2f} s = {rec['ids_per_s'] or 0:,.0f} ids/s; "
                  f"segments under {rec['small_segment_members']:,}: {rec['small_ids_per_s'] or 0:,.0f} ids/s, "
                  f"{rec['small_ms_per_call'] or 0:.3f} ms a call", file=sys.stderr)
        else:
            extra = f", {rec['checks_per_s']:,.0f} checks/s" if "checks_per_s" in rec else ""
            who = f" {rec['client']:7s} x{rec['threads']}" if "client" in rec else ""
            if rec["phase"] == "single_open":
                sent = rec["latency_from_send_ms"]
                who = (f" at {rec['rate_target']:g}/s (skipped {rec['skipped']}; from send p50 "
                       f"{sent.get('p50', 0):.3f} p99 {sent.get('p99', 0):.3f} ms)")
            cpu = (f", cpu us/call server {rec['server_cpu_us_per_call']} client {rec['client_cpu_us_per_call']}"
                   if rec.get("server_cpu_us_per_call") is not None else "")
            print(f"{rec['phase']:7s}{who} p50 {lat.get('p50', 0):.3f} ms p99 {lat.get('p99', 0):.3f} ms, "
                  f"{rec.get('requests_per_s') or 0:,.0f} req/s{extra}{cpu}, errors {rec.get('errors', 0)}",
                  file=sys.stderr)
    print(f"wrote {writer.path}", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
