"""Membership queries over gRPC against a loaded server.

The server bulk-loads the dataset in-process, the suite's segments are saved with
PutSegment, then, each phase within its share of the time limit:

- ``single``: CheckMembership of one contact in one segment from several concurrent client
  threads; latency percentiles and requests/s;
- ``batched``: CheckMembership of many contacts in every segment per call; checks/s;
- ``list``: ListMembers of every segment, largest first, streamed to the end, pass after pass
  until the phase's time is up, ids packed as uint32 bytes (``--unpacked``: as repeated
  contact_ids); ids/s;
- ``count``: CountMembers latency.

Clients are Python gRPC threads in one process on the same machine as the server, so the
numbers include client overhead. Results: ``bench/results/membership-<timestamp>.jsonl``.

CLI: ``python -m bench.membership --contacts N --events M [--clients 8] [--seconds 60] [--unpacked]``.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench import datagen
from bench.common import (
    Deadline,
    ResultWriter,
    channel,
    ms_since,
    now_s,
    percentiles,
    put_suite,
    running_server,
    stub_for,
    wait_serving,
)
from bench.suite import build_suite


def _hammer(threads: int, deadline: Deadline, call: Callable[[random.Random], int]) -> dict[str, Any]:
    """Runs `call` in `threads` threads until the deadline; latency and counts."""
    lat: list[list[float]] = [[] for _ in range(threads)]
    units = [0] * threads
    errors = [0] * threads
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
    elapsed = now_s() - t0
    samples = [x for part in lat for x in part]
    return {"threads": threads, "seconds": round(elapsed, 3), "requests": len(samples), "errors": sum(errors),
            "requests_per_s": round(len(samples) / elapsed, 1) if elapsed > 0 else None,
            "units": sum(units), "units_per_s": round(sum(units) / elapsed, 1) if elapsed > 0 else None,
            "latency_ms": percentiles(samples, (50, 90, 99, 99.9))}


def run(ds: datagen.Dataset, *, clients: int, seconds: float, batch: int, n_segments: int | None,
        load_seconds: float | None = None, shard_bits: int = 20, packed: bool = True) -> list[dict[str, Any]]:
    from server.pb import segmentd_pb2 as pb

    entries = build_suite(ds.now_ms)[: n_segments or None]
    out: list[dict[str, Any]] = []
    t0 = now_s()
    with running_server(start_ms=ds.now_ms, load=str(ds.root), load_seconds=load_seconds,
                        shard_bits=shard_bits) as srv:
        wait_serving(srv.address)
        load_s = now_s() - t0
        loaded = (srv.info.get("load") or {}).get("events", ds.events)
        sizes = {"contacts": ds.contacts, "events": loaded, "dataset_events": ds.events, "seed": ds.meta["seed"]}
        with channel(srv.address) as ch:
            stub = stub_for(ch)
            t1 = now_s()
            names = put_suite(stub, entries)
            put_s = now_s() - t1
            counts: dict[str, int] = {}
            count_lat: list[float] = []
            for name in names:
                s = now_s()
                counts[name] = int(stub.CountMembers(pb.CountMembersRequest(name=name), timeout=600).count)
                count_lat.append(ms_since(s))
            base = {**sizes, "segments": len(names), "server_load_s": round(load_s, 3),
                    "server_load": srv.info.get("load"), "put_segments_s": round(put_s, 3),
                    "server_rss_bytes": srv.rss_bytes()}
            out.append({**base, "phase": "count", "latency_ms": percentiles(count_lat), "members": counts})
            phase_s = max(1.0, seconds / 3)
            n = ds.contacts

            def single(rng: random.Random) -> int:
                req = pb.CheckMembershipRequest(contacts=[pb.ContactRef(contact_id=rng.randint(1, n))],
                                                segments=[rng.choice(names)])
                stub.CheckMembership(req, timeout=30)
                return 1

            out.append({**base, "phase": "single", **_hammer(clients, Deadline(phase_s), single)})

            def batched(rng: random.Random) -> int:
                ids = [pb.ContactRef(contact_id=rng.randint(1, n)) for _ in range(batch)]
                rep = stub.CheckMembership(pb.CheckMembershipRequest(contacts=ids, segments=names), timeout=60)
                return len(rep.results)

            rec = _hammer(max(1, clients // 4), Deadline(phase_s), batched)
            rec["checks_per_s"] = rec.pop("units_per_s")
            out.append({**base, "phase": "batched", "batch_contacts": batch, **rec})

            deadline = Deadline(phase_s)
            listed = passes = 0
            t2 = now_s()
            lists = []
            order = sorted(names, key=lambda x: -counts[x])
            while not deadline.passed():  # every segment once per pass; passes until the time is up
                for name in order:
                    if deadline.passed():
                        break
                    s = now_s()
                    got = 0
                    for page in stub.ListMembers(pb.ListMembersRequest(name=name, packed=packed), timeout=600):
                        got += len(np.frombuffer(page.packed_contact_ids, dtype="<u4")) if packed else len(page.contact_ids)
                    if not passes:
                        lists.append({"segment": name, "ids": got, "ms": round(ms_since(s), 3),
                                      "agree": got == counts[name]})
                    listed += got
                passes += 1
            el = now_s() - t2
            out.append({**base, "phase": "list", "packed": packed, "passes": passes, "ids": listed,
                        "seconds": round(el, 3), "ids_per_s": round(listed / el, 1) if el > 0 else None,
                        "lists": lists})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.membership", description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--clients", type=int, default=8, help="concurrent client threads for single checks")
    ap.add_argument("--batch", type=int, default=1000, help="contacts per batched CheckMembership")
    ap.add_argument("--segments", type=int, default=None, help="use the first K suite segments")
    ap.add_argument("--seconds", type=float, default=60.0, help="time limit of the query phases")
    ap.add_argument("--load-seconds", type=float, default=600.0, help="time limit of the server's bulk load")
    ap.add_argument("--shard-bits", type=int, default=20)
    ap.add_argument("--unpacked", action="store_true",
                    help="list members as repeated contact_ids instead of packed uint32 bytes")
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args(argv)
    cfg = datagen.GenConfig(contacts=args.contacts, events=args.events, seed=args.seed)
    data = Path(args.data) if args.data else datagen.default_data_dir(args.contacts, args.events, args.seed)
    ds = datagen.ensure_dataset(cfg, data, jsonl=False)
    writer = ResultWriter("membership", args.out_dir, argv)
    status = 0
    for rec in run(ds, clients=args.clients, seconds=args.seconds, batch=args.batch, n_segments=args.segments,
                   load_seconds=args.load_seconds, shard_bits=args.shard_bits, packed=not args.unpacked):
        writer.write(rec)
        lat = rec.get("latency_ms", {})
        if rec.get("errors"):
            status = 1
        if rec["phase"] == "list":
            if not all(x["agree"] for x in rec["lists"]):
                status = 2
            print(f"list    {rec['ids']:,} ids in {rec['seconds']:.2f} s = {rec['ids_per_s'] or 0:,.0f} ids/s",
                  file=sys.stderr)
        else:
            extra = f", {rec['checks_per_s']:,.0f} checks/s" if "checks_per_s" in rec else ""
            print(f"{rec['phase']:7s} p50 {lat.get('p50', 0):.3f} ms p99 {lat.get('p99', 0):.3f} ms, "
                  f"{rec.get('requests_per_s') or 0:,.0f} req/s{extra}, errors {rec.get('errors', 0)}", file=sys.stderr)
    print(f"wrote {writer.path}", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
