"""Canonical patient → FHIR Patient (IG PID[Patient], CX[Identifier], XPN[HumanName], ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipelines.fhir_map import _codes as codes
from pipelines.fhir_map._json import Resource, clean, concept, date_time, fhir_date, reference
from pipelines.fhir_map.ids import identifier_system, patient_id
from schemas.events import Address, HumanName, Identifier, Patient, Telecom


def identifier_json(identifier: Identifier, system_base: str, text: str | None = None) -> Resource:
    """CX → Identifier: CX.4 → system, CX.5 → type (v2-0203), CX.1 → value."""
    type_ = None
    if identifier.type is not None:
        display = codes.IDENTIFIER_TYPE.get(identifier.type)
        type_ = clean(**concept(codes.V2_0203, identifier.type, display), text=text)
    return clean(
        type=type_,
        system=identifier_system(identifier.authority, system_base),
        value=identifier.value,
    )


def patient_reference(patient: Patient, system_base: str) -> Resource:
    """A literal reference that also carries the primary identifier, so a reader
    without the Patient resource still knows who it is."""
    primary = patient.identifiers[0]
    return reference(
        "Patient",
        patient_id(primary),
        identifier=clean(
            system=identifier_system(primary.authority, system_base), value=primary.value
        ),
    )


def _name(name: HumanName) -> Resource:
    return clean(
        use=codes.NAME_USE.get(name.use) if name.use else None,
        family=name.family,
        given=list(name.given),
        prefix=[name.prefix] if name.prefix else None,
        suffix=[name.suffix] if name.suffix else None,
    )


def _telecom(telecom: Telecom) -> Resource:
    return clean(
        system=telecom.system,
        value=telecom.value,
        use=codes.TELECOM_USE.get(telecom.use) if telecom.use else None,
    )


def _address(address: Address) -> Resource:
    return clean(
        use=codes.ADDRESS_USE.get(address.use) if address.use else None,
        line=list(address.lines),
        city=address.city,
        state=address.state,
        postalCode=address.postal_code,
        country=address.country,
    )


def _deceased(patient: Patient) -> dict[str, Any]:
    # PID-29 wins over PID-30 (the IG maps PID-30 only when PID-29 is empty).
    if patient.deceased_at is not None:
        return {"deceasedDateTime": date_time(patient.deceased_at)}
    if patient.deceased is not None:
        return {"deceasedBoolean": patient.deceased}
    return {}


def patient_resource(
    patient: Patient,
    *,
    system_base: str,
    links: Sequence[Resource] = (),
) -> Resource:
    """The Patient resource for ``patient`` (PID), with optional ``link`` entries."""
    names = [n for n in (_name(name) for name in patient.names) if n.keys() - {"use"}]
    addresses = [a for a in (_address(addr) for addr in patient.addresses) if a.keys() - {"use"}]
    return clean(
        resourceType="Patient",
        id=patient_id(patient.identifiers[0]),
        identifier=[identifier_json(i, system_base) for i in patient.identifiers],
        active=True,
        name=names,
        telecom=[_telecom(t) for t in patient.telecom],
        gender=patient.sex,
        birthDate=fhir_date(patient.birth_date) if patient.birth_date else None,
        **_deceased(patient),
        address=addresses,
        link=list(links),
    )


def merged_patient_resource(
    merged: Sequence[Identifier], survivor: Patient, *, system_base: str
) -> Resource:
    """The record merged away by an A40 (MRG-1): inactive, replaced by the survivor."""
    return {
        "resourceType": "Patient",
        "id": patient_id(merged[0]),
        "identifier": [identifier_json(i, system_base) for i in merged],
        "active": False,
        "link": [{"other": patient_reference(survivor, system_base), "type": "replaced-by"}],
    }


def merge_links(merged: Sequence[Identifier], system_base: str) -> list[Resource]:
    """The survivor's ``link`` to the record it replaces."""
    if not merged:
        return []
    first = merged[0]
    other = reference(
        "Patient",
        patient_id(first),
        identifier=clean(system=identifier_system(first.authority, system_base), value=first.value),
    )
    return [{"other": other, "type": "replaces"}]
