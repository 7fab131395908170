"""Contact documents: validation of the JSON a client sends for one contact.

`parse_contact_doc` turns a document into (contactId, identifiers in lookup order, field
updates); `check_fields` validates field updates alone. Both raise InvalidArgument naming the
offending path.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any, Mapping

from core.errors import InvalidArgument
from core.events import check_text
from core.identifiers import IdKind, Identifier, check_key_name, make_identifier, scalar_text

SOURCES = ("Event", "Import", "Api")  # stored as codes 1, 2, 3 (0: no contact)
TEXT_FIELDS = ("firstName", "lastName", "gender", "city", "country")
RESERVED_FIELDS = ("createdAt", "source")
CONTACT_DOC_KEYS = ("contactId", "externalId", "email", "phone", "pushTokens", "keys", "fields")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def check_birthday(value: Any, field: str) -> str:
    """A YYYY-MM-DD calendar date, returned as given."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise InvalidArgument(field, "must be a date written YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(field, f"{value!r} is not a calendar date") from None
    return value


def check_fields(raw: Any, field: str = "fields") -> dict[str, Any]:
    """Validated field updates; a None value means "remove the field"."""
    if not isinstance(raw, Mapping):
        raise InvalidArgument(field, "must be an object")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name:
            raise InvalidArgument(field, "field names must be non-empty strings")
        path = f"{field}.{name}"
        check_text(name, path)
        if name in RESERVED_FIELDS:
            raise InvalidArgument(path, "is set by the service")
        if value is None:
            out[name] = None
        elif name == "birthday":
            out[name] = check_birthday(value, path)
        elif name in TEXT_FIELDS:
            if not isinstance(value, str):
                raise InvalidArgument(path, "must be a string")
            check_text(value, path)
            out[name] = value
        elif isinstance(value, str):
            check_text(value, path)
            out[name] = value
        elif isinstance(value, bool):
            out[name] = value
        elif isinstance(value, (int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidArgument(path, "numbers must be finite")
            if isinstance(value, int) and value.bit_length() > 63:
                raise InvalidArgument(path, "integers must fit in 64 bits")
            out[name] = value
        else:
            raise InvalidArgument(path, "must be a string, number, boolean or date")
    return out


def source_code(source: str) -> int:
    if source not in SOURCES:
        raise InvalidArgument("source", f"must be one of {', '.join(SOURCES)}")
    return SOURCES.index(source) + 1


def _ident_text(value: Any, field: str, kind: IdKind, key_name: str = "") -> Identifier:
    if isinstance(value, str):
        check_text(value, field)
        text: str | None = value
    elif kind in (IdKind.EMAIL, IdKind.PUSH_TOKEN):
        text = None
    else:
        text = scalar_text(value)
        if isinstance(value, float):
            text = None
    ident = None if text is None else make_identifier(kind, text, key_name)
    if ident is None:
        raise InvalidArgument(field, f"must be a non-empty {kind.value}")
    return ident


def parse_contact_doc(doc: Mapping[str, Any]) -> tuple[int | None, list[Identifier], dict[str, Any]]:
    """(contactId or None, identifiers in lookup order, field updates) of a contact document."""
    if not isinstance(doc, Mapping):
        raise InvalidArgument("", "a contact must be a JSON object")
    for key in doc:
        if key not in CONTACT_DOC_KEYS:
            raise InvalidArgument(str(key), "unknown field")
    contact_id: int | None = None
    raw_id = doc.get("contactId")
    if raw_id is not None:
        if isinstance(raw_id, str) and raw_id.isdigit():
            raw_id = int(raw_id)
        if not isinstance(raw_id, int) or isinstance(raw_id, bool) or raw_id <= 0:
            raise InvalidArgument("contactId", "must be a positive integer")
        contact_id = raw_id
    idents: list[Identifier] = []
    for key, kind in (("externalId", IdKind.EXTERNAL_ID), ("email", IdKind.EMAIL), ("phone", IdKind.PHONE)):
        if doc.get(key) is not None:
            idents.append(_ident_text(doc[key], key, kind))
    tokens = doc.get("pushTokens")
    if tokens is not None:
        if not isinstance(tokens, (list, tuple)):
            raise InvalidArgument("pushTokens", "must be a list of strings")
        for i, token in enumerate(tokens):
            idents.append(_ident_text(token, f"pushTokens[{i}]", IdKind.PUSH_TOKEN))
    keys = doc.get("keys")
    if keys is not None:
        if not isinstance(keys, Mapping):
            raise InvalidArgument("keys", "must be an object of key name -> value")
        for name, value in keys.items():
            path = f"keys.{name}"
            if not isinstance(name, str):
                raise InvalidArgument("keys", "key names must be strings")
            check_key_name(name, path)
            check_text(name, path)
            idents.append(_ident_text(value, path, IdKind.KEY, name))
    raw_fields = doc.get("fields")
    fields = {} if raw_fields is None else check_fields(raw_fields)
    return contact_id, idents, fields
