"""Contact identifiers: kinds, normalisation, references and the event identifier table.

An `Identifier` is always normalised (EVENTS.md section 2): two identifiers are the same
exactly when their dataclass values are equal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Mapping

from core.errors import InvalidArgument


class IdKind(StrEnum):
    CONTACT_ID = "contactId"
    EXTERNAL_ID = "externalId"
    EMAIL = "email"
    PHONE = "phone"
    PUSH_TOKEN = "pushToken"
    KEY = "key"
    ANONYMOUS = "anonymous"


# A contact holds at most one identifier of these kinds (per key name for KEY).
SINGLE_VALUED = frozenset({IdKind.EXTERNAL_ID, IdKind.EMAIL, IdKind.PHONE, IdKind.KEY})

_KIND_BY_LOWER = {kind.value.lower(): kind for kind in IdKind}
_PHONE_JUNK = re.compile(r"[\s\-.()]")
# the same characters, ASCII only, as a deletion table (str.translate beats the regex)
_PHONE_JUNK_ASCII = str.maketrans("", "", "".join(c for c in map(chr, range(128)) if _PHONE_JUNK.match(c)))
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class Identifier:
    kind: IdKind
    value: str  # normalised; CONTACT_ID holds the canonical decimal id
    key_name: str = ""  # KEY only: the contact key's name

    def ref(self) -> str:
        """The textual reference: ``email:a@b.c``, ``key:loyaltyCard:LC-77``."""
        if self.kind is IdKind.KEY:
            return f"key:{self.key_name}:{self.value}"
        return f"{self.kind.value}:{self.value}"


def normalize_email(s: str) -> str:
    """Email as stored and compared: trimmed and lower-cased."""
    return s.strip().lower()


def normalize_phone(s: str) -> str:
    """Phone as stored and compared: no whitespace, dashes, dots, parentheses or leading +."""
    cleaned = s.translate(_PHONE_JUNK_ASCII) if s.isascii() else _PHONE_JUNK.sub("", s)
    return cleaned[1:] if cleaned.startswith("+") else cleaned


def normalize_value(kind: IdKind, raw: str) -> str:
    """The normalised form of `raw` for `kind`; "" when it cannot be such an identifier."""
    if kind is IdKind.EMAIL:
        return normalize_email(raw)
    if kind is IdKind.PHONE:
        return normalize_phone(raw)
    if kind is IdKind.CONTACT_ID:
        if not _DIGITS.fullmatch(raw):
            return ""
        number = int(raw)
        return str(number) if number > 0 else ""
    return raw


def make_identifier(kind: IdKind, raw: str, key_name: str = "") -> Identifier | None:
    """A normalised identifier, or None when `raw` normalises to nothing."""
    value = normalize_value(kind, raw)
    if not value:
        return None
    return Identifier(kind, value, key_name if kind is IdKind.KEY else "")


def scalar_text(value: Any) -> str | None:
    """A parameter value as identifier text: strings as given, numbers canonical; else None.

    Integral floats lose their ".0" (12312345612.0 -> "12312345612"); booleans, objects,
    arrays and null are never identifiers.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return str(int(value))
        return repr(value)
    return None


def _parse_kind(text: str, field_name: str) -> IdKind:
    kind = _KIND_BY_LOWER.get(text.lower())
    if kind is None:
        allowed = ", ".join(k.value for k in IdKind)
        raise InvalidArgument(field_name, f"unknown identifier kind {text!r} (one of {allowed})")
    return kind


def check_key_name(name: str, field_name: str) -> None:
    """A contact key name is non-empty and has no ':' (it is part of ``key:NAME:VALUE``)."""
    if not name:
        raise InvalidArgument(field_name, "a contact key name must not be empty")
    if ":" in name:
        raise InvalidArgument(field_name, "a contact key name must not contain ':'")


def parse_identifier_spec(spec: str, field: str) -> tuple[IdKind, str]:
    """A custom-mapping target -> (kind, key name): contactId, externalId, email, phone,
    pushToken or ``key:<name>``. Kind names are matched case-insensitively."""
    if not isinstance(spec, str) or not spec:
        raise InvalidArgument(field, "an identifier kind is required")
    head, sep, rest = spec.partition(":")
    kind = _parse_kind(head, field)
    if kind is IdKind.KEY:
        if not sep:
            raise InvalidArgument(field, "a contact key target is written key:<name>")
        check_key_name(rest, field)
        return kind, rest
    if sep:
        raise InvalidArgument(field, f"{kind.value} takes no name after ':'")
    if kind is IdKind.ANONYMOUS:
        raise InvalidArgument(field, "anonymous is not a mapping target")
    return kind, ""


def parse_ref(ref: str, field: str = "ref") -> Identifier | int:
    """A contact reference: ``123`` (contact id) or ``kind:value`` (``key:NAME:VALUE``)."""
    if not isinstance(ref, str):
        raise InvalidArgument(field, "a contact reference must be a string")
    text = ref.strip()
    if _DIGITS.fullmatch(text):
        number = int(text)
        if number <= 0:
            raise InvalidArgument(field, "contact ids start at 1")
        return number
    head, sep, rest = text.partition(":")
    if not sep:
        raise InvalidArgument(field, f"{ref!r} is neither a contact id nor kind:value")
    kind = _parse_kind(head, field)
    key_name = ""
    if kind is IdKind.KEY:
        key_name, sep, rest = rest.partition(":")
        if not sep:
            raise InvalidArgument(field, "a contact key reference is written key:NAME:VALUE")
        check_key_name(key_name, field)
    if kind is IdKind.CONTACT_ID:
        if not _DIGITS.fullmatch(rest) or int(rest) <= 0:
            raise InvalidArgument(field, f"{rest!r} is not a contact id")
        return int(rest)
    ident = make_identifier(kind, rest, key_name)
    if ident is None:
        raise InvalidArgument(field, f"{ref!r} has an empty {kind.value}")
    return ident


@dataclass(frozen=True, slots=True)
class TypeMapping:
    """An event type's custom mapping (EVENTS.md section 3 step 1) and contact key name."""

    params: Mapping[str, str] = field(default_factory=dict)  # parameter name -> target spec
    contact_key_name: str = "contactKey"  # the key ContactKey / Contact_key parameters address
    _targets: dict[str, tuple[IdKind, str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        check_key_name(self.contact_key_name, "contact_key_name")
        for name, spec in self.params.items():
            self._targets[name] = parse_identifier_spec(spec, f"mapping[{name}]")

    def target(self, name: str) -> tuple[IdKind, str] | None:
        """The (kind, key name) a parameter is custom-mapped to, or None."""
        return self._targets.get(name)


# EVENTS.md section 3, step 2; names compared lower-cased. KEY uses the type's key name.
DEFAULT_TABLE: dict[str, IdKind] = {
    "contactid": IdKind.CONTACT_ID,
    "externalcustomerid": IdKind.EXTERNAL_ID,
    "email": IdKind.EMAIL,
    "emailaddress": IdKind.EMAIL,
    "useremail": IdKind.EMAIL,
    "contactemail": IdKind.EMAIL,
    "phone": IdKind.PHONE,
    "sms": IdKind.PHONE,
    "phonenumber": IdKind.PHONE,
    "pushtoken": IdKind.PUSH_TOKEN,
    "contactkey": IdKind.KEY,
    "contact_key": IdKind.KEY,
}


IdParts = tuple[IdKind, str, str]  # an Identifier's fields (kind, value, key name): no object built

_KIND_TEXT = {kind: kind.value for kind in IdKind}
_EMAIL, _PHONE, _KEY_KIND = IdKind.EMAIL, IdKind.PHONE, IdKind.KEY  # hot paths compare with `is`
_AS_GIVEN = frozenset({IdKind.EXTERNAL_ID, IdKind.PUSH_TOKEN, IdKind.KEY, IdKind.ANONYMOUS})

# parameter name -> its default-table kind (None: no identifier); bounded, names are user input
_NAME_KINDS: dict[str, IdKind | None] = {}
_NAME_CACHE_SIZE = 10_000


def ref_of(parts: IdParts) -> str:
    """`Identifier(*parts).ref()` without building the identifier."""
    kind, value, key_name = parts
    if kind is _KEY_KIND:
        return f"key:{key_name}:{value}"
    return f"{_KIND_TEXT[kind]}:{value}"


def _table_kind(name: str) -> IdKind | None:
    """DEFAULT_TABLE's kind of a parameter name (case-insensitive), remembered per name."""
    kind = DEFAULT_TABLE.get(name.lower())
    if len(_NAME_KINDS) >= _NAME_CACHE_SIZE:
        _NAME_KINDS.clear()
    _NAME_KINDS[name] = kind
    return kind


def _parts_of(value: Any, kind: IdKind, key_name: str) -> IdParts | None:
    """The normalised identifier a parameter value makes for `kind`, or None."""
    text = value if type(value) is str else scalar_text(value)
    if text is None:
        return None
    if kind in _AS_GIVEN:
        norm = text
    elif kind is _EMAIL:
        norm = text.strip().lower()
    else:
        norm = normalize_value(kind, text)
    if not norm:
        return None
    return (kind, norm, key_name if kind is _KEY_KIND else "")


def identifier_parts(params: Mapping[str, Any], mapping: TypeMapping) -> list[tuple[str, IdParts]]:
    """`event_identifiers` as (name, identifier fields) pairs: the hot path builds no objects."""
    if mapping.params:
        for name, value in params.items():
            target = mapping.target(name)
            if target is not None:
                parts = _parts_of(value, target[0], target[1])
                if parts is not None:
                    return [(name, parts)]
    found: list[tuple[str, IdParts]] = []
    key_name = mapping.contact_key_name
    kinds = _NAME_KINDS
    for name, value in params.items():
        kind = kinds.get(name, _UNSEEN)
        if kind is _UNSEEN:
            kind = _table_kind(name)
        if kind is None:
            continue
        parts = _parts_of(value, kind, key_name)  # type: ignore[arg-type]
        if parts is not None:
            found.append((name, parts))
    return found


_UNSEEN: Any = object()


def identifier_parts_only(params: Mapping[str, Any], mapping: TypeMapping) -> list[IdParts]:
    """`identifier_parts` without the parameter names (the mapping hot path)."""
    if mapping.params:
        return [parts for _, parts in identifier_parts(params, mapping)]
    found: list[IdParts] = []
    key_name = mapping.contact_key_name
    kinds = _NAME_KINDS
    for name, value in params.items():
        kind = kinds.get(name, _UNSEEN)
        if kind is None:
            continue
        if kind is _UNSEEN:
            kind = _table_kind(name)
            if kind is None:
                continue
        if type(value) is str and kind in _AS_GIVEN:
            if value:
                found.append((kind, value, key_name if kind is _KEY_KIND else ""))
            continue
        parts = _parts_of(value, kind, key_name)
        if parts is not None:
            found.append(parts)
    return found


def event_identifiers(params: Mapping[str, Any], mapping: TypeMapping) -> list[tuple[str, Identifier]]:
    """The identifiers of an event's parameters, in event order (EVENTS.md section 3).

    A custom-mapped parameter carrying a usable value is the only identifier; otherwise each
    parameter named in the default table (case-insensitively) with a usable value is one.
    """
    return [(name, Identifier(*parts)) for name, parts in identifier_parts(params, mapping)]
