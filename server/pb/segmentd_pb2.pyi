from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("event_type_key", "key_value", "event_id", "timestamp", "system", "params")
    EVENT_TYPE_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_VALUE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    event_type_key: str
    key_value: str
    event_id: str
    timestamp: _struct_pb2.Value
    system: bool
    params: _struct_pb2.Value
    def __init__(self, event_type_key: _Optional[str] = ..., key_value: _Optional[str] = ..., event_id: _Optional[str] = ..., timestamp: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., system: _Optional[bool] = ..., params: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class IngestEventsRequest(_message.Message):
    __slots__ = ("events", "jsonl", "dry_run", "report_changes", "columns")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    JSONL_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    REPORT_CHANGES_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    jsonl: bytes
    dry_run: bool
    report_changes: bool
    columns: EventColumns
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., jsonl: _Optional[bytes] = ..., dry_run: _Optional[bool] = ..., report_changes: _Optional[bool] = ..., columns: _Optional[_Union[EventColumns, _Mapping]] = ...) -> None: ...

class EventResult(_message.Message):
    __slots__ = ("index", "status", "error", "field", "contact_id", "identifier", "contact_created", "attached", "conflicts")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[EventResult.Status]
        ACCEPTED: _ClassVar[EventResult.Status]
        DUPLICATE: _ClassVar[EventResult.Status]
        REJECTED: _ClassVar[EventResult.Status]
    STATUS_UNSPECIFIED: EventResult.Status
    ACCEPTED: EventResult.Status
    DUPLICATE: EventResult.Status
    REJECTED: EventResult.Status
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    CONTACT_CREATED_FIELD_NUMBER: _ClassVar[int]
    ATTACHED_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    index: int
    status: EventResult.Status
    error: str
    field: str
    contact_id: int
    identifier: str
    contact_created: bool
    attached: _containers.RepeatedScalarFieldContainer[str]
    conflicts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, index: _Optional[int] = ..., status: _Optional[_Union[EventResult.Status, str]] = ..., error: _Optional[str] = ..., field: _Optional[str] = ..., contact_id: _Optional[int] = ..., identifier: _Optional[str] = ..., contact_created: _Optional[bool] = ..., attached: _Optional[_Iterable[str]] = ..., conflicts: _Optional[_Iterable[str]] = ...) -> None: ...

class IngestEventsResponse(_message.Message):
    __slots__ = ("accepted", "duplicates", "rejected", "results", "changes", "all_results")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    ALL_RESULTS_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    rejected: int
    results: _containers.RepeatedCompositeFieldContainer[EventResult]
    changes: _containers.RepeatedCompositeFieldContainer[MembershipChange]
    all_results: bool
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[int] = ..., results: _Optional[_Iterable[_Union[EventResult, _Mapping]]] = ..., changes: _Optional[_Iterable[_Union[MembershipChange, _Mapping]]] = ..., all_results: _Optional[bool] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: IngestEventsRequest
    def __init__(self, batch: _Optional[_Union[IngestEventsRequest, _Mapping]] = ...) -> None: ...

class EventColumns(_message.Message):
    __slots__ = ("event_type_key", "contact_ids", "ts_ms", "params")
    EVENT_TYPE_KEY_FIELD_NUMBER: _ClassVar[int]
    CONTACT_IDS_FIELD_NUMBER: _ClassVar[int]
    TS_MS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    event_type_key: str
    contact_ids: bytes
    ts_ms: bytes
    params: _containers.RepeatedCompositeFieldContainer[ParamColumn]
    def __init__(self, event_type_key: _Optional[str] = ..., contact_ids: _Optional[bytes] = ..., ts_ms: _Optional[bytes] = ..., params: _Optional[_Iterable[_Union[ParamColumn, _Mapping]]] = ...) -> None: ...

class ParamColumn(_message.Message):
    __slots__ = ("name", "numbers", "booleans", "strings")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    BOOLEANS_FIELD_NUMBER: _ClassVar[int]
    STRINGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    numbers: bytes
    booleans: bytes
    strings: StringColumn
    def __init__(self, name: _Optional[str] = ..., numbers: _Optional[bytes] = ..., booleans: _Optional[bytes] = ..., strings: _Optional[_Union[StringColumn, _Mapping]] = ...) -> None: ...

class StringColumn(_message.Message):
    __slots__ = ("vocab", "codes")
    VOCAB_FIELD_NUMBER: _ClassVar[int]
    CODES_FIELD_NUMBER: _ClassVar[int]
    vocab: _containers.RepeatedScalarFieldContainer[str]
    codes: bytes
    def __init__(self, vocab: _Optional[_Iterable[str]] = ..., codes: _Optional[bytes] = ...) -> None: ...

class ParamPath(_message.Message):
    __slots__ = ("path", "kind", "count", "examples")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    path: str
    kind: str
    count: int
    examples: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    def __init__(self, path: _Optional[str] = ..., kind: _Optional[str] = ..., count: _Optional[int] = ..., examples: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ...) -> None: ...

class EventTypeConfig(_message.Message):
    __slots__ = ("mapping", "contact_key_name", "retention_days")
    class MappingEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MAPPING_FIELD_NUMBER: _ClassVar[int]
    CONTACT_KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    RETENTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    mapping: _containers.ScalarMap[str, str]
    contact_key_name: str
    retention_days: int
    def __init__(self, mapping: _Optional[_Mapping[str, str]] = ..., contact_key_name: _Optional[str] = ..., retention_days: _Optional[int] = ...) -> None: ...

class EventType(_message.Message):
    __slots__ = ("key", "count", "paths", "config", "first_ts_ms", "last_ts_ms")
    KEY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    FIRST_TS_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_TS_MS_FIELD_NUMBER: _ClassVar[int]
    key: str
    count: int
    paths: _containers.RepeatedCompositeFieldContainer[ParamPath]
    config: EventTypeConfig
    first_ts_ms: int
    last_ts_ms: int
    def __init__(self, key: _Optional[str] = ..., count: _Optional[int] = ..., paths: _Optional[_Iterable[_Union[ParamPath, _Mapping]]] = ..., config: _Optional[_Union[EventTypeConfig, _Mapping]] = ..., first_ts_ms: _Optional[int] = ..., last_ts_ms: _Optional[int] = ...) -> None: ...

class ListEventTypesRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class ListEventTypesResponse(_message.Message):
    __slots__ = ("event_types",)
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    event_types: _containers.RepeatedCompositeFieldContainer[EventType]
    def __init__(self, event_types: _Optional[_Iterable[_Union[EventType, _Mapping]]] = ...) -> None: ...

class StoredEvent(_message.Message):
    __slots__ = ("event_type_key", "contact_id", "ts_ms", "params", "sequence")
    EVENT_TYPE_KEY_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    TS_MS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    event_type_key: str
    contact_id: int
    ts_ms: int
    params: _struct_pb2.Struct
    sequence: int
    def __init__(self, event_type_key: _Optional[str] = ..., contact_id: _Optional[int] = ..., ts_ms: _Optional[int] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., sequence: _Optional[int] = ...) -> None: ...

class GetEventHistoryRequest(_message.Message):
    __slots__ = ("event_type_key", "page_size", "page_token")
    EVENT_TYPE_KEY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    event_type_key: str
    page_size: int
    page_token: str
    def __init__(self, event_type_key: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetEventHistoryResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[StoredEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[StoredEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SetEventTypeConfigRequest(_message.Message):
    __slots__ = ("event_type_key", "config")
    EVENT_TYPE_KEY_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    event_type_key: str
    config: EventTypeConfig
    def __init__(self, event_type_key: _Optional[str] = ..., config: _Optional[_Union[EventTypeConfig, _Mapping]] = ...) -> None: ...

class SetEventTypeConfigResponse(_message.Message):
    __slots__ = ("event_type",)
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    event_type: EventType
    def __init__(self, event_type: _Optional[_Union[EventType, _Mapping]] = ...) -> None: ...

class ContactInput(_message.Message):
    __slots__ = ("contact_id", "external_id", "email", "phone", "push_tokens", "keys", "fields")
    class KeysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    PUSH_TOKENS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    contact_id: int
    external_id: str
    email: str
    phone: str
    push_tokens: _containers.RepeatedScalarFieldContainer[str]
    keys: _containers.ScalarMap[str, str]
    fields: _struct_pb2.Struct
    def __init__(self, contact_id: _Optional[int] = ..., external_id: _Optional[str] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., push_tokens: _Optional[_Iterable[str]] = ..., keys: _Optional[_Mapping[str, str]] = ..., fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Contact(_message.Message):
    __slots__ = ("contact_id", "external_id", "email", "phone", "push_tokens", "keys", "anonymous_keys", "fields", "created_at_ms", "source")
    class KeysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    PUSH_TOKENS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_KEYS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    contact_id: int
    external_id: str
    email: str
    phone: str
    push_tokens: _containers.RepeatedScalarFieldContainer[str]
    keys: _containers.ScalarMap[str, str]
    anonymous_keys: _containers.RepeatedScalarFieldContainer[str]
    fields: _struct_pb2.Struct
    created_at_ms: int
    source: str
    def __init__(self, contact_id: _Optional[int] = ..., external_id: _Optional[str] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., push_tokens: _Optional[_Iterable[str]] = ..., keys: _Optional[_Mapping[str, str]] = ..., anonymous_keys: _Optional[_Iterable[str]] = ..., fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at_ms: _Optional[int] = ..., source: _Optional[str] = ...) -> None: ...

class UpsertContactsRequest(_message.Message):
    __slots__ = ("contacts", "jsonl")
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    JSONL_FIELD_NUMBER: _ClassVar[int]
    contacts: _containers.RepeatedCompositeFieldContainer[ContactInput]
    jsonl: bytes
    def __init__(self, contacts: _Optional[_Iterable[_Union[ContactInput, _Mapping]]] = ..., jsonl: _Optional[bytes] = ...) -> None: ...

class ContactResult(_message.Message):
    __slots__ = ("index", "contact_id", "created", "error", "field", "conflicts")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    index: int
    contact_id: int
    created: bool
    error: str
    field: str
    conflicts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, index: _Optional[int] = ..., contact_id: _Optional[int] = ..., created: _Optional[bool] = ..., error: _Optional[str] = ..., field: _Optional[str] = ..., conflicts: _Optional[_Iterable[str]] = ...) -> None: ...

class UpsertContactsResponse(_message.Message):
    __slots__ = ("created", "updated", "rejected", "results")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    created: int
    updated: int
    rejected: int
    results: _containers.RepeatedCompositeFieldContainer[ContactResult]
    def __init__(self, created: _Optional[int] = ..., updated: _Optional[int] = ..., rejected: _Optional[int] = ..., results: _Optional[_Iterable[_Union[ContactResult, _Mapping]]] = ...) -> None: ...

class ContactRef(_message.Message):
    __slots__ = ("contact_id", "ref")
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    contact_id: int
    ref: str
    def __init__(self, contact_id: _Optional[int] = ..., ref: _Optional[str] = ...) -> None: ...

class GetContactRequest(_message.Message):
    __slots__ = ("contact", "recent_events")
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    RECENT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    contact: ContactRef
    recent_events: int
    def __init__(self, contact: _Optional[_Union[ContactRef, _Mapping]] = ..., recent_events: _Optional[int] = ...) -> None: ...

class GetContactResponse(_message.Message):
    __slots__ = ("contact", "recent_events", "segments")
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    RECENT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    contact: Contact
    recent_events: _containers.RepeatedCompositeFieldContainer[StoredEvent]
    segments: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, contact: _Optional[_Union[Contact, _Mapping]] = ..., recent_events: _Optional[_Iterable[_Union[StoredEvent, _Mapping]]] = ..., segments: _Optional[_Iterable[str]] = ...) -> None: ...

class MergeContactsRequest(_message.Message):
    __slots__ = ("into",)
    INTO_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    into: ContactRef
    def __init__(self, into: _Optional[_Union[ContactRef, _Mapping]] = ..., **kwargs) -> None: ...

class MergeContactsResponse(_message.Message):
    __slots__ = ("contact", "events_moved")
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_MOVED_FIELD_NUMBER: _ClassVar[int]
    contact: Contact
    events_moved: int
    def __init__(self, contact: _Optional[_Union[Contact, _Mapping]] = ..., events_moved: _Optional[int] = ...) -> None: ...

class EraseContactRequest(_message.Message):
    __slots__ = ("contact",)
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    contact: ContactRef
    def __init__(self, contact: _Optional[_Union[ContactRef, _Mapping]] = ...) -> None: ...

class EraseContactResponse(_message.Message):
    __slots__ = ("contact_id", "events_erased")
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_ERASED_FIELD_NUMBER: _ClassVar[int]
    contact_id: int
    events_erased: int
    def __init__(self, contact_id: _Optional[int] = ..., events_erased: _Optional[int] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("eq", "ne", "gt", "gte", "lt", "lte", "between")
    EQ_FIELD_NUMBER: _ClassVar[int]
    NE_FIELD_NUMBER: _ClassVar[int]
    GT_FIELD_NUMBER: _ClassVar[int]
    GTE_FIELD_NUMBER: _ClassVar[int]
    LT_FIELD_NUMBER: _ClassVar[int]
    LTE_FIELD_NUMBER: _ClassVar[int]
    BETWEEN_FIELD_NUMBER: _ClassVar[int]
    eq: float
    ne: float
    gt: float
    gte: float
    lt: float
    lte: float
    between: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, eq: _Optional[float] = ..., ne: _Optional[float] = ..., gt: _Optional[float] = ..., gte: _Optional[float] = ..., lt: _Optional[float] = ..., lte: _Optional[float] = ..., between: _Optional[_Iterable[float]] = ...) -> None: ...

class ParamComparison(_message.Message):
    __slots__ = ("param", "eq", "ne", "gt", "gte", "lt", "lte", "between")
    PARAM_FIELD_NUMBER: _ClassVar[int]
    EQ_FIELD_NUMBER: _ClassVar[int]
    NE_FIELD_NUMBER: _ClassVar[int]
    GT_FIELD_NUMBER: _ClassVar[int]
    GTE_FIELD_NUMBER: _ClassVar[int]
    LT_FIELD_NUMBER: _ClassVar[int]
    LTE_FIELD_NUMBER: _ClassVar[int]
    BETWEEN_FIELD_NUMBER: _ClassVar[int]
    param: str
    eq: float
    ne: float
    gt: float
    gte: float
    lt: float
    lte: float
    between: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, param: _Optional[str] = ..., eq: _Optional[float] = ..., ne: _Optional[float] = ..., gt: _Optional[float] = ..., gte: _Optional[float] = ..., lt: _Optional[float] = ..., lte: _Optional[float] = ..., between: _Optional[_Iterable[float]] = ...) -> None: ...

class Streak(_message.Message):
    __slots__ = ("unit", "count")
    UNIT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    unit: str
    count: int
    def __init__(self, unit: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Filter(_message.Message):
    __slots__ = ("param", "op", "value", "where")
    PARAM_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    param: str
    op: str
    value: _struct_pb2.Value
    where: _containers.RepeatedCompositeFieldContainer[Filter]
    def __init__(self, param: _Optional[str] = ..., op: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., where: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ...) -> None: ...

class Amount(_message.Message):
    __slots__ = ("minutes", "hours", "days", "weeks", "months")
    MINUTES_FIELD_NUMBER: _ClassVar[int]
    HOURS_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    WEEKS_FIELD_NUMBER: _ClassVar[int]
    MONTHS_FIELD_NUMBER: _ClassVar[int]
    minutes: int
    hours: int
    days: int
    weeks: int
    months: int
    def __init__(self, minutes: _Optional[int] = ..., hours: _Optional[int] = ..., days: _Optional[int] = ..., weeks: _Optional[int] = ..., months: _Optional[int] = ...) -> None: ...

class PreviousUnits(_message.Message):
    __slots__ = ("unit", "count")
    UNIT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    unit: str
    count: int
    def __init__(self, unit: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class Interval(_message.Message):
    __slots__ = ("to",)
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    to: _struct_pb2.Value
    def __init__(self, to: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., **kwargs) -> None: ...

class Period(_message.Message):
    __slots__ = ("last", "today", "yesterday", "this_week", "this_month", "previous", "between", "before", "all_time")
    LAST_FIELD_NUMBER: _ClassVar[int]
    TODAY_FIELD_NUMBER: _ClassVar[int]
    YESTERDAY_FIELD_NUMBER: _ClassVar[int]
    THIS_WEEK_FIELD_NUMBER: _ClassVar[int]
    THIS_MONTH_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    BETWEEN_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    ALL_TIME_FIELD_NUMBER: _ClassVar[int]
    last: Amount
    today: Empty
    yesterday: Empty
    this_week: Empty
    this_month: Empty
    previous: PreviousUnits
    between: Interval
    before: Amount
    all_time: Empty
    def __init__(self, last: _Optional[_Union[Amount, _Mapping]] = ..., today: _Optional[_Union[Empty, _Mapping]] = ..., yesterday: _Optional[_Union[Empty, _Mapping]] = ..., this_week: _Optional[_Union[Empty, _Mapping]] = ..., this_month: _Optional[_Union[Empty, _Mapping]] = ..., previous: _Optional[_Union[PreviousUnits, _Mapping]] = ..., between: _Optional[_Union[Interval, _Mapping]] = ..., before: _Optional[_Union[Amount, _Mapping]] = ..., all_time: _Optional[_Union[Empty, _Mapping]] = ...) -> None: ...

class EventCondition(_message.Message):
    __slots__ = ("type", "period", "where", "count", "sum", "avg", "min", "max", "distinct", "first", "last", "days_since_last", "streak")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    AVG_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_FIELD_NUMBER: _ClassVar[int]
    FIRST_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    DAYS_SINCE_LAST_FIELD_NUMBER: _ClassVar[int]
    STREAK_FIELD_NUMBER: _ClassVar[int]
    type: str
    period: Period
    where: _containers.RepeatedCompositeFieldContainer[Filter]
    count: Comparison
    sum: ParamComparison
    avg: ParamComparison
    min: ParamComparison
    max: ParamComparison
    distinct: ParamComparison
    first: Empty
    last: Empty
    days_since_last: Comparison
    streak: Streak
    def __init__(self, type: _Optional[str] = ..., period: _Optional[_Union[Period, _Mapping]] = ..., where: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ..., count: _Optional[_Union[Comparison, _Mapping]] = ..., sum: _Optional[_Union[ParamComparison, _Mapping]] = ..., avg: _Optional[_Union[ParamComparison, _Mapping]] = ..., min: _Optional[_Union[ParamComparison, _Mapping]] = ..., max: _Optional[_Union[ParamComparison, _Mapping]] = ..., distinct: _Optional[_Union[ParamComparison, _Mapping]] = ..., first: _Optional[_Union[Empty, _Mapping]] = ..., last: _Optional[_Union[Empty, _Mapping]] = ..., days_since_last: _Optional[_Union[Comparison, _Mapping]] = ..., streak: _Optional[_Union[Streak, _Mapping]] = ...) -> None: ...

class AttributeCondition(_message.Message):
    __slots__ = ("field", "op", "value")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    field: str
    op: str
    value: _struct_pb2.Value
    def __init__(self, field: _Optional[str] = ..., op: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class IdentifierCondition(_message.Message):
    __slots__ = ("kind", "present")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    present: bool
    def __init__(self, kind: _Optional[str] = ..., present: _Optional[bool] = ...) -> None: ...

class Condition(_message.Message):
    __slots__ = ("all", "any", "event", "attribute", "identifier", "segment")
    ALL_FIELD_NUMBER: _ClassVar[int]
    ANY_FIELD_NUMBER: _ClassVar[int]
    NOT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    all: _containers.RepeatedCompositeFieldContainer[Condition]
    any: _containers.RepeatedCompositeFieldContainer[Condition]
    event: EventCondition
    attribute: AttributeCondition
    identifier: IdentifierCondition
    segment: str
    def __init__(self, all: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ..., any: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ..., event: _Optional[_Union[EventCondition, _Mapping]] = ..., attribute: _Optional[_Union[AttributeCondition, _Mapping]] = ..., identifier: _Optional[_Union[IdentifierCondition, _Mapping]] = ..., segment: _Optional[str] = ..., **kwargs) -> None: ...

class Segment(_message.Message):
    __slots__ = ("name", "description", "purpose", "tags", "timezone", "condition", "contacts")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    purpose: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    timezone: str
    condition: Condition
    contacts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., purpose: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., timezone: _Optional[str] = ..., condition: _Optional[_Union[Condition, _Mapping]] = ..., contacts: _Optional[_Iterable[int]] = ...) -> None: ...

class SegmentInfo(_message.Message):
    __slots__ = ("segment", "size", "created_at_ms", "updated_at_ms", "evaluated_at_ms", "last_build_ms")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_BUILD_MS_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    size: int
    created_at_ms: int
    updated_at_ms: int
    evaluated_at_ms: int
    last_build_ms: float
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ..., size: _Optional[int] = ..., created_at_ms: _Optional[int] = ..., updated_at_ms: _Optional[int] = ..., evaluated_at_ms: _Optional[int] = ..., last_build_ms: _Optional[float] = ...) -> None: ...

class PutSegmentRequest(_message.Message):
    __slots__ = ("segment", "create_only")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CREATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    create_only: bool
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ..., create_only: _Optional[bool] = ...) -> None: ...

class PutSegmentResponse(_message.Message):
    __slots__ = ("segment", "created")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    segment: SegmentInfo
    created: bool
    def __init__(self, segment: _Optional[_Union[SegmentInfo, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetSegmentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListSegmentsRequest(_message.Message):
    __slots__ = ("tag",)
    TAG_FIELD_NUMBER: _ClassVar[int]
    tag: str
    def __init__(self, tag: _Optional[str] = ...) -> None: ...

class ListSegmentsResponse(_message.Message):
    __slots__ = ("segments",)
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[SegmentInfo]
    def __init__(self, segments: _Optional[_Iterable[_Union[SegmentInfo, _Mapping]]] = ...) -> None: ...

class DeleteSegmentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteSegmentResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PreviewSegmentRequest(_message.Message):
    __slots__ = ("segment", "as_of", "sample_size")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    as_of: _struct_pb2.Value
    sample_size: int
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ..., as_of: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., sample_size: _Optional[int] = ...) -> None: ...

class ConditionCount(_message.Message):
    __slots__ = ("path", "count")
    PATH_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    path: str
    count: int
    def __init__(self, path: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class PreviewSegmentResponse(_message.Message):
    __slots__ = ("count", "sample", "conditions", "build_ms")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    BUILD_MS_FIELD_NUMBER: _ClassVar[int]
    count: int
    sample: _containers.RepeatedScalarFieldContainer[int]
    conditions: _containers.RepeatedCompositeFieldContainer[ConditionCount]
    build_ms: float
    def __init__(self, count: _Optional[int] = ..., sample: _Optional[_Iterable[int]] = ..., conditions: _Optional[_Iterable[_Union[ConditionCount, _Mapping]]] = ..., build_ms: _Optional[float] = ...) -> None: ...

class CountMembersRequest(_message.Message):
    __slots__ = ("name", "as_of")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    name: str
    as_of: _struct_pb2.Value
    def __init__(self, name: _Optional[str] = ..., as_of: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class CountMembersResponse(_message.Message):
    __slots__ = ("count", "as_of_ms")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    AS_OF_MS_FIELD_NUMBER: _ClassVar[int]
    count: int
    as_of_ms: int
    def __init__(self, count: _Optional[int] = ..., as_of_ms: _Optional[int] = ...) -> None: ...

class ListMembersRequest(_message.Message):
    __slots__ = ("name", "as_of", "page_size", "with_identifiers", "after_contact_id", "packed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    WITH_IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    AFTER_CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    PACKED_FIELD_NUMBER: _ClassVar[int]
    name: str
    as_of: _struct_pb2.Value
    page_size: int
    with_identifiers: bool
    after_contact_id: int
    packed: bool
    def __init__(self, name: _Optional[str] = ..., as_of: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., page_size: _Optional[int] = ..., with_identifiers: _Optional[bool] = ..., after_contact_id: _Optional[int] = ..., packed: _Optional[bool] = ...) -> None: ...

class ListMembersResponse(_message.Message):
    __slots__ = ("contact_ids", "contacts", "packed_contact_ids")
    CONTACT_IDS_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    PACKED_CONTACT_IDS_FIELD_NUMBER: _ClassVar[int]
    contact_ids: _containers.RepeatedScalarFieldContainer[int]
    contacts: _containers.RepeatedCompositeFieldContainer[Contact]
    packed_contact_ids: bytes
    def __init__(self, contact_ids: _Optional[_Iterable[int]] = ..., contacts: _Optional[_Iterable[_Union[Contact, _Mapping]]] = ..., packed_contact_ids: _Optional[bytes] = ...) -> None: ...

class CheckMembershipRequest(_message.Message):
    __slots__ = ("contacts", "segments")
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    contacts: _containers.RepeatedCompositeFieldContainer[ContactRef]
    segments: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, contacts: _Optional[_Iterable[_Union[ContactRef, _Mapping]]] = ..., segments: _Optional[_Iterable[str]] = ...) -> None: ...

class CheckMembershipResponse(_message.Message):
    __slots__ = ("results", "contact_ids")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    CONTACT_IDS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedScalarFieldContainer[bool]
    contact_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, results: _Optional[_Iterable[bool]] = ..., contact_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetContactSegmentsRequest(_message.Message):
    __slots__ = ("contact",)
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    contact: ContactRef
    def __init__(self, contact: _Optional[_Union[ContactRef, _Mapping]] = ...) -> None: ...

class GetContactSegmentsResponse(_message.Message):
    __slots__ = ("contact_id", "segments")
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    contact_id: int
    segments: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, contact_id: _Optional[int] = ..., segments: _Optional[_Iterable[str]] = ...) -> None: ...

class ExplainMembershipRequest(_message.Message):
    __slots__ = ("name", "contact", "as_of")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    name: str
    contact: ContactRef
    as_of: _struct_pb2.Value
    def __init__(self, name: _Optional[str] = ..., contact: _Optional[_Union[ContactRef, _Mapping]] = ..., as_of: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class ConditionExplanation(_message.Message):
    __slots__ = ("path", "kind", "holds", "value", "detail")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    path: str
    kind: str
    holds: bool
    value: _struct_pb2.Value
    detail: str
    def __init__(self, path: _Optional[str] = ..., kind: _Optional[str] = ..., holds: _Optional[bool] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., detail: _Optional[str] = ...) -> None: ...

class ExplainMembershipResponse(_message.Message):
    __slots__ = ("contact_id", "member", "conditions", "as_of_ms")
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_MS_FIELD_NUMBER: _ClassVar[int]
    contact_id: int
    member: bool
    conditions: _containers.RepeatedCompositeFieldContainer[ConditionExplanation]
    as_of_ms: int
    def __init__(self, contact_id: _Optional[int] = ..., member: _Optional[bool] = ..., conditions: _Optional[_Iterable[_Union[ConditionExplanation, _Mapping]]] = ..., as_of_ms: _Optional[int] = ...) -> None: ...

class MembershipChange(_message.Message):
    __slots__ = ("sequence", "segment", "contact_id", "entered", "at_ms", "cause")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    ENTERED_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    segment: str
    contact_id: int
    entered: bool
    at_ms: int
    cause: str
    def __init__(self, sequence: _Optional[int] = ..., segment: _Optional[str] = ..., contact_id: _Optional[int] = ..., entered: _Optional[bool] = ..., at_ms: _Optional[int] = ..., cause: _Optional[str] = ...) -> None: ...

class WatchSegmentsRequest(_message.Message):
    __slots__ = ("segments", "from_sequence", "max_batch", "from_latest")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    FROM_LATEST_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedScalarFieldContainer[str]
    from_sequence: int
    max_batch: int
    from_latest: bool
    def __init__(self, segments: _Optional[_Iterable[str]] = ..., from_sequence: _Optional[int] = ..., max_batch: _Optional[int] = ..., from_latest: _Optional[bool] = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("change", "alert", "changes")
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    change: MembershipChange
    alert: Alert
    changes: _containers.RepeatedCompositeFieldContainer[MembershipChange]
    def __init__(self, change: _Optional[_Union[MembershipChange, _Mapping]] = ..., alert: _Optional[_Union[Alert, _Mapping]] = ..., changes: _Optional[_Iterable[_Union[MembershipChange, _Mapping]]] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("segment", "rule", "message", "at_ms", "value")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    segment: str
    rule: str
    message: str
    at_ms: int
    value: float
    def __init__(self, segment: _Optional[str] = ..., rule: _Optional[str] = ..., message: _Optional[str] = ..., at_ms: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class GetSegmentHistoryRequest(_message.Message):
    __slots__ = ("name", "resolution_seconds", "to")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    name: str
    resolution_seconds: int
    to: _struct_pb2.Value
    def __init__(self, name: _Optional[str] = ..., resolution_seconds: _Optional[int] = ..., to: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., **kwargs) -> None: ...

class SegmentHistoryPoint(_message.Message):
    __slots__ = ("at_ms", "size", "entered", "exited")
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ENTERED_FIELD_NUMBER: _ClassVar[int]
    EXITED_FIELD_NUMBER: _ClassVar[int]
    at_ms: int
    size: int
    entered: int
    exited: int
    def __init__(self, at_ms: _Optional[int] = ..., size: _Optional[int] = ..., entered: _Optional[int] = ..., exited: _Optional[int] = ...) -> None: ...

class GetSegmentHistoryResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[SegmentHistoryPoint]
    def __init__(self, points: _Optional[_Iterable[_Union[SegmentHistoryPoint, _Mapping]]] = ...) -> None: ...

class SnapshotRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SnapshotResponse(_message.Message):
    __slots__ = ("path", "bytes", "seconds")
    PATH_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    path: str
    bytes: int
    seconds: float
    def __init__(self, path: _Optional[str] = ..., bytes: _Optional[int] = ..., seconds: _Optional[float] = ...) -> None: ...
