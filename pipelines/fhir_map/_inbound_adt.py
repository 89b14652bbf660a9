"""FHIR Patient and Encounter → canonical AdtEvent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipelines.fhir_map import _codes as codes
from pipelines.fhir_map._inbound_common import (
    Context,
    first_code,
    identifier,
    instant,
    items,
    message_id,
    obj,
    patient_from,
    strings,
    subject_patient,
    text,
)
from pipelines.fhir_map._inbound_location import referenced_location
from pipelines.fhir_map._json import Resource
from schemas.events import (
    AdtAction,
    AdtEvent,
    BedLocation,
    Encounter,
    EncounterStatus,
    Identifier,
    Practitioner,
)

_STATUS: dict[str, EncounterStatus] = {
    "planned": "planned",
    "arrived": "arrived",
    "triaged": "arrived",
    "in-progress": "in-progress",
    "onleave": "onleave",
    "finished": "finished",
    "cancelled": "cancelled",
    "entered-in-error": "cancelled",
    "unknown": "unknown",
}
_ACTION: dict[str, AdtAction] = {
    "planned": "preadmit",
    "arrived": "register",
    "triaged": "register",
    "onleave": "leave_out",
    "finished": "discharge",
    "cancelled": "cancel_admit",
    "entered-in-error": "cancel_admit",
    "unknown": "update",
}
_HOSPITAL_SERVICE = {(system, code): v2 for v2, (system, code, _) in codes.HOSPITAL_SERVICE.items()}
_OPEN = ("active", "reserved", "planned")
_NEVER = datetime.min.replace(tzinfo=UTC)


def patient_event(resource: Resource, ctx: Context, path: str) -> AdtEvent:
    """Patient → a demographics update."""
    return AdtEvent(
        action="update",
        trigger="Patient",
        message_id=message_id(resource),
        occurred_at=ctx.occurred(resource),
        patient=patient_from(resource, ctx, path),
    )


def _patient_class(resource: Resource) -> str | None:
    klass = obj(resource, "class")
    code = text(klass, "code")
    if code is None:
        return None
    system = klass.get("system")
    if system == codes.V3_NULL_FLAVOR:
        return None
    if system == codes.V3_ACT_CODE or system is None:
        return codes.ACT_CODE_TO_CLASS.get(code, code if system is None else None)
    return code


def _service(resource: Resource) -> str | None:
    service = obj(resource, "serviceType")
    for entry in items(service, "coding"):
        code = text(entry, "code")
        if code is not None:
            return _HOSPITAL_SERVICE.get((text(entry, "system") or "", code), code)
    return text(service, "text")


def visit_number(resource: Resource, ctx: Context) -> Identifier | None:
    found = [
        i for i in (identifier(d, ctx.system_base) for d in items(resource, "identifier")) if i
    ]
    return next((i for i in found if i.type == "VN"), found[0] if found else None)


def _attending(resource: Resource, ctx: Context) -> list[Practitioner]:
    doctors: list[Practitioner] = []
    for participant in items(resource, "participant"):
        roles = {first_code(t) for t in items(participant, "type")}
        if "ATND" not in roles:
            continue
        ref = obj(participant, "individual")
        target = ctx.resolve(ref, resource) or {}
        name = next(iter(items(target, "name")), {})
        doctor_id = text(next(iter(items(target, "identifier")), {}), "value")
        doctor = Practitioner(
            id=doctor_id or text(obj(ref, "identifier"), "value"),
            family=text(name, "family"),
            given=strings(name, "given"),
        )
        if doctor.id or doctor.family or doctor.given:
            doctors.append(doctor)
    return doctors


def _end(entry: dict[str, Any]) -> datetime:
    return instant(obj(entry, "period").get("end")) or _NEVER


def _placed(
    resource: Resource, ctx: Context
) -> tuple[dict[str, Any] | None, BedLocation | None, BedLocation | None]:
    """(current entry, current location, prior location) from Encounter.location."""
    entries = [
        (entry, referenced_location(obj(entry, "location"), resource, ctx))
        for entry in items(resource, "location")
    ]
    known = [(entry, where) for entry, where in entries if where is not None]
    current = next(((e, w) for e, w in known if text(e, "status") in _OPEN), None)
    completed = sorted(
        ((e, w) for e, w in known if text(e, "status") == "completed"),
        key=lambda pair: _end(pair[0]),
        reverse=True,
    )
    if current is None and completed and text(resource, "status") in ("finished", "cancelled"):
        current, completed = completed[0], completed[1:]
    prior = completed[0][1] if completed else None
    if current is None:
        return None, None, prior
    return current[0], current[1], prior


def encounter_event(resource: Resource, ctx: Context, path: str) -> AdtEvent:
    """Encounter → admit / transfer / discharge / preadmit / cancel / leave / update,
    from its status and its location history."""
    status = text(resource, "status") or "unknown"
    entry, location, prior = _placed(resource, ctx)
    if status == "in-progress":
        action: AdtAction = (
            "update" if location is None else "transfer" if prior is not None else "admit"
        )
    else:
        action = _ACTION.get(status, "update")
    period = obj(resource, "period")
    admitted_at, discharged_at = instant(period.get("start")), instant(period.get("end"))
    hospitalization = obj(resource, "hospitalization")
    encounter = Encounter(
        visit_number=visit_number(resource, ctx),
        patient_class=_patient_class(resource),
        status=_STATUS.get(status, "unknown"),
        location=location,
        prior_location=prior,
        attending=_attending(resource, ctx),
        service=_service(resource),
        admit_source=first_code(obj(hospitalization, "admitSource")),
        discharge_disposition=first_code(obj(hospitalization, "dischargeDisposition")),
        admitted_at=admitted_at,
        discharged_at=discharged_at,
    )
    moved: datetime | None = None
    if entry is not None and action in ("admit", "transfer", "discharge"):
        entry_period = obj(entry, "period")
        moved = instant(entry_period.get("end" if action == "discharge" else "start"))
    when = {"admit": admitted_at, "discharge": discharged_at}.get(action)
    return AdtEvent(
        action=action,
        trigger="Encounter",
        message_id=message_id(resource),
        occurred_at=ctx.occurred(resource, when, moved),
        patient=subject_patient(resource, ctx, path),
        encounter=encounter,
    )
