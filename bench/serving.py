"""Serving knobs side by side: single-check latency and CPU per call of several server variants.

Every variant's server (bench/rpcserver.py knobs) is loaded and running at once, and short
single-contact CheckMembership phases take turns round after round, so load from anything
else on the machine falls on every variant alike; the record of a variant and client count
holds the median over rounds of p50, p99, calls/s and the server's and client's CPU
microseconds per call, beside every round's own numbers.

A variant is ``NAME=JSON`` of ServerKnobs fields, e.g. ``lane='{"quick_workers": 2}'``,
``main='{"quick_workers": 0}'``, ``bare='{"chain": "none"}'``, ``aio='{"chain": "aio"}'``,
``observed='{"observe": true}'``. Results: ``bench/results/serving-<timestamp>.jsonl``.

CLI: ``python -m bench.serving --contacts N --events M [--rounds 4] [--seconds 3] [--clients 1,8]
[--client-mode threads] NAME=JSON...``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import datagen
from bench.clients import CLIENT_MODES, Session, measure, single_check, suite_session
from bench.common import ResultWriter
from bench.rpcserver import ServerKnobs


def parse_variant(text: str) -> tuple[str, ServerKnobs]:
    """("lane", ServerKnobs(quick_workers=2)) from 'lane={"quick_workers": 2}'."""
    name, sep, body = text.partition("=")
    if not sep or not name:
        raise ValueError(f"a variant is NAME=JSON, not {text!r}")
    return name, ServerKnobs(**json.loads(body or "{}"))


def run(ds: datagen.Dataset, variants: dict[str, ServerKnobs], *, rounds: int, seconds: float,
        clients: list[int], mode: str = "threads", load_seconds: float | None = None) -> list[dict[str, Any]]:
    """One record per variant and client count: medians over `rounds` and each round's numbers."""
    rounds_of: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with ExitStack() as stack:
        sessions: dict[str, Session] = {
            name: stack.enter_context(suite_session(ds, knobs=knobs, load_seconds=load_seconds))
            for name, knobs in variants.items()
        }
        for _ in range(rounds):
            for name, session in sessions.items():
                for k in clients:
                    rounds_of.setdefault((name, k), []).append(_phase(session, ds.contacts, mode, k, seconds))
    out = []
    for (name, k), recs in rounds_of.items():
        def median(key: str, recs: list[dict[str, Any]] = recs) -> float | None:
            values = [r[key] for r in recs if r.get(key) is not None]
            return round(statistics.median(values), 3) if values else None

        def median_latency(q: str, recs: list[dict[str, Any]] = recs) -> float | None:
            values = [r["latency_ms"][q] for r in recs if q in r["latency_ms"]]
            return round(statistics.median(values), 3) if values else None

        out.append({"variant": name, "server": variants[name].describe(), "client": mode, "threads": k,
                    "contacts": ds.contacts, "events": ds.events, "rounds": len(recs), "seconds": seconds,
                    "p50_ms": median_latency("p50"), "p99_ms": median_latency("p99"),
                    "requests_per_s": median("requests_per_s"),
                    "server_cpu_us_per_call": median("server_cpu_us_per_call"),
                    "client_cpu_us_per_call": median("client_cpu_us_per_call"),
                    "errors": sum(r["errors"] for r in recs), "each": recs})
    return out


def _phase(session: Session, contacts: int, mode: str, clients: int, seconds: float) -> dict[str, Any]:
    stub, names = session.stub, session.names

    def call(rng: random.Random) -> int:
        stub.CheckMembership(single_check(rng, contacts, names), timeout=30)
        return 1

    async def call_aio(aio_stub: Any, rng: random.Random) -> int:
        await aio_stub.CheckMembership(single_check(rng, contacts, names), timeout=30)
        return 1

    return measure(session, mode, clients, seconds, call, call_aio)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=3.0, help="length of one phase")
    ap.add_argument("--clients", default="1,8", help="client counts, comma-separated")
    ap.add_argument("--client-mode", choices=CLIENT_MODES, default="threads")
    ap.add_argument("--load-seconds", type=float, default=600.0)
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("variants", nargs="+", help="NAME=JSON of bench.rpcserver.ServerKnobs fields")
    args = ap.parse_args(argv)
    try:
        variants = dict(parse_variant(v) for v in args.variants)
    except (ValueError, TypeError) as exc:
        ap.error(str(exc))
    cfg = datagen.GenConfig(contacts=args.contacts, events=args.events, seed=args.seed)
    data = Path(args.data) if args.data else datagen.default_data_dir(args.contacts, args.events, args.seed)
    ds = datagen.ensure_dataset(cfg, data, jsonl=False)
    clients = [int(x) for x in args.clients.split(",") if x.strip()]
    writer = ResultWriter("serving", args.out_dir, argv)
    status = 0
    for rec in sorted(run(ds, variants, rounds=args.rounds, seconds=args.seconds, clients=clients,
                          mode=args.client_mode, load_seconds=args.load_seconds),
                      key=lambda r: (r["threads"], r["variant"])):
        writer.write(rec)
        status = status or (1 if rec["errors"] else 0)
        print(f"{rec['variant']:12s} {rec['client']} x{rec['threads']}: p50 {rec['p50_ms']} ms p99 {rec['p99_ms']} ms, "
              f"{rec['requests_per_s']} req/s, cpu us/call server {rec['server_cpu_us_per_call']} "
              f"client {rec['client_cpu_us_per_call']} (medians of {rec['rounds']})", file=sys.stderr)
    print(f"wrote {writer.path}", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
