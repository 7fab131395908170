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
from core.events import Event
from core.identifiers import (
    SINGLE_VALUED,
    IdKind,
    Identifier,
    TypeMapping,
    event_identifiers,
    normalize_value,
)


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
    idents: list[Identifier] = []
    for _, ident in event_identifiers(event.params, mapping):
        if ident.kind is IdKind.CONTACT_ID and book.find(ident) is None:
            continue  # a contact id the service never assigned (or erased) is no identifier
        if ident not in idents:
            idents.append(ident)
    kv = event.key_value
    if kv and not any(ident.value == normalize_value(ident.kind, kv) for ident in idents):
        idents.append(Identifier(IdKind.ANONYMOUS, kv))
    return idents


def _plan(
    book: ContactBook, contact_id: int | None, idents: list[Identifier], owners: list[int | None]
) -> tuple[list[Identifier], list[Identifier]]:
    """(identifiers to attach, conflicts) for landing the event on `contact_id` (None: new)."""
    attached: list[Identifier] = []
    conflicts: list[Identifier] = []
    filled: dict[tuple[IdKind, str], str] = {}  # single-valued slots filled by this plan
    for ident, owner in zip(idents, owners):
        if owner is not None:
            if owner != contact_id:
                conflicts.append(ident)
            continue
        if ident.kind in SINGLE_VALUED:
            slot = (ident.kind, ident.key_name)
            held = filled.get(slot)
            if held is None and contact_id is not None:
                held = book.value_of(contact_id, ident.kind, ident.key_name)
            if held is not None:
                conflicts.append(ident)
                continue
            filled[slot] = ident.value
        attached.append(ident)
    return attached, conflicts


def resolve(
    book: ContactBook, event: Event, mapping: TypeMapping, now_ms: int, *, dry_run: bool = False
) -> Resolution:
    """The contact an event lands on, creating or unifying as EVENTS.md section 3 says.

    With dry_run nothing changes (a new contact is reported as id max_id + 1).
    """
    if event.system:
        return Resolution(0, "", False, (), (), event.key_value or "")
    idents = event_candidates(book, event, mapping)
    if not idents:
        raise InvalidArgument("keyValue", "the event has no keyValue and no identifier parameter")
    owners = [book.find(ident) for ident in idents]
    key_value = event.key_value or idents[0].value

    for ident, owner in zip(idents, owners):
        if owner is None:
            continue
        attached, conflicts = _plan(book, owner, idents, owners)
        if ident.kind is IdKind.ANONYMOUS and conflicts:
            break  # a shared cookie must not pull a different person onto this profile
        if not dry_run:
            for other in attached:
                book.attach(owner, other)
            book.record_conflicts(len(conflicts))
        return Resolution(
            owner,
            ident.ref(),
            False,
            tuple(i.ref() for i in attached),
            tuple(i.ref() for i in conflicts),
            key_value,
        )

    attached, conflicts = _plan(book, None, idents, owners)
    if dry_run:
        contact_id = book.max_id + 1
    else:
        contact_id = book.create(attached, "Event", now_ms)
        book.record_conflicts(len(conflicts))
    return Resolution(
        contact_id,
        attached[0].ref(),
        True,
        tuple(i.ref() for i in attached),
        tuple(i.ref() for i in conflicts),
        key_value,
    )
