"""Rebuilds bench/RESULTS.md and bench/plots/*.png from bench/results/*.jsonl.

For each kind of result it keeps the latest run per dataset size (and per mode where a
driver has modes), so re-running a driver at one size replaces that size's numbers and
leaves the others. Plots: total suite build latency against events (segmentd and DuckDB),
per-segment latency at the largest size, and ingest throughput by mode.

CLI: ``python -m bench.report [--results DIR] [--out bench/RESULTS.md] [--plots bench/plots]``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from bench.common import RESULTS_DIR, read_results

BENCH_DIR = Path(__file__).resolve().parent


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "**NO**"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x != x:  # NaN
            return "—"
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        return f"{x:.{digits}f}"
    return str(x)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(c) for c in r) + " |")
    return "\n".join(lines)


def _size(r: dict[str, Any]) -> tuple[int, int]:
    return int(r.get("contacts", 0)), int(r.get("events", 0))


def _latest(lines: list[dict[str, Any]], key: Any) -> list[dict[str, Any]]:
    """Lines of the latest run for each key(line) value."""
    best: dict[Any, str] = {}
    for ln in lines:
        k = key(ln)
        if k not in best or ln["run"] > best[k]:
            best[k] = ln["run"]
    return [ln for ln in lines if best.get(key(ln)) == ln["run"]]


def _mib(b: Any) -> Any:
    return None if b is None else round(b / 2**20, 1)


# ------------------------------------------------------------------------- sections


def _segments_section(lines: list[dict[str, Any]], plots: Path, md_dir: Path) -> list[str]:
    seg = [ln for ln in lines if ln["kind"] == "segments"]
    if not seg:
        return []
    seg = _latest(seg, _size)
    summaries = sorted((ln for ln in seg if ln.get("record") == "summary"), key=_size)
    geomean: dict[str, float | None] = {}
    for s in summaries:
        ratios = [r["speedup_vs_duckdb"] for r in seg if r["run"] == s["run"] and r.get("speedup_vs_duckdb")]
        geomean[s["run"]] = round(math.exp(sum(math.log(x) for x in ratios) / len(ratios)), 3) if ratios else None
    out = ["## Segment builds: segmentd vs DuckDB", "",
           "Each suite segment is built at the dataset's fixed `now` by `Engine.evaluate` (in-process) and by "
           "DuckDB (in-process, all cores) over the same data; *first* is the first call (segmentd may compile "
           "kernels), *median* the steady state. *Speedup* is DuckDB median / segmentd median (above 1: segmentd "
           "faster); *Σ* columns add the suite up, so slow segments dominate them, while the geometric mean of the "
           "per-segment speedups weighs every segment alike. Members must agree exactly.", ""]
    out.append(_table(
        ["contacts", "events", "segments", "agree", "segmentd Σ median ms", "DuckDB Σ median ms", "Σ speedup",
         "geomean speedup", "segmentd Σ first ms", "DuckDB Σ first ms", "segmentd load s", "DuckDB load s",
         "DuckDB threads"],
        [[s["contacts"], s["events"], s["segments"], f"{s['agreed']}/{s['segments']}",
          s["segmentd_total_median_ms"], s["duckdb_total_median_ms"], s.get("speedup_total"), geomean[s["run"]],
          s["segmentd_total_first_ms"], s["duckdb_total_first_ms"],
          (s.get("segmentd_load") or {}).get("events_s"), s.get("duckdb_load_s"), s.get("duckdb_threads")]
         for s in summaries]))
    out.append("")
    per = [ln for ln in seg if ln.get("record") == "segment"]
    if per:
        largest = max(_size(ln) for ln in per)
        rows = [ln for ln in per if _size(ln) == largest]
        out += [f"### Per segment at {largest[0]:,} contacts, {largest[1]:,} events", ""]
        out.append(_table(
            ["segment", "families", "members", "agree", "segmentd first ms", "segmentd median ms",
             "DuckDB first ms", "DuckDB median ms", "speedup"],
            [[r["segment"], ", ".join(r.get("families", [])), r.get("members", r.get("duckdb_members")),
              r.get("agree"), r.get("segmentd_first_ms"), r.get("segmentd_median_ms"), r.get("duckdb_first_ms"),
              r.get("duckdb_median_ms"), r.get("speedup_vs_duckdb")] for r in rows]))
        errors = [r for r in rows if "error" in r]
        if errors:
            out += ["", "Not evaluated by segmentd:", ""]
            out += [f"- `{r['segment']}`: {r['error']}" for r in errors]
        out.append("")
        if _plot_per_segment(rows, plots / "segments_largest.png", largest):
            out += [f"![per-segment latency]({_rel(plots / 'segments_largest.png', md_dir)})", ""]
    if _plot_build_vs_events(summaries, plots / "build_latency_vs_events.png"):
        out += [f"![build latency vs events]({_rel(plots / 'build_latency_vs_events.png', md_dir)})", ""]
    return out


def _ingest_section(lines: list[dict[str, Any]], plots: Path, md_dir: Path) -> list[str]:
    ing = [ln for ln in lines if ln["kind"] == "ingest"]
    if not ing:
        return []
    ing = sorted(_latest(ing, lambda r: (_size(r), r.get("mode"))), key=lambda r: (_size(r), r.get("mode", "")))
    out = ["## Ingest over gRPC", "",
           "A fresh server per mode; contacts uploaded first (UpsertContacts jsonl), then `events.jsonl` until "
           "done or the time limit. *cli*: `segmentd ingest FILE`; *jsonl*: concurrent IngestEvents jsonl "
           "batches; *stream*: concurrent StreamEvents calls.", ""]
    out.append(_table(
        ["contacts", "events", "mode", "streams", "batch", "stored", "complete", "seconds", "events/s", "MB/s",
         "batch p50 ms", "batch p99 ms", "contacts/s", "server RSS MiB"],
        [[r["contacts"], r["events"], r.get("mode"), r.get("streams"), r.get("batch_lines"), r.get("stored_events"),
          r.get("complete"), r.get("seconds"), r.get("events_per_s"), r.get("mb_per_s"),
          (r.get("batch_latency_ms") or {}).get("p50"), (r.get("batch_latency_ms") or {}).get("p99"),
          r.get("contacts_per_s"), _mib(r.get("server_rss_bytes"))] for r in ing]))
    out.append("")
    if _plot_ingest(ing, plots / "ingest.png"):
        out += [f"![ingest throughput]({_rel(plots / 'ingest.png', md_dir)})", ""]
    return out


def _membership_section(lines: list[dict[str, Any]]) -> list[str]:
    mem = [ln for ln in lines if ln["kind"] == "membership"]
    if not mem:
        return []
    latest_run = {}
    for ln in mem:
        latest_run[_size(ln)] = max(latest_run.get(_size(ln), ""), ln["run"])
    mem = sorted((ln for ln in mem if ln["run"] == latest_run[_size(ln)]),
                 key=lambda r: (_size(r), r["phase"], str(r.get("client")), r.get("threads") or 0))
    out = ["## Membership queries over gRPC", "",
           "Server loaded in process, suite segments saved with PutSegment, Python gRPC clients on the same two "
           "cores (threaded or asyncio; *aio-open* offers calls at a fixed rate and counts from when each was "
           "due). CPU columns split each call's cost between server and client processes.", ""]
    rows = []
    for r in mem:
        lat = r.get("latency_ms") or {}
        if r["phase"] == "list":
            small = (f"; under {_fmt(r.get('small_segment_members'))} members: {_fmt(r.get('small_ids_per_s'))} ids/s"
                     if r.get("small_ids_per_s") else "")
            rows.append([r["contacts"], r["events"], "ListMembers (packed)", None, None, None, None, None,
                         f"{_fmt(r.get('ids_per_s'))} ids/s{small}", None, None, None])
            continue
        rate = (f"{_fmt(r.get('checks_per_s'))} checks/s" if "checks_per_s" in r
                else f"{_fmt(r.get('requests_per_s'))} req/s" if "requests_per_s" in r else None)
        name = {"single": "CheckMembership 1×1", "single_open": "CheckMembership 1×1 at a fixed rate",
                "batched": f"CheckMembership {r.get('batch_contacts')}×all",
                "count": "CountMembers"}.get(r["phase"], r["phase"])
        rows.append([r["contacts"], r["events"], name, r.get("client"), r.get("threads"), lat.get("p50"),
                     lat.get("p99"), lat.get("p99.9"), rate, r.get("server_cpu_us_per_call"),
                     r.get("client_cpu_us_per_call"), r.get("errors")])
    headers = ["contacts", "events", "call", "client", "threads", "p50 ms", "p99 ms", "p99.9 ms", "rate",
               "server CPU µs/call", "client CPU µs/call", "errors"]
    out.append(_table(headers, rows))
    out.append("")
    return out


def _memory_section(lines: list[dict[str, Any]]) -> list[str]:
    mem = [ln for ln in lines if ln["kind"] == "memory"]
    if not mem:
        return []
    mem = sorted(_latest(mem, _size), key=_size)
    out = ["## Memory", "",
           "RSS of an in-process engine while it loads (slope of RSS over events stored), the store's own byte "
           "count, and RSS growth per contact during the contact upload.", ""]
    out.append(_table(
        ["contacts", "events stored", "B/event (RSS slope)", "B/event (RSS overall)", "B/event (store)",
         "B/contact", "RSS end MiB", "DuckDB B/event"],
        [[r["contacts"], r.get("events_stored"), r.get("bytes_per_event_slope"), r.get("bytes_per_event_overall"),
          r.get("store_bytes_per_event"), r.get("bytes_per_contact"), _mib(r.get("rss_end_bytes")),
          r.get("duckdb_bytes_per_event")] for r in mem]))
    out.append("")
    return out


def _bandwidth_section(lines: list[dict[str, Any]]) -> list[str]:
    bw = [ln for ln in lines if ln["kind"] == "bandwidth"]
    if not bw:
        return []
    r = max(bw, key=lambda x: x["run"])
    out = ["## Memory bandwidth (one core)", ""]
    out.append(_table(["array MiB", "read (sum) GB/s", "copy GB/s", "compiled int64 scan GB/s", "random gather rows/s"],
                      [[r.get("array_mib"), r.get("read_sum_gbs"), r.get("copy_gbs"), r.get("numba_read_gbs"),
                        r.get("gather_rows_per_s")]]))
    out.append("")
    return out


def _windows_section(lines: list[dict[str, Any]]) -> list[str]:
    paths = [ln for ln in lines if ln["kind"] == "windows" and ln.get("record") == "path"]
    if not paths:
        return []
    latest = max(ln["run"] for ln in paths)
    paths = sorted((ln for ln in paths if ln["run"] == latest),
                   key=lambda r: (int(r.get("days") or 0), str(r.get("measure")), str(r.get("path"))))
    first = paths[0]
    out = ["## Period kernel paths", "",
           f"Each way the windowed kernels can read a period, forced in turn on one table ({first.get('type')}, "
           f"{_fmt(first.get('rows'))} rows, at {_fmt(first.get('contacts'))} contacts / "
           f"{_fmt(first.get('events'))} events; medians of {first.get('runs')} alternating runs; `python -m "
           "bench.windows`). *every-run* is the kernel that reads every contact's run. Rows per second counts "
           "the period's rows, each read once; for comparison, the bandwidth probe's random gather rate above is "
           "what one random access per row into a large array costs on this machine.", ""]
    out.append(_table(
        ["days", "period rows", "measure", "path", "median ms", "M rows/s"],
        [[r.get("days"), r.get("period_rows"), r.get("measure"), r.get("path"), r.get("median_ms"),
          round(int(r.get("period_rows") or 0) / max(1e-9, float(r.get("median_ms") or 0)) / 1000, 1)]
         for r in paths]))
    out.append("")
    return out


def _target(rate: Any) -> str:
    """An offered ingest rate as shown: the number, or "flat out" for 0 (no pacing)."""
    return _fmt(rate) if rate else "flat out"


def _mixed_section(lines: list[dict[str, Any]]) -> list[str]:
    mx = [ln for ln in lines if ln["kind"] == "mixed"]
    if not mx:
        return []
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (*_size(r), int(r.get("watch_batch") or 1), r.get("watch_from", "0"), r.get("ingest_rate_target"),
                r.get("batch_lines"), r.get("ingest_threads"))

    mx = sorted(_latest(mx, key), key=key)
    out = ["## Mixed load", "",
           "Live ingest (server-stamped events), single-contact CheckMembership and WatchSegments followers at "
           "once; watch lag is from a change's instant to its arrival at the client. *Watch batch* is the "
           "most changes a WatchSegments message carries (1: one change a message); *from* is where watchers start: "
           "*latest* follows new changes only, *0* first replays every retained change (the saved segments' initial "
           "entries), with live changes queued behind. *Flat out* sends live events as fast as the ingest clients "
           "get replies.", ""]
    out.append(_table(
        ["contacts", "events", "watch batch", "from", "seconds", "ingest batch × threads", "ingest ev/s (target)",
         "ingest batch p99 ms", "queries/s", "query p50 ms", "query p99 ms", "live changes", "watch lag p50 ms",
         "watch lag p99 ms", "errors"],
        [[r["contacts"], r["events"], int(r.get("watch_batch") or 1), r.get("watch_from", "0"), r.get("seconds"),
          f"{r.get('batch_lines')} × {r.get('ingest_threads')}",
          f"{_fmt(r.get('ingest_events_per_s'))} ({_target(r.get('ingest_rate_target'))})",
          (r.get("ingest_batch_latency_ms") or {}).get("p99"), r.get("queries_per_s"),
          (r.get("query_latency_ms") or {}).get("p50"), (r.get("query_latency_ms") or {}).get("p99"),
          "not served" if r.get("watch_unavailable") else r.get("watch_live_changes"),
          (r.get("watch_lag_ms") or {}).get("p50"), (r.get("watch_lag_ms") or {}).get("p99"),
          sum(int(r.get(k) or 0) for k in ("ingest_errors", "query_errors", "watch_errors", "ingest_rejected"))]
         for r in mx]))
    out.append("")
    return out


def _realtime_section(lines: list[dict[str, Any]]) -> list[str]:
    rt = [ln for ln in lines if ln["kind"] == "realtime"]
    if not rt:
        return []
    out = ["## Real-time membership", ""]
    lat = [ln for ln in rt if ln.get("mode") == "latency"]
    if lat:
        lat = sorted(_latest(lat, lambda r: (_size(r), r.get("segments"), r.get("rate_offered"))),
                     key=lambda r: (_size(r), r.get("rate_offered") or 0))
        out += ["Event to change: a `segmentd serve --fsync always` subprocess holding the events, saved windowed "
                "segments and a WatchSegments follower; clients offer events at a fixed rate, each making one "
                "contact enter a segment. Latency runs from the client sending the event to the follower "
                "receiving its change.", ""]
        out.append(_table(
            ["contacts", "events", "segments", "offered ev/s", "achieved ev/s", "batch × senders", "p50 ms", "p99 ms",
             "max ms", "reply p50 ms", "changes matched", "missing", "unexpected", "errors"],
            [[r["contacts"], r["events"], r.get("segments"), r.get("rate_offered"), r.get("rate_achieved"),
              f"{r.get('batch')} × {r.get('senders')}", (r.get("latency_ms") or {}).get("p50"),
              (r.get("latency_ms") or {}).get("p99"), (r.get("latency_ms") or {}).get("max"),
              (r.get("reply_ms") or {}).get("p50"), r.get("changes_matched"), r.get("missing"), r.get("unexpected"),
              r.get("errors")] for r in lat]))
        out.append("")
    ticks = [ln for ln in rt if ln.get("mode") == "ticks" and ln.get("phase") != "build"]
    if ticks:
        ticks = sorted(_latest(ticks, lambda r: (_size(r), r.get("segments"), r.get("phase"))),
                       key=lambda r: (_size(r), r.get("phase") or ""))
        out += ["Time-driven steps, in process: windowed segments moved forward with no new event.", ""]
        rows = []
        for r in ticks:
            ms = r.get("ms")
            p50, p99 = (ms.get("p50"), ms.get("p99")) if isinstance(ms, dict) else (ms, None)
            rows.append([r["contacts"], r["events"], r.get("segments"), r.get("phase"), r.get("steps"), p50, p99,
                         r.get("changes")])
        out.append(_table(["contacts", "events", "segments", "step", "steps", "p50 ms", "p99 ms", "changes"], rows))
        out.append("")
    return out


def _restart_section(lines: list[dict[str, Any]]) -> list[str]:
    rs = [ln for ln in lines if ln["kind"] == "restart" and ln.get("record", "restart") == "restart"]
    if not rs:
        return []
    rs = sorted(_latest(rs, _size), key=lambda r: (_size(r), r.get("attempt", 0)))
    out = ["## Restart", "",
           "A data directory built in process (bulk load, snapshot), then `segmentd serve --data-dir` timed from "
           "spawn until health reports SERVING and a first CheckMembership (by contact id) answers; *by identifier* "
           "is the first answer to a check naming its contact by externalId, which waits for the identifier maps "
           "built after SERVING.", ""]
    rows = []
    for r in rs:
        build = r.get("build") or {}
        rows.append([r["contacts"], r["events"], r.get("attempt"), r.get("serving_s"), r.get("first_answer_s"),
                     r.get("ref_answer_s"), _mib(r.get("server_rss_bytes")), _mib(build.get("snapshot_bytes")),
                     build.get("snapshot_s")])
    out.append(_table(["contacts", "events", "attempt", "SERVING s", "first answer s", "by identifier s", "RSS MiB",
                       "snapshot MiB", "snapshot write s"], rows))
    out.append("")
    return out


# ---------------------------------------------------------------------------- plots


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt
    except ImportError:
        return None


def _plot_build_vs_events(summaries: list[dict[str, Any]], path: Path) -> bool:
    plt = _pyplot()
    pts = [s for s in summaries if s.get("evaluated")]
    if plt is None or not pts:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ev = [s["events"] for s in pts]
    ax.plot(ev, [s["segmentd_total_median_ms"] for s in pts], "o-", color="C0", label="segmentd (median)")
    ax.plot(ev, [s["duckdb_total_median_ms"] for s in pts], "s-", color="C1", label="DuckDB (median)")
    ax.plot(ev, [s["segmentd_total_first_ms"] for s in pts], "o:", color="C0", alpha=0.5,
            label="segmentd (first call)")
    ax.plot(ev, [s["duckdb_total_first_ms"] for s in pts], "s:", color="C1", alpha=0.5, label="DuckDB (first call)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("events")
    ax.set_ylabel(f"suite build time, ms (sum of {pts[-1]['segments']} segments)")
    ax.set_title("Segment build latency vs events")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _plot_per_segment(rows: list[dict[str, Any]], path: Path, size: tuple[int, int]) -> bool:
    plt = _pyplot()
    rows = [r for r in rows if r.get("segmentd_median_ms") is not None]
    if plt is None or not rows:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [r["segment"] for r in rows]
    y = list(range(len(rows)))
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.5))
    ax.barh([i - 0.2 for i in y], [r["segmentd_median_ms"] for r in rows], height=0.4, label="segmentd")
    ax.barh([i + 0.2 for i in y], [r["duckdb_median_ms"] for r in rows], height=0.4, label="DuckDB")
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median build time, ms (log)")
    ax.set_title(f"Per-segment build latency, {size[0]:,} contacts / {size[1]:,} events")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _plot_ingest(rows: list[dict[str, Any]], path: Path) -> bool:
    plt = _pyplot()
    rows = [r for r in rows if r.get("events_per_s")]
    if plt is None or not rows:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = [f"{r.get('mode')}\n{r['events']:,} ev" for r in rows]
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(rows)), 4))
    ax.bar(range(len(rows)), [r["events_per_s"] for r in rows])
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("events / s")
    ax.set_title("Ingest throughput over gRPC")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _rel(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


# --------------------------------------------------------------------------- report


def render(lines: list[dict[str, Any]], plots: Path, md_dir: Path) -> str:
    """The Markdown of RESULTS.md for these result lines (writes plots as a side effect)."""
    out = ["# segmentd benchmark results", "",
           "Generated by `python -m bench.report` from `bench/results/*.jsonl`; do not edit by hand. "
           "Each table keeps the latest run per dataset size.", ""]
    if not lines:
        return "\n".join(out + ["No results yet: run a driver (see bench/README in the module docstrings).", ""])
    latest = max(lines, key=lambda x: x["run"])
    m = latest.get("machine", {})
    loads = [ln["loadavg_1m"] for ln in lines if ln.get("loadavg_1m") is not None]
    busy = (f"One-minute load average while the drivers wrote their results: {min(loads):.1f} to {max(loads):.1f} "
            f"on {m.get('cores')} cores (other work shares the machine when it is above the core count)."
            if loads else "")
    out += ["## Machine", "",
            _table(["cpu", "cores", "memory GiB", "os", "python", "numpy", "numba", "pyroaring", "duckdb", "grpcio",
                    "commit"],
                   [[m.get("cpu"), m.get("cores"), m.get("mem_gib"), m.get("os"), m.get("python"), m.get("numpy"),
                     m.get("numba"), m.get("pyroaring"), m.get("duckdb"), m.get("grpcio"), m.get("commit")]]), ""]
    if busy:
        out += [busy, ""]
    out += _bandwidth_section(lines)
    out += _segments_section(lines, plots, md_dir)
    out += _windows_section(lines)
    out += _ingest_section(lines, plots, md_dir)
    out += _membership_section(lines)
    out += _memory_section(lines)
    out += _mixed_section(lines)
    out += _realtime_section(lines)
    out += _restart_section(lines)
    cmds: dict[str, str] = {}
    for ln in sorted(lines, key=lambda x: x["run"]):
        if ln.get("command"):
            cmds[f"{ln['kind']}:{_size(ln)}"] = ln["command"]
    out += ["## Commands", "", "The commands behind the tables above (latest per kind and size):", "", "```"]
    out += sorted(set(cmds.values()))
    out += ["```", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(RESULTS_DIR))
    ap.add_argument("--out", default=str(BENCH_DIR / "RESULTS.md"))
    ap.add_argument("--plots", default=str(BENCH_DIR / "plots"))
    args = ap.parse_args(argv)
    lines = read_results(sorted(Path(args.results).glob("*.jsonl")))
    out = Path(args.out)
    text = render(lines, Path(args.plots), out.parent)
    out.write_text(text)
    print(f"wrote {out} from {len(lines)} result lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
