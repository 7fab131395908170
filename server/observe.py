"""What segmentd reports about itself: the metric catalogue and the RPC observer.

`ServerMetrics` creates every series (docs/OPERATIONS.md lists them). `RpcObserver` is the
outermost server interceptor: it gives each call a request id, counts it the way
go-grpc-prometheus does (started, handled by code, handling time, messages in and out),
reads the domain counters off the replies (events accepted / rejected by reason, mapping
conflicts, erasures, preview evaluation time), writes one access line per call and an
audit line per erased contact. Collectors read the engine and the durability layer at
scrape time.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from server import handlers, logs
from server.metrics import EVAL_BUCKETS, RPC_BUCKETS, SNAPSHOT_BUCKETS, Registry, process_collector

access_log = logging.getLogger("segmentd.access")
audit_log = logging.getLogger("segmentd.audit")

GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")
HEALTH_SERVICE = "grpc.health.v1.Health"
FSYNC_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# Reasons a rejected event is counted under: the top-level field at fault (bounded set).
REJECT_REASONS = frozenset(
    {"eventTypeKey", "keyValue", "eventId", "timestamp", "system", "params", "jsonl", "events", "identifier"}
)
_INDEX = re.compile(r"\[.*$")
# The fields of an access line: documented log fields (checked once, here).
ACCESS_FIELDS = tuple(logs.fields(method=1, code=1, duration_ms=1, principal=1, details=1))


class ServerMetrics:
    """Every series segmentd exports, in one registry."""

    def __init__(self, registry: Registry | None = None) -> None:
        r = self.registry = registry or Registry()
        process_collector(r)
        self.started = r.counter(
            "grpc_server_started_total", "Total number of RPCs started on the server.", GRPC_LABELS
        )
        self.handled = r.counter(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            GRPC_LABELS + ("grpc_code",),
        )
        self.handling = r.histogram(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
            GRPC_LABELS,
            RPC_BUCKETS,
        )
        self.received = r.counter(
            "grpc_server_msg_received_total", "Total number of RPC stream messages received on the server.", GRPC_LABELS
        )
        self.sent = r.counter(
            "grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server.", GRPC_LABELS
        )
        self.events = r.counter(
            "segmentd_events_total",
            "Events in ingest requests, by result (accepted, duplicate, rejected).",
            ("result",),
        )
        self.rejected = r.counter(
            "segmentd_events_rejected_total", "Rejected events by reason: the top-level field at fault.", ("reason",)
        )
        self.conflicts = r.counter(
            "segmentd_mapping_conflicts_total",
            "Identifiers that already belonged to another contact, by source (event, contact).",
            ("source",),
        )
        self.upserts = r.counter(
            "segmentd_contact_upserts_total", "Contacts in upsert requests, by result (created, updated, rejected).",
            ("result",),
        )
        self.erased = r.counter("segmentd_contacts_erased_total", "Contacts erased.")
        self.refused = r.counter(
            "segmentd_requests_refused_total", "Requests refused by a limit, by the limit's setting name.", ("limit",)
        )
        self.auth_failures = r.counter(
            "segmentd_auth_failures_total", "Calls refused by authentication (missing, invalid, scope).", ("reason",)
        )
        self.evaluation = r.histogram(
            "segmentd_segment_evaluation_seconds",
            "Segment evaluation time, seconds, by kind (preview: PreviewSegment; materialise: saved segments).",
            ("kind",),
            EVAL_BUCKETS,
        )
        self.segment_members = r.gauge("segmentd_segment_members", "Members of each saved segment.", ("segment",))
        self.segment_build = r.gauge(
            "segmentd_segment_build_seconds", "Time the last evaluation of each saved segment took, seconds.",
            ("segment",),
        )
        self.segments = r.gauge("segmentd_segments", "Saved segments.")
        self.alerts_fired = r.counter(
            "segmentd_segment_alerts_total", "Times each alert rule of a segment started firing.", ("segment", "rule")
        )
        self.alerts_firing = r.gauge(
            "segmentd_segment_alerts_firing", "1 while an alert rule of a segment is firing.", ("segment", "rule")
        )
        self.contacts = r.gauge("segmentd_contacts", "Live contacts.")
        self.event_types = r.gauge("segmentd_event_types", "Event types.")
        self.stored_events = r.gauge("segmentd_events_stored", "Events held in memory.")
        self.ready = r.gauge("segmentd_ready", "1 once recovery and warm-up are done and the server is SERVING.")
        self.watchers = r.gauge("segmentd_watch_streams", "Open WatchSegments streams.")
        self.watch_sequence = r.gauge(
            "segmentd_watch_sent_sequence", "Highest change-log sequence number sent to any watcher."
        )
        self.changelog_sequence = r.gauge("segmentd_changelog_sequence", "Latest change-log sequence number.")
        self.changelog_lag = r.gauge(
            "segmentd_changelog_lag", "Changes in the log not yet sent to the slowest open watcher (0: none open)."
        )
        self.wal_bytes = r.counter("segmentd_wal_appended_bytes_total", "Bytes appended to the write-ahead log.")
        self.wal_sequence = r.gauge("segmentd_wal_last_sequence", "Sequence number of the last log record appended.")
        self.wal_written = r.gauge(
            "segmentd_wal_written_sequence",
            "Sequence number of the last log record written (and synced, fsync=always).",
        )
        self.wal_failed = r.gauge("segmentd_wal_failed", "1 once the log has failed and writes are refused.")
        self.wal_fsync = r.histogram(
            "segmentd_wal_fsync_seconds", "Time one fdatasync of the write-ahead log took, seconds.", (), FSYNC_BUCKETS
        )
        self.snapshot_seconds = r.histogram(
            "segmentd_snapshot_seconds", "Time taking a snapshot took, seconds.", (), SNAPSHOT_BUCKETS
        )
        self.snapshot_bytes = r.gauge("segmentd_snapshot_bytes", "Size of the last snapshot, bytes.")
        self.snapshot_time = r.gauge(
            "segmentd_snapshot_last_timestamp_seconds", "When the last snapshot was seen to complete, epoch seconds."
        )
        self.recovery_seconds = r.gauge("segmentd_recovery_seconds", "Time start-up recovery took, seconds.")
        self.recovery_replayed = r.gauge("segmentd_recovery_replayed_records", "Log records replayed at start-up.")
        self._watch_positions: dict[int, int] = {}  # open watcher -> last sequence sent
        self._builds_seen: dict[str, tuple[int, float]] = {}  # segment -> (evaluated_at_ms, build ms)
        self.evaluation.labels("preview")
        self.evaluation.labels("materialise")

    # ------------------------------------------------------------------ hooks

    def timed_fsync(self, fsync: Callable[[int], None] = os.fdatasync) -> Callable[[int], None]:
        """`fsync` that records its duration (hand it to the write-ahead log)."""
        buckets = self.wal_fsync.labels()

        def timed(fd: int) -> None:
            started = time.perf_counter()
            try:
                fsync(fd)
            finally:
                buckets.observe(time.perf_counter() - started)

        return timed

    def refusal_counter(self, counter: str) -> Callable[[str], None]:
        """A callback counting refusals into `refused` (limits) or `auth_failures` (auth)."""
        family = self.refused if counter == "limit" else self.auth_failures
        return lambda reason: family.labels(reason).inc()

    def saw_build(self, segment: str, evaluated_at_ms: int | None, build_ms: float) -> None:
        """Observes a saved segment's evaluation once, however often it is seen."""
        if evaluated_at_ms is None:
            return
        stamp = (int(evaluated_at_ms), float(build_ms))
        if self._builds_seen.get(segment) != stamp:
            self._builds_seen[segment] = stamp
            self.evaluation.labels("materialise").observe(build_ms / 1000.0)

    def watch_opened(self, key: int) -> None:
        self._watch_positions[key] = 0

    def watch_sent(self, key: int, sequence: int) -> None:
        self._watch_positions[key] = max(sequence, self._watch_positions.get(key, 0))

    def watch_closed(self, key: int) -> None:
        self._watch_positions.pop(key, None)

    # ------------------------------------------------------------------ collectors

    def watch_engine(self, engine: Any) -> None:
        """Collects engine gauges (contacts, types, events, segments, change log) at each scrape."""
        def collect() -> None:
            self.ready.labels().set(1 if engine.ready else 0)
            self.contacts.labels().set(len(engine.contacts))
            try:
                types = engine.store.types()
            except Exception:  # the store may be mid-change; keep the previous values
                types = None
            if types is not None:
                self.event_types.labels().set(len(types))
                self.stored_events.labels().set(sum(int(getattr(t, "count", 0)) for t in types))
            registry = engine.segments
            names = registry.names()
            self.segments.labels().set(len(names))
            self.segment_members.clear()
            self.segment_build.clear()
            for name in names:
                try:
                    saved = registry.get(name)
                except Exception:  # deleted since names() was read
                    continue
                self.segment_members.labels(name).set(len(saved.members))
                self.segment_build.labels(name).set(saved.last_build_ms / 1000.0)
                self.saw_build(name, saved.evaluated_at_ms, saved.last_build_ms)
            alerts = getattr(registry, "alerts", None)
            if alerts is not None:
                self.alerts_fired.clear()
                self.alerts_firing.clear()
                for (segment, rule), times in list(alerts.fired.items()):
                    self.alerts_fired.labels(segment, rule).set(times)
                for segment, rule in alerts.firing():
                    self.alerts_firing.labels(segment, rule).set(1)
            latest = _latest_sequence(engine)
            self.changelog_sequence.labels().set(latest)
            positions = list(self._watch_positions.values())
            self.watchers.labels().set(len(positions))
            self.watch_sequence.labels().set(max(positions, default=0))
            self.changelog_lag.labels().set(max(0, latest - min(positions)) if positions else 0)

        self.registry.collector(collect)

    def watch_durability(self, durability: Any) -> None:
        """Collects log and snapshot gauges of a snapshots.durable.Durability at each scrape."""
        self.recovery_seconds.labels().set(durability.recovery.seconds)
        self.recovery_replayed.labels().set(durability.recovery.replayed)
        last: list[Any] = [durability.last_snapshot]

        def collect() -> None:
            wal = durability.wal
            self.wal_bytes.labels().set(wal.appended_bytes)
            self.wal_sequence.labels().set(wal.last_seq)
            self.wal_written.labels().set(wal.written_seq)
            self.wal_failed.labels().set(1 if wal.failed is not None else 0)
            snapshot = durability.last_snapshot
            if snapshot is not None and snapshot is not last[0]:
                last[0] = snapshot
                _, size, seconds = snapshot
                self.snapshot_seconds.labels().observe(seconds)
                self.snapshot_bytes.labels().set(size)
                self.snapshot_time.labels().set(time.time())

        self.registry.collector(collect)


def _latest_sequence(engine: Any) -> int:
    """The latest change-log sequence number watchers may read."""
    return int(engine.segments.changes.published_sequence())


def reject_reason(field: str) -> str:
    """The counted reason of a rejection: the top-level field of its path, or "other"."""
    head = _INDEX.sub("", field.split(".", 1)[0])
    return head if head in REJECT_REASONS else "other"


# ----------------------------------------------------------------------------- interceptor


class RpcObserver(grpc.ServerInterceptor):
    """Outermost interceptor: request ids, RPC metrics, domain counters, access and audit lines.

    The observed handler of a method is built once and kept while the layers below hand back
    the same handler (they do once the server is ready and without per-call refusals); what
    belongs to one call (its request id, its timing) is made on the serving thread.
    """

    def __init__(self, metrics: ServerMetrics | None, *, access: bool = True) -> None:
        self.metrics = metrics
        self.access = access
        # full method name -> (the handler below, its observed form); one entry per method
        self._observed: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(
        self, continuation: Callable[[Any], grpc.RpcMethodHandler | None], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None:
            return None
        full: str = details.method  # type: ignore[attr-defined]
        kept = self._observed.get(full)
        if kept is not None and kept[0] is handler:
            return kept[1]
        service, method = handlers.method_parts(full)
        labels = (handlers.kind_of(handler), service, method)
        observed = handlers.wrapped(handler, _Method(self, labels).wrap)
        self._observed[full] = (handler, observed)  # holding `handler` keeps its identity unique
        return observed


def _metadata_value(metadata: Any, key: str) -> str | None:
    for k, v in metadata or ():
        if k == key or k.lower() == key:
            return v.decode("latin-1") if isinstance(v, bytes) else str(v)
    return None


def _call_info(context: grpc.ServicerContext, method: str) -> logs.CallInfo:
    """The log identity of the call `context` serves: its request id (the client's when usable)."""
    try:
        offered = _metadata_value(context.invocation_metadata(), "x-request-id")
    except (AttributeError, ValueError):  # a context without metadata still gets an id
        offered = None
    return logs.CallInfo(logs.accept_request_id(offered), method)


class _Method:
    """The observation of one method: labels and metric series resolved once, shared by its calls."""

    def __init__(self, observer: RpcObserver, labels: tuple[str, str, str]) -> None:
        self.observer = observer
        self.metrics = metrics = observer.metrics
        self.labels = labels
        self.watching = labels[2] == "WatchSegments" and metrics is not None
        self._started = metrics.started.labels(*labels) if metrics is not None else None
        self._received = metrics.received.labels(*labels) if metrics is not None else None
        self._sent_count = metrics.sent.labels(*labels) if metrics is not None else None
        self._handling = metrics.handling.labels(*labels) if metrics is not None else None
        # status code -> its grpc_server_handled_total child, resolved on the code's first call
        self._handled: dict[grpc.StatusCode, Any] = {}
        self._access_level = logging.DEBUG if labels[1] == HEALTH_SERVICE else logging.INFO
        self._access_method = f"{labels[1]}/{labels[2]}"
        self._erasing = labels[2] == "EraseContact"

    def wrap(self, behaviour: handlers.Behaviour) -> handlers.Behaviour:
        kind = self.labels[0]
        method = self.labels[2]
        streamed_in = kind in (handlers.CLIENT_STREAM, handlers.BIDI_STREAM)
        streamed_out = kind in (handlers.SERVER_STREAM, handlers.BIDI_STREAM)

        def serve(request: Any, context: grpc.ServicerContext) -> Any:
            info = _call_info(context, method)
            with logs.call_scope(info):
                started = self._start(context, info)
                if streamed_in:
                    request = self._counted(request)
                elif self._received is not None:
                    self._received.inc()
                try:
                    reply = behaviour(request, context)
                except BaseException:
                    self._finish(context, info, started, failed=True, reply=None)
                    raise
                self._sent(reply, info)
                self._finish(context, info, started, failed=False, reply=reply)
                return reply

        def serve_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            info = _call_info(context, method)
            with logs.call_scope(info):
                started = self._start(context, info)
                if streamed_in:
                    request = self._counted(request)
                elif self._received is not None:
                    self._received.inc()
                watch_key = id(info)
                if self.watching:
                    self.metrics.watch_opened(watch_key)  # type: ignore[union-attr]
                failed = True
                try:
                    for reply in behaviour(request, context):
                        self._sent(reply, info)
                        yield reply
                    failed = False
                finally:
                    if self.watching:
                        self.metrics.watch_closed(watch_key)  # type: ignore[union-attr]
                    self._finish(context, info, started, failed=failed, reply=None)

        return serve_stream if streamed_out else serve

    def _start(self, context: grpc.ServicerContext, info: logs.CallInfo) -> float:
        try:
            context.set_trailing_metadata((("x-request-id", info.request_id),))
        except Exception:  # a context that cannot carry metadata still gets served
            pass
        if self._started is not None:
            self._started.inc()
        return time.perf_counter()

    def _counted(self, requests: Iterator[Any]) -> Iterator[Any]:
        child = self._received
        for message in requests:
            if child is not None:
                child.inc()
            yield message

    def _sent(self, reply: Any, info: logs.CallInfo) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        self._sent_count.inc()  # type: ignore[union-attr]  # messages, not changes
        if self.watching:
            batch = getattr(reply, "changes", None)  # a batched WatchEvent carries its changes here
            change = batch[-1] if batch else getattr(reply, "change", None)
            if change is not None and change.sequence:
                metrics.watch_sent(id(info), int(change.sequence))

    def _finish(
        self, context: grpc.ServicerContext, info: logs.CallInfo, started: float, *, failed: bool, reply: Any
    ) -> None:
        elapsed = time.perf_counter() - started
        metrics = self.metrics
        access = self.observer.access and access_log.isEnabledFor(self._access_level)
        if metrics is None and not access and not self._erasing:
            return  # nothing below would read the code: skip working it out
        code = _final_code(context, failed)
        ok = code is grpc.StatusCode.OK
        if metrics is not None:
            handled = self._handled.get(code)
            if handled is None:
                handled = self._handled[code] = metrics.handled.labels(*self.labels, code.name)
            handled.inc()
            self._handling.observe(elapsed)  # type: ignore[union-attr]
            if reply is not None and ok:
                _count_reply(metrics, self.labels[2], reply)
        if ok and self._erasing and reply is not None:
            audit_log.info(
                "contact erased",
                extra=logs.fields(event="contact_erased", contact_id=int(reply.contact_id),
                                  events_erased=int(reply.events_erased), principal=info.principal or None),
            )
        if access:
            details = None if ok else context.details()  # type: ignore[attr-defined]
            extra = {"method": self._access_method, "code": code.name, "duration_ms": round(elapsed * 1000, 3),
                     "principal": info.principal or None, "details": _text(details)}
            # The record is made directly: Logger.log would walk the stack for a caller that
            # every access line shares (this function).
            access_log.handle(access_log.makeRecord(access_log.name, self._access_level, __file__, 0, "rpc",
                                                    None, None, "_finish", extra))


def _text(details: Any) -> str | None:
    if details is None:
        return None
    return details.decode("utf-8", "replace") if isinstance(details, bytes) else str(details)


def _final_code(context: grpc.ServicerContext, failed: bool) -> grpc.StatusCode:
    """The status the client gets (or would have got, when it went away first)."""
    code = context.code()  # type: ignore[attr-defined]
    if isinstance(code, grpc.StatusCode) and (failed or code != grpc.StatusCode.OK):
        return code
    if not context.is_active():
        remaining = context.time_remaining()
        expired = remaining is not None and remaining <= 0
        return grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK


def _count_reply(metrics: ServerMetrics, method: str, reply: Any) -> None:
    """Domain counters read off a successful reply."""
    if method in ("IngestEvents", "StreamEvents"):
        metrics.events.labels("accepted").inc(reply.accepted)
        metrics.events.labels("duplicate").inc(reply.duplicates)
        metrics.events.labels("rejected").inc(reply.rejected)
        conflicts = 0
        for result in reply.results:
            if result.error:
                metrics.rejected.labels(reject_reason(result.field)).inc()
            conflicts += len(result.conflicts)
        if conflicts:
            metrics.conflicts.labels("event").inc(conflicts)
    elif method == "UpsertContacts":
        metrics.upserts.labels("created").inc(reply.created)
        metrics.upserts.labels("updated").inc(reply.updated)
        metrics.upserts.labels("rejected").inc(reply.rejected)
        conflicts = sum(len(r.conflicts) for r in reply.results)
        if conflicts:
            metrics.conflicts.labels("contact").inc(conflicts)
    elif method == "EraseContact":
        metrics.erased.labels().inc()
    elif method == "PreviewSegment":
        metrics.evaluation.labels("preview").observe(reply.build_ms / 1000.0)
    elif method == "PutSegment":
        info = reply.segment
        metrics.saw_build(info.segment.name, info.evaluated_at_ms, info.last_build_ms)
