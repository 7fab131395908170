"""Mapping an event to a contact (EVENTS.md section 3, steps 4-6).

The event's identifiers are its identifier parameters in event order (a contactId naming
no contact is dropped), followed by its keyValue as an anonymous key unless the keyValue
is just the text of one of those identifiers. The first identifier that finds a contact
decides; the others that belong to nobody are attached to it; the ones that belong to
another contact, or that would be a second email/phone/externalId/key value of the
contact, are conflicts and stay where they are. Nothing found: a new contact, source Event.

One refinement for the anonymous key (a cookie or device id, which several people may
share): it decides only when every other identifier of the event fits on its contact; when
one would be a conflict there (another email, say), the event gets a new contact instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.contacts import ContactBook
from core.errors import InvalidArgument
from core.event_model import Event
from core.identifiers import (
    SINGLE_VALUED,
    Identifier,
    IdKind,
    IdParts,
    TypeMapping,
    identifier_parts_only,
    normalize_value,
    ref_of,
)

_CONTACT_ID, _ANONYMOUS, _EMAIL = IdKind.CONTACT_ID, IdKind.ANONYMOUS, IdKind.EMAIL  # hot paths compare with `is`
_AS_GIVEN = frozenset({IdKind.EXTERNAL_ID, IdKind.PUSH_TOKEN, IdKind.KEY, IdKind.ANONYMOUS})


@dataclass(frozen=True, slots=True)
class Resolution:
    contact_id: int  # 0 for a system event
    identifier: str  # ref of the identifier that decided; "" for a system event
    created: bool  # a new contact would be / was created
    attached: tuple[str, ...]  # refs given to the contact (all of them for a new contact)
    conflicts: tuple[str, ...]  # refs left with another contact or not fitting this one
    key_value: str = ""  # the event's keyValue, or (absent) its first identifier's value


def event_candidates(book: ContactBook, event: Event, mapping: TypeMapping) -> list[Identifier]:
    """The identifiers mapping considers, in order, without repeats."""
    return [Identifier(*parts) for parts in _candidates(book, event, mapping)]


def _candidates(book: ContactBook, event: Event, mapping: TypeMapping) -> list[IdParts]:
    idents: list[IdParts] = []
    for parts in identifier_parts_only(event.params, mapping):
        if parts[0] is _CONTACT_ID and book.owner_of(parts) is None:
            continue  # a contact id the service never assigned (or erased) is no identifier
        if parts not in idents:
            idents.append(parts)
    kv = event.key_value
    if kv:
        for kind, value, _ in idents:
            if kind in _AS_GIVEN:
                if value == kv:
                    break
            elif kind is _EMAIL:
                if value == kv.strip().lower():
                    break
            elif value == normalize_value(kind, kv):
                break
        else:
            idents.append((_ANONYMOUS, kv, ""))
    return idents


def _plan(
    book: ContactBook, contact_id: int | None, idents: list[IdParts], owners: list[int | None]
) -> tuple[list[IdParts], list[IdParts]]:
    """(identifiers to attach, conflicts) for landing the event on `contact_id` (None: new)."""
    attached: list[IdParts] = []
    conflicts: list[IdParts] = []
    filled: dict[tuple[IdKind, str], str] = {}  # single-valued slots filled by this plan
    for ident, owner in zip(idents, owners):
        if owner is not None:
            if owner != contact_id:
                conflicts.append(ident)
            continue
        kind, value, key_name = ident
        if kind in SINGLE_VALUED:
            slot = (kind, key_name)
            held = filled.get(slot)
            if held is None and contact_id is not None:
                held = book.value_of(contact_id, kind, key_name)
            if held is not None:
                conflicts.append(ident)
                continue
            filled[slot] = value
        attached.append(ident)
    return attached, conflicts


Placement = tuple[int, str, bool, tuple[str, ...], tuple[str, ...], str]  # a Resolution's fields


def resolve(
    book: ContactBook, event: Event, mapping: TypeMapping, now_ms: int, *, dry_run: bool = False
) -> Resolution:
    """The contact an event lands on, creating or unifying as EVENTS.md section 3 says.

    With dry_run nothing changes (a new contact is reported as id max_id + 1).
    """
    return Resolution(*place(book, event, mapping, now_ms, dry_run))


def place(book: ContactBook, event: Event, mapping: TypeMapping, now_ms: int, dry_run: bool = False) -> Placement:
    """`resolve` as a plain tuple of the Resolution's fields (the ingest hot path)."""
    if event.system:
        return (0, "", False, (), (), event.key_value or "")
    tied = event.contact
    if tied is not None:  # tied to its contact already (a column batch)
        return (tied, f"contactId:{tied}", False, (), (), event.key_value or "")
    idents = _candidates(book, event, mapping)
    if not idents:
        raise InvalidArgument("keyValue", "the event has no keyValue and no identifier parameter")
    owner_of = book.owner_of
    key_value = event.key_value or idents[0][1]
    first = owner_of(idents[0])
    owners = [first]
    same = first is not None
    for parts in idents[1:]:
        owner = owner_of(parts)
        owners.append(owner)
        same = same and owner == first
    if same and first is not None:
        # every identifier already belongs to one contact: nothing to attach, no conflict
        return (first, ref_of(idents[0]), False, (), (), key_value)

    for ident, owner in zip(idents, owners):
        if owner is None:
            continue
        attached, conflicts = _plan(book, owner, idents, owners)
        if ident[0] is _ANONYMOUS and conflicts:
            break  # a shared cookie must not pull a different person onto this profile
        if not dry_run:
            for other in attached:
                book.attach(owner, Identifier(*other))
            if conflicts:
                book.record_conflicts(len(conflicts))
        return (
            owner,
            ref_of(ident),
            False,
            tuple(map(ref_of, attached)) if attached else (),
            tuple(map(ref_of, conflicts)) if conflicts else (),
            key_value,
        )

    attached, conflicts = _plan(book, None, idents, owners)
    if dry_run:
        contact_id = book.max_id + 1
    else:
        contact_id = book.create([Identifier(*parts) for parts in attached], "Event", now_ms)
        book.record_conflicts(len(conflicts))
    return (
        contact_id,
        ref_of(attached[0]),
        True,
        tuple(map(ref_of, attached)),
        tuple(map(ref_of, conflicts)),
        key_value,
    )
