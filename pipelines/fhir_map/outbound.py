"""Canonical events → FHIR R4 resources: :func:`to_fhir`.

Pure: the output depends only on the event, the source envelope and the
identifier system base, and every resource id is derived from source
identifiers, so mapping the same message twice yields identical JSON.
"""

from __future__ import annotations

from engine.types import Envelope
from pipelines.fhir_map._json import Resource
from pipelines.fhir_map.encounter import Placement, encounter_resource
from pipelines.fhir_map.ids import DEFAULT_SYSTEM_BASE
from pipelines.fhir_map.location import location_resources
from pipelines.fhir_map.observation import observation_resources
from pipelines.fhir_map.patient import merge_links, merged_patient_resource, patient_resource
from pipelines.fhir_map.provenance import provenance_resource
from schemas.events import AdtEvent, Encounter, LocationEvent, ObservationEvent, Patient


def _locations(placements: list[Placement], system_base: str) -> list[Resource]:
    # Current locations first: in a swap one patient's prior bed is the other's
    # current one, and the bed is occupied.
    ordered = [p for p in placements if p.current] + [p for p in placements if not p.current]
    resources: list[Resource] = []
    for placement in ordered:
        status = placement.bed_status if placement.location.bed is not None else None
        resources += location_resources(
            placement.location, system_base=system_base, operational_status=status
        )
    return resources


def _adt(event: AdtEvent, system_base: str) -> list[Resource]:
    merged = event.merged_identifiers if event.action == "merge" else []
    patients = [
        patient_resource(
            event.patient, system_base=system_base, links=merge_links(merged, system_base)
        )
    ]
    if event.other_patient is not None:
        patients.append(patient_resource(event.other_patient, system_base=system_base))
    if merged:
        patients.append(merged_patient_resource(merged, event.patient, system_base=system_base))
    visits: list[tuple[Patient, Encounter]] = []
    if event.encounter is not None:
        visits.append((event.patient, event.encounter))
    if event.other_encounter is not None:
        visits.append((event.other_patient or event.patient, event.other_encounter))
    encounters: list[Resource] = []
    placements: list[Placement] = []
    for patient, encounter in visits:
        resource, held = encounter_resource(
            event.action,
            patient,
            encounter,
            occurred_at=event.occurred_at,
            message_id=event.message_id,
            system_base=system_base,
        )
        encounters.append(resource)
        placements += held
    return [*patients, *_locations(placements, system_base), *encounters]


def _location_event(event: LocationEvent, system_base: str) -> list[Resource]:
    return location_resources(
        event.location,
        system_base=system_base,
        operational_status=event.operational_status,
        top=event.physical_type,
        name=event.name,
        status=event.status,
    )


def _unique(resources: list[Resource]) -> list[Resource]:
    seen: set[tuple[str, str]] = set()
    unique: list[Resource] = []
    for resource in resources:
        key = (resource["resourceType"], resource["id"])
        if key not in seen:
            seen.add(key)
            unique.append(resource)
    return unique


def to_fhir(
    event: AdtEvent | ObservationEvent | LocationEvent,
    source: Envelope,
    *,
    system_base: str = DEFAULT_SYSTEM_BASE,
) -> list[Resource]:
    """The FHIR R4 resources for ``event``, as JSON-ready dicts, Provenance last.

    ``source`` is the envelope the event came in: its receive time, headers
    (``sending_application``, ``sending_facility``) and correlation id feed
    the Provenance. ``system_base`` prefixes the identifier systems made from
    HL7 assigning authorities (``urn:wardstream:id:<authority>``).
    """
    action: str | None = None
    if isinstance(event, AdtEvent):
        resources = _adt(event, system_base)
        action = event.action
    elif isinstance(event, ObservationEvent):
        patient = patient_resource(event.patient, system_base=system_base)
        resources = [patient, *observation_resources(event, system_base=system_base)]
    else:
        resources = _location_event(event, system_base)
    resources = _unique(resources)
    provenance = provenance_resource(
        resources,
        source,
        kind=event.kind,
        action=action,
        trigger=event.trigger,
        message_id=event.message_id,
        occurred_at=event.occurred_at,
        system_base=system_base,
    )
    return [*resources, provenance]
