"""Canonical visit → FHIR Encounter (IG PV1[Encounter]) and the bed each location holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pipelines.fhir_map import _codes as codes
from pipelines.fhir_map._json import Resource, clean, coding, concept, date_time
from pipelines.fhir_map.ids import encounter_id, most_granular_id
from pipelines.fhir_map.patient import identifier_json, patient_reference
from schemas.events import (
    AdtAction,
    BedLocation,
    Encounter,
    EncounterStatus,
    Identifier,
    Patient,
    Practitioner,
)

# Actions whose meaning fixes the status whatever the message says.
FORCED_STATUS: dict[AdtAction, EncounterStatus] = {
    "discharge": "finished",
    "cancel_admit": "cancelled",
    "leave_out": "onleave",
    "preadmit": "planned",
}
# Actions that move the patient: the prior location ends and the new one starts now.
MOVEMENTS: frozenset[AdtAction] = frozenset({"transfer", "swap_beds", "cancel_transfer"})
# PatientClass[EncounterStatus]: every class is in progress but preadmit and unknown.
_CLASS_STATUS: dict[str, EncounterStatus] = {"P": "planned", "U": "unknown"}
_ARRIVALS: frozenset[AdtAction] = frozenset({"admit", "register"})
_NO_VISIT_STATE: frozenset[AdtAction] = frozenset({"update", "merge"})

LocationStatus = Literal["planned", "active", "reserved", "completed"]


@dataclass(frozen=True, slots=True)
class Placement:
    """A location an encounter refers to, and the bed status (table 0116) it asserts."""

    location: BedLocation
    bed_status: str | None
    current: bool


def encounter_status(action: AdtAction, encounter: Encounter) -> EncounterStatus:
    """Status after the event: forced by the action, else as normalised, else PV1-45
    (finished), else the IG's PatientClass[EncounterStatus] table."""
    forced = FORCED_STATUS.get(action)
    if forced is not None:
        return forced
    if encounter.status != "unknown":
        return encounter.status
    if encounter.discharged_at is not None:
        return "finished"
    if encounter.patient_class is not None and encounter.patient_class in codes.PATIENT_CLASS:
        return _CLASS_STATUS.get(encounter.patient_class, "in-progress")
    return "unknown" if action in _NO_VISIT_STATE else "in-progress"


def _location_status(status: EncounterStatus) -> LocationStatus:
    if status == "planned":
        return "planned"
    if status == "onleave":
        # The bed is held for the patient while away.
        return "reserved"
    if status in ("finished", "cancelled"):
        return "completed"
    return "active"


def _current_bed_status(status: EncounterStatus) -> str | None:
    if status in ("in-progress", "arrived", "onleave"):
        return "O"
    if status in ("finished", "cancelled"):
        return "U"
    return None


def _practitioner(index: int, doctor: Practitioner) -> Resource | None:
    name = clean(family=doctor.family, given=list(doctor.given))
    if doctor.id is None and not name:
        return None
    return clean(
        resourceType="Practitioner",
        id=f"att{index + 1}",
        identifier=[{"value": doctor.id}] if doctor.id else None,
        name=[name] if name else None,
    )


def _encounter_class(patient_class: str | None) -> tuple[str, str, str | None]:
    if patient_class is None:
        return codes.UNKNOWN_CLASS
    return codes.PATIENT_CLASS.get(patient_class, (codes.V2_0004, patient_class, None))


def _service(code: str) -> Resource:
    system, mapped, display = codes.HOSPITAL_SERVICE.get(code, (codes.V2_0069, code, None))
    return concept(system, mapped, display)


def _visit_identifier(number: Identifier, system_base: str) -> Resource:
    typed = number if number.type else number.model_copy(update={"type": "VN"})
    return identifier_json(typed, system_base, text="visit number" if typed.type == "VN" else None)


def _entry(
    location: BedLocation, status: LocationStatus, start: datetime | None, end: datetime | None
) -> Resource:
    period = clean(start=date_time(start) if start else None, end=date_time(end) if end else None)
    return clean(
        location={"reference": f"Location/{most_granular_id(location)}"},
        status=status,
        period=period,
    )


def encounter_resource(
    action: AdtAction,
    patient: Patient,
    encounter: Encounter,
    *,
    occurred_at: datetime,
    message_id: str,
    system_base: str,
) -> tuple[Resource, list[Placement]]:
    """The Encounter for ``encounter`` after ``action``, and the locations it refers to."""
    status = encounter_status(action, encounter)
    location_status = _location_status(status)
    entries: list[Resource] = []
    placements: list[Placement] = []
    if encounter.location is not None:
        start = None
        if action in _ARRIVALS:
            start = encounter.admitted_at or occurred_at
        elif action in MOVEMENTS:
            start = occurred_at
        end = None
        if location_status == "completed":
            end = (encounter.discharged_at if action == "discharge" else None) or occurred_at
        entries.append(_entry(encounter.location, location_status, start, end))
        placements.append(Placement(encounter.location, _current_bed_status(status), True))
    prior = encounter.prior_location
    if prior is not None and prior != encounter.location:
        moved = action in MOVEMENTS
        entries.append(_entry(prior, "completed", None, occurred_at if moved else None))
        placements.append(Placement(prior, "U" if moved else None, False))
    contained = [p for p in (_practitioner(i, d) for i, d in enumerate(encounter.attending)) if p]
    participants = [
        {
            "type": [concept(codes.V3_PARTICIPATION_TYPE, "ATND", "attender")],
            "individual": {"reference": f"#{p['id']}"},
        }
        for p in contained
    ]
    patient_class = _encounter_class(encounter.patient_class)
    hospitalization = clean(
        admitSource=concept(codes.V2_0023, encounter.admit_source)
        if encounter.admit_source
        else None,
        dischargeDisposition=concept(codes.V2_0112, encounter.discharge_disposition)
        if encounter.discharge_disposition
        else None,
    )
    period = clean(
        start=date_time(encounter.admitted_at) if encounter.admitted_at else None,
        # A period ends only for a visit that has ended: a cancelled discharge
        # (A13) still carries the PV1-45 it cancels.
        end=date_time(encounter.discharged_at)
        if encounter.discharged_at and status in ("finished", "cancelled")
        else None,
    )
    resource = clean(
        resourceType="Encounter",
        id=encounter_id(patient, encounter, message_id),
        contained=contained,
        identifier=[_visit_identifier(encounter.visit_number, system_base)]
        if encounter.visit_number
        else None,
        status=status,
        **{"class": coding(*patient_class)},
        serviceType=_service(encounter.service) if encounter.service else None,
        subject=patient_reference(patient, system_base),
        participant=participants,
        period=period,
        hospitalization=hospitalization,
        location=entries,
    )
    return resource, placements
