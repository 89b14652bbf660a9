"""How each ADT action moves the census (see :mod:`pipelines.census.step`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from engine.types import KeyedState
from pipelines.census._beds import SEEN, Bed, Beds, PatientRecord, bed_at, for_patient, slot_for
from schemas.events import AdtAction, AdtEvent, BedLocation

_TRANSFER = frozenset({"transfer"})
_DISCHARGE = frozenset({"discharge"})
# A11 cancels an A01 admission or an A04 registration.
_ADMISSIONS = frozenset({"admit", "register"})

Handler = Callable[[Beds, AdtEvent, str, PatientRecord], set[str]]


def event_key(event: AdtEvent) -> str:
    """A short key telling one event from another. The same message mapped again
    gives the same key; a FHIR resource id repeats across versions, so the
    time and action are part of it."""
    text = f"{event.message_id}|{event.trigger}|{event.action}|{event.occurred_at.isoformat()}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _location(event: AdtEvent) -> BedLocation | None:
    return event.encounter.location if event.encounter is not None else None


def _back_to(beds: Beds, patient_id: str, wanted: Bed, fallback: BedLocation | None) -> Bed:
    """``wanted`` if still free, else the message's location, else an unassigned
    place in the wanted ward."""
    wanted = for_patient(wanted, patient_id)
    if beds.is_free_for(wanted, patient_id):
        return wanted
    if fallback is not None:
        return bed_at(fallback, patient_id)
    return Bed(wanted.ward, slot_for(BedLocation(ward=wanted.ward), patient_id))


def _occupy(beds: Beds, event: AdtEvent, pid: str, record: PatientRecord) -> set[str]:
    location = _location(event)
    if location is None:
        return set()
    # A new stay starts present, whatever leave the last one ended on.
    on_leave = None if event.action == "transfer" else False
    return beds.place(pid, record, bed_at(location, pid), event.action, on_leave=on_leave)


def _release(beds: Beds, event: AdtEvent, pid: str, record: PatientRecord) -> set[str]:
    return beds.vacate(pid, record, event.action)


def _update(beds: Beds, event: AdtEvent, pid: str, record: PatientRecord) -> set[str]:
    location = _location(event)
    if record.bed is None or location is None:
        return set()
    target = bed_at(location, pid)
    # A ward without a bed names no other place when the patient is in that ward.
    if target == record.bed or (target.ward == record.bed.ward and location.bed is None):
        return set()
    return beds.place(pid, record, target, "update")


def _cancel_admit(beds: Beds, event: AdtEvent, pid: str, record: PatientRecord) -> set[str]:
    admission = record.last(_ADMISSIONS)
    if admission is not None and admission.origin is not None:
        origin = for_patient(admission.origin, pid)
        if beds.is_free_for(origin, pid):
            return beds.place(pid, record, origin, "restored", on_leave=admission.was_on_leave)
    return beds.vacate(pid, record, "cancel_admit")


def _cancel_transfer(beds: Beds, event: AdtEvent, pid: str, record: PatientRecord) -> set[str]:
    location = _location(event)
    transfer = record.last(_TRANSFER)
    on_leave = transfer.was_on_leave if transfer is not None else None
    if transfer is not None and transfer.origin is not None:
        target = _back_to(beds, pid, transfer.origin, location)
        return beds.place(pid, record, target, "restored", on_leave=on_leave)
    if location is not None:
        # A12 sends the location the patient returns to in PV1-3.
        return beds.place(pid, record, bed_at(location, pid), "restored", on_leave=on_leave)
    if transfer is not None:
        # The transfer brought the patient into the census: undoing it takes them out.
        return beds.vacate(pid, record, "cancel_transfer")
    return set()


def _cancel_discharge(beds: Beds, event: AdtEvent, pid: str, record: PatientRecord) -> set[str]:
    if record.bed is not None:
        return set()
    location = _location(event)
    discharge = record.last(_DISCHARGE)
    if discharge is not None and discharge.origin is not None:
        target = _back_to(beds, pid, discharge.origin, location)
    elif location is not None:
        target = bed_at(location, pid)
    else:
        return set()
    on_leave = discharge.was_on_leave if discharge is not None else False
    return beds.place(pid, record, target, "restored", on_leave=on_leave)


def _leave(beds: Beds, event: AdtEvent, pid: str, record: PatientRecord) -> set[str]:
    return beds.set_leave(pid, record, event.action == "leave_out")


def _nothing(beds: Beds, event: AdtEvent, pid: str, record: PatientRecord) -> set[str]:
    return set()


def _swap(beds: Beds, event: AdtEvent, pid: str, record: PatientRecord) -> set[str]:
    if event.other_patient is None or event.other_patient.primary_id == pid:
        return set()
    other_id = event.other_patient.primary_id
    known = beds.record(other_id)
    other = known or PatientRecord()
    if record.bed is not None and other.bed is not None:
        changed = beds.swap(pid, record, other_id, other)
    else:
        # The census does not hold both: follow the locations the message gives.
        changed = set()
        pairs = ((pid, record, event.encounter), (other_id, other, event.other_encounter))
        for who, held, visit in pairs:
            if visit is not None and visit.location is not None:
                changed |= beds.place(who, held, bed_at(visit.location, who), "swap_beds")
    if known is not None or other.bed is not None:
        beds.save(other_id, other)
    return changed


def _merge(beds: Beds, event: AdtEvent, pid: str, record: PatientRecord) -> set[str]:
    changed: set[str] = set()
    for merged in event.merged_identifiers:
        if merged.value == pid:
            continue
        old = beds.record(merged.value)
        if old is None:
            continue
        held, on_leave = old.bed, old.on_leave
        changed |= beds.vacate(merged.value, old, "merged", keep=False)
        if held is not None and record.bed is None:
            target = for_patient(held, pid)
            changed |= beds.place(pid, record, target, "merge", on_leave=on_leave)
        beds.forget(merged.value)
    return changed


HANDLERS: dict[AdtAction, Handler] = {
    "admit": _occupy,
    "register": _occupy,
    "change_to_inpatient": _occupy,
    "transfer": _occupy,
    "discharge": _release,
    "change_to_outpatient": _release,
    "update": _update,
    "preadmit": _nothing,
    "cancel_admit": _cancel_admit,
    "cancel_transfer": _cancel_transfer,
    "cancel_discharge": _cancel_discharge,
    "swap_beds": _swap,
    "leave_out": _leave,
    "leave_return": _leave,
    "merge": _merge,
}


def apply_event(state: KeyedState, event: AdtEvent) -> set[str]:
    """Apply one ADT event to the census; returns the wards whose beds changed.

    An event already applied (among the patient's last few) changes nothing.
    """
    beds = Beds(state)
    pid = event.patient_id
    known = beds.record(pid)
    key = event_key(event)
    if known is not None and key in known.seen:
        return set()
    record = known or PatientRecord()
    changed = HANDLERS[event.action](beds, event, pid, record)
    if known is not None or record.bed is not None or record.history:
        record.seen = [*record.seen, key][-SEEN:]
        beds.save(pid, record)
    return changed
