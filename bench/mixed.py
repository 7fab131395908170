"""Mixed load: live ingest, membership queries and segment watchers at the same time.

The server bulk-loads the dataset, the suite's segments are saved, then for ``--seconds``:

- ingest threads send IngestEvents ``jsonl`` batches of live events (the dataset's events
  again, without timestamps or event ids, so the server stamps them "now" and they can move
  contacts into and out of segments), paced to ``--ingest-rate`` events/s (0: flat out);
- query threads send single-contact CheckMembership calls;
- watchers follow WatchSegments, up to ``--watch-batch`` changes a message, from the latest
  change (``--watch-from 0``: from the oldest retained, replaying the segments' initial
  entries first), and measure, for changes made during the run, the lag from the change's
  instant to its arrival at the client.

Reports latency percentiles and error counts of each part. Results:
``bench/results/mixed-<timestamp>.jsonl``.

CLI: ``python -m bench.mixed --contacts N --events M [--seconds 60] [--ingest-rate 2000]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import datagen
from bench.clients import single_check, suite_session
from bench.common import ResultWriter, ms_since, now_s, percentiles


def live_batches(ds: datagen.Dataset, batch: int, limit: int) -> list[bytes]:
    """Up to `limit` events of the dataset as jsonl blocks, stripped of timestamp and eventId."""
    enc = json.JSONEncoder(separators=(",", ":"))
    out: list[bytes] = []
    lines: list[str] = []
    taken = 0
    for docs in datagen.iter_event_docs(ds, batch):
        for d in docs:
            d = {k: v for k, v in d.items() if k not in ("timestamp", "eventId")}
            lines.append(enc.encode(d))
            taken += 1
            if len(lines) == batch:
                out.append(("\n".join(lines) + "\n").encode())
                lines = []
            if taken >= limit:
                break
        if taken >= limit:
            break
    if lines:
        out.append(("\n".join(lines) + "\n").encode())
    return out


def run(ds: datagen.Dataset, *, seconds: float, ingest_rate: float, ingest_threads: int, batch: int,
        query_clients: int, watchers: int, load_seconds: float | None = None, shard_bits: int = 20,
        watch_batch: int = 500, watch_from: str = "latest") -> dict[str, Any]:
    import grpc

    from server.pb import segmentd_pb2 as pb

    budget = int(ingest_rate * seconds * 1.2) if ingest_rate > 0 else max(200_000, ds.events)
    blocks = live_batches(ds, batch, min(budget, ds.events))
    with suite_session(ds, load_seconds=load_seconds, shard_bits=shard_bits) as session:
        srv, stub, names = session.server, session.stub, session.names
        start_ms = int(srv.info["start_ms"])
        origin = int(srv.info.get("clock_origin_wall_ms") or time.time_ns() // 1_000_000)

        def server_now() -> int:
            return start_ms + (time.time_ns() // 1_000_000 - origin)

        stop = threading.Event()
        run_start_ms = server_now()
        lock = threading.Lock()
        ing: dict[str, Any] = {"events": 0, "errors": 0, "rejected": 0, "lat": []}
        qry: dict[str, Any] = {"errors": 0, "lat": []}
        wat: dict[str, Any] = {"changes": 0, "live": 0, "errors": 0, "lag": [], "alerts": 0, "unavailable": False}
        calls: list[Any] = []

        def ingester(k: int) -> None:
            per_thread = ingest_rate / ingest_threads if ingest_rate > 0 else 0.0
            t0 = now_s()
            sent = 0
            i = k
            while not stop.is_set():
                block = blocks[i % len(blocks)]
                i += ingest_threads
                n = block.count(b"\n")
                if per_thread > 0:
                    ahead = sent / per_thread - (now_s() - t0)
                    if ahead > 0:
                        stop.wait(ahead)
                        if stop.is_set():
                            break
                s = now_s()
                try:
                    rep = stub.IngestEvents(pb.IngestEventsRequest(jsonl=block), timeout=60)
                except grpc.RpcError:
                    with lock:
                        ing["errors"] += 1
                    continue
                ms = ms_since(s)
                sent += n
                with lock:
                    ing["events"] += rep.accepted
                    ing["rejected"] += rep.rejected
                    ing["lat"].append(ms)

        def querier(k: int) -> None:
            rng = random.Random(k)
            while not stop.is_set():
                req = single_check(rng, ds.contacts, names)
                s = now_s()
                try:
                    stub.CheckMembership(req, timeout=30)
                except grpc.RpcError:
                    with lock:
                        qry["errors"] += 1
                    continue
                ms = ms_since(s)
                with lock:
                    qry["lat"].append(ms)

        def watcher(k: int) -> None:
            call = stub.WatchSegments(pb.WatchSegmentsRequest(from_latest=watch_from == "latest",
                                                              max_batch=watch_batch))
            with lock:
                calls.append(call)
            try:
                for ev in call:
                    if ev.HasField("alert"):
                        with lock:
                            wat["alerts"] += 1
                        continue
                    now = server_now()
                    batch = ev.changes or (ev.change,)
                    lags = [float(now - c.at_ms) for c in batch if c.at_ms >= run_start_ms]
                    with lock:
                        wat["changes"] += len(batch)
                        wat["live"] += len(lags)
                        wat["lag"].extend(lags)
            except grpc.RpcError as exc:
                with lock:
                    if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                        wat["unavailable"] = True  # the server does not serve WatchSegments
                    elif exc.code() != grpc.StatusCode.CANCELLED:
                        wat["errors"] += 1

        threads = ([threading.Thread(target=watcher, args=(k,)) for k in range(watchers)]
                   + [threading.Thread(target=ingester, args=(k,)) for k in range(ingest_threads)]
                   + [threading.Thread(target=querier, args=(k,)) for k in range(query_clients)])
        t0 = now_s()
        for t in threads:
            t.start()
        stop.wait(seconds)
        stop.set()
        time.sleep(0.5)  # let watchers see the last changes
        with lock:
            for call in calls:
                call.cancel()
        for t in threads:
            t.join(30)
        elapsed = now_s() - t0
        return {
            "contacts": ds.contacts, "events": (srv.info.get("load") or {}).get("events", ds.events),
            "dataset_events": ds.events, "seed": ds.meta["seed"], "segments": len(names),
            "seconds": round(elapsed, 3), "ingest_rate_target": ingest_rate, "ingest_threads": ingest_threads,
            "batch_lines": batch, "query_clients": query_clients, "watchers": watchers, "watch_batch": watch_batch,
            "watch_from": watch_from,
            "ingest_events": ing["events"], "ingest_events_per_s": round(ing["events"] / elapsed, 1),
            "ingest_errors": ing["errors"], "ingest_rejected": ing["rejected"],
            "ingest_batch_latency_ms": percentiles(ing["lat"], (50, 90, 99, 99.9)),
            "queries": len(qry["lat"]), "queries_per_s": round(len(qry["lat"]) / elapsed, 1),
            "query_errors": qry["errors"], "query_latency_ms": percentiles(qry["lat"], (50, 90, 99, 99.9)),
            "watch_changes": wat["changes"], "watch_live_changes": wat["live"], "watch_errors": wat["errors"],
            "watch_alerts": wat["alerts"], "watch_unavailable": wat["unavailable"],
            "watch_lag_ms": percentiles(wat["lag"], (50, 90, 99, 99.9)),
            "server_rss_bytes": srv.rss_bytes(), "server_load": srv.info.get("load"),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.mixed", description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the mixed phase")
    ap.add_argument("--ingest-rate", type=float, default=2000.0, help="target live events/s (0: flat out)")
    ap.add_argument("--ingest-threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=200, help="events per live batch")
    ap.add_argument("--query-clients", type=int, default=4)
    ap.add_argument("--watchers", type=int, default=2)
    ap.add_argument("--watch-batch", type=int, default=500,
                    help="changes per WatchSegments message, as `segment watch` asks (1: one a message)")
    ap.add_argument("--watch-from", choices=("latest", "0"), default="latest",
                    help="latest: watchers follow only new changes; 0: they first replay every retained change"
                         " (the segments' initial entries too) and live changes queue behind that")
    ap.add_argument("--load-seconds", type=float, default=600.0, help="time limit of the server's bulk load")
    ap.add_argument("--shard-bits", type=int, default=20)
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args(argv)
    cfg = datagen.GenConfig(contacts=args.contacts, events=args.events, seed=args.seed)
    data = Path(args.data) if args.data else datagen.default_data_dir(args.contacts, args.events, args.seed)
    ds = datagen.ensure_dataset(cfg, data, jsonl=False)
    rec = run(ds, seconds=args.seconds, ingest_rate=args.ingest_rate, ingest_threads=args.ingest_threads,
              batch=args.batch, query_clients=args.query_clients, watchers=args.watchers,
              load_seconds=args.load_seconds, shard_bits=args.shard_bits, watch_batch=args.watch_batch,
              watch_from=args.watch_from)
    writer = ResultWriter("mixed", args.out_dir, argv)
    writer.write(rec)
    q, i, w = rec["query_latency_ms"], rec["ingest_batch_latency_ms"], rec["watch_lag_ms"]
    if rec["watch_unavailable"]:
        print("the server does not serve WatchSegments (UNIMPLEMENTED): no watch numbers", file=sys.stderr)
    print(f"ingest {rec['ingest_events_per_s']:,.0f} ev/s (batch p50 {i.get('p50', 0):.1f} "
          f"p99 {i.get('p99', 0):.1f} ms, errors {rec['ingest_errors']}); "
          f"queries {rec['queries_per_s']:,.0f}/s (p50 {q.get('p50', 0):.2f} "
          f"p99 {q.get('p99', 0):.2f} ms, errors {rec['query_errors']}); watch {rec['watch_live_changes']:,} live "
          f"changes, lag p50 {w.get('p50', 0):.0f} p99 {w.get('p99', 0):.0f} ms, errors {rec['watch_errors']}",
          file=sys.stderr)
    print(f"wrote {writer.path}", file=sys.stderr)
    errors = rec["ingest_errors"] + rec["query_errors"] + rec["watch_errors"] + rec["ingest_rejected"]
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
