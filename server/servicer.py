"""The segmentd.v1.Segmentd servicer: request -> convert -> engine -> convert -> reply.

One mixin per area of the API (events, contacts, segments, admin); `Servicer` puts them together on the
generated base, whose methods answer UNIMPLEMENTED for areas not wired in. A new area is a
mixin added to `Servicer`'s bases; `guarded` maps its errors like every other RPC.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from core import intake
from core.engine import Engine, IngestReport, Ticket
from core.errors import FailedPrecondition, InvalidArgument
from server import convert
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from server.segments_api import SegmentsService
from server.status import field_prefix, guarded
from server.watch_api import WatchService
from snapshots.durable import Durability

MAX_BATCH_EVENTS = 10_000
# A stream's reply lists at most this many results (the first ones); its counts are always exact.
MAX_STREAM_RESULTS = 20_000
DEFAULT_RECENT_EVENTS = 20
MAX_RECENT_EVENTS = 10_000


def check_batch_size(count: int, field: str) -> None:
    """Refuses a batch of more than MAX_BATCH_EVENTS events as a whole."""
    if count > MAX_BATCH_EVENTS:
        raise InvalidArgument(
            field, f"a batch holds at most {MAX_BATCH_EVENTS} events, this one has {count}; nothing was stored"
        )


class EventsService:
    """IngestEvents, StreamEvents, ListEventTypes, GetEventHistory, SetEventTypeConfig."""

    engine: Engine

    def IngestEvents(self, request: pb.IngestEventsRequest, context: grpc.ServicerContext) -> pb.IngestEventsResponse:
        with intake.batch_turn():  # the batch's documents are freed inside
            report, ticket, _ = self._ingest(request, "")
        ticket.wait()  # acknowledged only once in the log
        reply = pb.IngestEventsResponse(all_results=request.dry_run)
        convert.add_report(reply, report, all_results=request.dry_run, changes=request.report_changes)
        return reply

    def StreamEvents(
        self, request_iterator: Iterable[pb.StreamEventsRequest], context: grpc.ServicerContext
    ) -> pb.IngestEventsResponse:
        reply = pb.IngestEventsResponse(all_results=True)
        position = 0  # events of earlier batches: results count across the whole stream
        # A batch's log record is synced while the next batch is mapped; every ticket is
        # waited on before the reply (or an error) goes out.
        pending: list[Ticket] = []
        try:
            for number, message in enumerate(request_iterator):
                batch = message.batch
                with intake.batch_turn():  # the batch's documents are freed inside
                    report, ticket, count = self._ingest(batch, "batch.", number, reply.accepted)
                pending.append(ticket)
                reply.all_results &= batch.dry_run
                convert.add_report(
                    reply, report, index_offset=position, all_results=batch.dry_run, changes=batch.report_changes
                )
                if len(reply.results) > MAX_STREAM_RESULTS:  # memory stays bounded; counts stay exact
                    del reply.results[MAX_STREAM_RESULTS:]
                    reply.all_results = False
                position += count
                while len(pending) > 2:  # long done, as a rule: keeps the list short
                    pending.pop(0).wait()
        finally:
            for ticket in pending:
                ticket.wait()
        reply.all_results &= position > 0
        return reply

    def _ingest(
        self, request: pb.IngestEventsRequest, prefix: str, number: int | None = None, earlier: int = 0
    ) -> tuple[IngestReport, Ticket, int]:
        """(report, journal ticket, events) of one batch: documents, or (bulk) columns."""
        if request.HasField("columns"):
            if request.events or request.jsonl:
                raise InvalidArgument(f"{prefix}columns", "a batch of columns carries no events and no jsonl")
            columns = convert.columns_to_batch(request.columns, f"{prefix}columns")
            count, field = len(columns), f"{prefix}columns.contact_ids"
        else:  # parsed before it is counted: parsing reads no state, and a refusal stores nothing
            if request.events or not request.jsonl:
                prepared = intake.prepare(convert.event_batch(request))
            else:
                prepared = intake.prepare_jsonl(request.jsonl)
            count, field = len(prepared.events), f"{prefix}events"
        if number is None:
            check_batch_size(count, field)
        elif count > MAX_BATCH_EVENTS:
            raise InvalidArgument(
                field,
                f"message {number} of the stream has {count} events, at most {MAX_BATCH_EVENTS} in one batch;"
                f" it was not stored ({earlier} events of earlier messages were)",
            )
        dry_run = request.dry_run
        if request.HasField("columns"):
            report, ticket = intake.ingest_columns(self.engine, columns, dry_run=dry_run, all_results=dry_run)
        else:
            report, ticket = intake.ingest_prepared(self.engine, prepared, dry_run=dry_run, all_results=dry_run)
        return report, ticket, count

    def ListEventTypes(
        self, request: pb.ListEventTypesRequest, context: grpc.ServicerContext
    ) -> pb.ListEventTypesResponse:
        infos = self.engine.event_types(request.key or None)
        return pb.ListEventTypesResponse(event_types=[convert.event_type_to_pb(i) for i in infos])

    def GetEventHistory(
        self, request: pb.GetEventHistoryRequest, context: grpc.ServicerContext
    ) -> pb.GetEventHistoryResponse:
        if not request.event_type_key:
            raise InvalidArgument("event_type_key", "required")
        events, token = self.engine.event_history(
            request.event_type_key, request.page_size, request.page_token or None
        )
        return pb.GetEventHistoryResponse(
            events=[convert.stored_event_to_pb(e) for e in events], next_page_token=token or ""
        )

    def SetEventTypeConfig(
        self, request: pb.SetEventTypeConfigRequest, context: grpc.ServicerContext
    ) -> pb.SetEventTypeConfigResponse:
        config = request.config
        info = self.engine.set_event_type_config(
            request.event_type_key, dict(config.mapping), config.contact_key_name, config.retention_days
        )
        return pb.SetEventTypeConfigResponse(event_type=convert.event_type_to_pb(info))


class ContactsService:
    """UpsertContacts, GetContact, MergeContacts, EraseContact."""

    engine: Engine

    def UpsertContacts(
        self, request: pb.UpsertContactsRequest, context: grpc.ServicerContext
    ) -> pb.UpsertContactsResponse:
        report = self.engine.upsert_contacts(convert.contact_batch(request))
        return convert.upsert_reply(report)

    def GetContact(self, request: pb.GetContactRequest, context: grpc.ServicerContext) -> pb.GetContactResponse:
        limit = request.recent_events or DEFAULT_RECENT_EVENTS
        if limit > MAX_RECENT_EVENTS:
            raise InvalidArgument("recent_events", f"at most {MAX_RECENT_EVENTS}, got {limit}")
        with field_prefix("contact"):
            contact = self.engine.get_contact(convert.ref_of(request.contact, ""))
        events = self.engine.contact_events(contact.contact_id, limit)
        segments = self.engine.segments.contact_segments(contact.contact_id, self.engine.clock())
        return pb.GetContactResponse(
            contact=convert.contact_to_pb(contact),
            recent_events=[convert.stored_event_to_pb(e) for e in events],
            segments=segments,
        )

    def MergeContacts(
        self, request: pb.MergeContactsRequest, context: grpc.ServicerContext
    ) -> pb.MergeContactsResponse:
        with field_prefix("into"):
            into = self.engine.resolve_ref(convert.ref_of(request.into, ""))
        with field_prefix("from"):
            source = self.engine.resolve_ref(convert.ref_of(getattr(request, "from"), ""))
        contact, moved = self.engine.merge_contacts(into, source)
        return pb.MergeContactsResponse(contact=convert.contact_to_pb(contact), events_moved=moved)

    def EraseContact(self, request: pb.EraseContactRequest, context: grpc.ServicerContext) -> pb.EraseContactResponse:
        with field_prefix("contact"):
            contact_id, erased = self.engine.erase_contact(convert.ref_of(request.contact, ""))
        return pb.EraseContactResponse(contact_id=contact_id, events_erased=erased)


class AdminService:
    """Snapshot."""

    durability: Durability | None  # set once the data directory is open

    def Snapshot(self, request: pb.SnapshotRequest, context: grpc.ServicerContext) -> pb.SnapshotResponse:
        if self.durability is None:
            raise FailedPrecondition("this server keeps no data directory; start it with --data-dir")
        path, size, seconds = self.durability.snapshot_now()
        return pb.SnapshotResponse(path=path, bytes=size, seconds=seconds)


@guarded(pb_grpc.SegmentdServicer)
class Servicer(
    EventsService, ContactsService, SegmentsService, WatchService, AdminService, pb_grpc.SegmentdServicer
):
    """segmentd.v1.Segmentd over one Engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.durability = None
