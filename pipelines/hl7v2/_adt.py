"""ADT messages → :class:`schemas.events.AdtEvent`: PID → Patient, PV1 → Encounter.

Each trigger maps to one action. What an action needs and a message lacks
(no patient identifier, an admission without a location, a swap without its
second patient, a merge without MRG) raises :class:`MappingError` naming the
field, so the message becomes a dead letter instead of a wrong event.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Literal, NamedTuple

from pipelines.hl7v2._datatypes import (
    MappingError,
    addresses,
    bed_location,
    calendar_date,
    code,
    human_names,
    identifier,
    identifiers,
    practitioners,
    telecoms,
    text,
    timestamp,
)
from pipelines.hl7v2.tokenizer import Message, Segment
from schemas.events import AdtAction, AdtEvent, Encounter, EncounterStatus, Patient

ADT_ACTIONS: dict[str, AdtAction] = {
    "A01": "admit",
    "A02": "transfer",
    "A03": "discharge",
    "A04": "register",
    "A05": "preadmit",
    "A06": "change_to_inpatient",
    "A07": "change_to_outpatient",
    "A08": "update",
    "A28": "update",
    "A31": "update",
    "A11": "cancel_admit",
    "A12": "cancel_transfer",
    "A13": "cancel_discharge",
    "A17": "swap_beds",
    "A21": "leave_out",
    "A22": "leave_return",
    "A40": "merge",
}

# Actions that put the patient in a bed: without PV1-3 the census cannot follow them.
LOCATION_REQUIRED: frozenset[AdtAction] = frozenset({"admit", "transfer", "change_to_inpatient"})

# FHIR Encounter.status after the event (v2-to-FHIR "Event[EncounterStatus]", extended
# to the triggers it leaves out). Register depends on the patient class, see below.
_STATUS: dict[AdtAction, EncounterStatus] = {
    "admit": "in-progress",
    "transfer": "in-progress",
    "change_to_inpatient": "in-progress",
    "change_to_outpatient": "in-progress",
    "discharge": "finished",
    "preadmit": "planned",
    "cancel_admit": "cancelled",
    "cancel_transfer": "in-progress",
    "cancel_discharge": "in-progress",
    "swap_beds": "in-progress",
    "leave_out": "onleave",
    "leave_return": "in-progress",
    "update": "unknown",
    "merge": "unknown",
}

# HL7 table 0001 (administrative sex) → FHIR gender.
_SEX: dict[str, Literal["male", "female", "other", "unknown"]] = {
    "M": "male",
    "F": "female",
    "O": "other",
    "U": "unknown",
    "A": "other",
    "N": "other",
}


class PatientGroup(NamedTuple):
    """One PID with the PV1 and MRG that follow it, before the next PID."""

    pid: Segment
    pv1: Segment | None
    mrg: Segment | None


def patient_groups(msg: Message) -> list[PatientGroup]:
    """The message's PID groups in order (A17 and A40 carry more than one)."""
    groups: list[PatientGroup] = []
    for seg in msg:
        if seg.name == "PID":
            groups.append(PatientGroup(seg, None, None))
        elif groups and seg.name == "PV1" and groups[-1].pv1 is None:
            groups[-1] = groups[-1]._replace(pv1=seg)
        elif groups and seg.name == "MRG" and groups[-1].mrg is None:
            groups[-1] = groups[-1]._replace(mrg=seg)
    return groups


def patient(pid: Segment, default_tz: tzinfo, *, where: str = "") -> Patient:
    """PID → Patient. Raises :class:`MappingError` without a PID-3 identifier."""
    ids = identifiers(pid.field(3))
    if not ids:
        raise MappingError(f"PID-3: patient identifier missing{where}")
    sex = code(pid.field(8))
    death_indicator = code(pid.field(30))
    return Patient(
        identifiers=ids,
        names=human_names(pid.field(5)),
        birth_date=calendar_date(pid, 7),
        sex=_SEX.get(sex) if sex else None,
        addresses=addresses(pid.field(11)),
        telecom=telecoms(pid.field(13)) + telecoms(pid.field(14)),
        deceased={"Y": True, "N": False}.get(death_indicator or ""),
        deceased_at=timestamp(pid, 29, default_tz),
    )


def encounter_status(action: AdtAction, patient_class: str | None) -> EncounterStatus:
    """Encounter.status after ``action``: an emergency registration is under way
    at once, other registrations have arrived."""
    if action == "register":
        return "in-progress" if patient_class == "E" else "arrived"
    return _STATUS[action]


def encounter(pv1: Segment | None, status: EncounterStatus, default_tz: tzinfo) -> Encounter | None:
    """PV1 → Encounter; ``None`` when PV1 is missing or carries nothing past PV1-1."""
    if pv1 is None or not any(pv1.raw_field(n).strip() for n in range(2, len(pv1) + 1)):
        return None
    visit = pv1.field(19)
    return Encounter(
        visit_number=identifier(visit),
        patient_class=code(pv1.field(2)),
        status=status,
        location=bed_location(pv1.field(3)),
        prior_location=bed_location(pv1.field(6)),
        attending=practitioners(pv1.field(7)),
        service=text(pv1.field(10)),
        admit_source=text(pv1.field(14)),
        discharge_disposition=text(pv1.field(36)),
        admitted_at=timestamp(pv1, 44, default_tz),
        discharged_at=timestamp(pv1, 45, default_tz),
    )


def event_time(msg: Message, default_tz: tzinfo) -> datetime:
    """When the event happened: EVN-6, else EVN-2, else MSH-7."""
    evn = msg.segment("EVN")
    found = timestamp(evn, 6, default_tz) or timestamp(evn, 2, default_tz)
    found = found or timestamp(msg.msh, 7, default_tz)
    if found is None:
        raise MappingError("MSH-7: no event time (EVN-6, EVN-2 and MSH-7 are all empty)")
    return found


def merge_events(msg: Message, trigger: str, message_id: str, default_tz: tzinfo) -> list[AdtEvent]:
    """A merge message (A40) may carry several PID/MRG groups: one event each."""
    groups = patient_groups(msg)
    if len(groups) <= 1:
        return [adt_event(msg, trigger, message_id, default_tz)]
    return [adt_event(msg, trigger, message_id, default_tz, group=n) for n in range(len(groups))]


def adt_event(
    msg: Message, trigger: str, message_id: str, default_tz: tzinfo, *, group: int = 0
) -> AdtEvent:
    """Map an ADT message of a trigger in :data:`ADT_ACTIONS` to its canonical event
    (``group``: which PID group is the subject, for multi-group merges)."""
    action = ADT_ACTIONS[trigger]
    kind = f"ADT^{trigger}" if group == 0 else f"ADT^{trigger} (PID group {group + 1})"
    groups = patient_groups(msg)
    if len(groups) <= group:
        raise MappingError(f"PID: patient identification segment missing on {kind}")
    first = groups[group]
    who = patient(first.pid, default_tz, where=f" on {kind}")
    pv1_class = code(first.pv1.field(2)) if first.pv1 is not None else None
    status = encounter_status(action, pv1_class)
    visit = encounter(first.pv1, status, default_tz)
    if action in LOCATION_REQUIRED and (visit is None or visit.location is None):
        raise MappingError(f"PV1-3: assigned location missing on {kind}")
    other_patient, other_visit = None, None
    if action == "swap_beds":
        if len(groups) < 2:
            raise MappingError(f"PID: second patient (PID/PV1 pair) missing on {kind}")
        second = groups[1]
        other_patient = patient(second.pid, default_tz, where=f" (second patient) on {kind}")
        if first.pv1 is None or second.pv1 is None:
            raise MappingError(f"PV1: a patient visit of the bed swap is missing on {kind}")
        other_class = code(second.pv1.field(2))
        other_visit = encounter(second.pv1, encounter_status(action, other_class), default_tz)
    merged = []
    if action == "merge":
        merged = identifiers(first.mrg.field(1)) if first.mrg is not None else []
        if not merged:
            raise MappingError(f"MRG-1: prior patient identifier missing on {kind}")
    return AdtEvent(
        action=action,
        trigger=trigger,
        message_id=message_id,
        occurred_at=event_time(msg, default_tz),
        patient=who,
        encounter=visit,
        other_patient=other_patient,
        other_encounter=other_visit,
        merged_identifiers=merged,
    )
