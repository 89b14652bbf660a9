"""FHIR R4 → canonical events: :func:`from_fhir`.

Patient → AdtEvent ``update``; Encounter → AdtEvent by status and location
history; Location → LocationEvent; Observation → ObservationEvent; a Bundle
(batch, transaction, collection, searchset, history, subscription-notification)
→ the events of its entries, with references between entries resolved.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from pipelines.fhir_map._inbound_adt import encounter_event, patient_event
from pipelines.fhir_map._inbound_common import Context, items, obj, text
from pipelines.fhir_map._inbound_location import location_event
from pipelines.fhir_map._inbound_obs import observation_event
from pipelines.fhir_map._json import Resource
from pipelines.fhir_map.ids import DEFAULT_SYSTEM_BASE
from pipelines.fhir_map.outcome import FhirInputError, FhirIssue
from pipelines.fhir_map.validate import validate_resource
from schemas.events import AdtEvent, LocationEvent, ObservationEvent

CanonicalEvents = list[AdtEvent | ObservationEvent | LocationEvent]
Mapper = Callable[[Resource, Context, str], CanonicalEvents]

BUNDLE_TYPES = frozenset(
    {"batch", "transaction", "collection", "searchset", "history", "subscription-notification"}
)


def _patient(resource: Resource, ctx: Context, path: str) -> CanonicalEvents:
    return [patient_event(resource, ctx, path)]


def _encounter(resource: Resource, ctx: Context, path: str) -> CanonicalEvents:
    return [encounter_event(resource, ctx, path)]


def _observation(resource: Resource, ctx: Context, path: str) -> CanonicalEvents:
    return [observation_event(resource, ctx, path)]


def _location(resource: Resource, ctx: Context, path: str) -> CanonicalEvents:
    return list(location_event(resource, ctx, path))


MAPPERS: dict[str, Mapper] = {
    "Patient": _patient,
    "Encounter": _encounter,
    "Observation": _observation,
    "Location": _location,
}


def _map(mapper: Mapper, resource: Resource, ctx: Context, path: str) -> CanonicalEvents:
    try:
        return mapper(resource, ctx, path)
    except ValidationError as exc:
        # Valid FHIR that still makes no canonical event (an empty ward code...).
        issues = [
            FhirIssue("error", "invalid", f"cannot map to a canonical event: {e['msg']}", path)
            for e in exc.errors()
        ]
        raise FhirInputError(issues) from exc


def _index(bundle: Resource, ctx: Context) -> None:
    for entry in items(bundle, "entry"):
        resource = obj(entry, "resource")
        if resource:
            ctx.add(resource, text(entry, "fullUrl"))
            if resource.get("resourceType") == "Bundle":
                _index(resource, ctx)


def _bundle(bundle: Resource, ctx: Context, path: str) -> CanonicalEvents:
    """The events of the entries; entries of other resource types (a Practitioner, a
    SubscriptionStatus, an OperationOutcome) are context only and give none."""
    bundle_type = text(bundle, "type")
    if bundle_type not in BUNDLE_TYPES:
        raise FhirInputError.single(
            "not-supported", f"{bundle_type} Bundles are not accepted", f"{path}.type"
        )
    events: CanonicalEvents = []
    issues: list[FhirIssue] = []
    for index, entry in enumerate(items(bundle, "entry")):
        resource = obj(entry, "resource")
        resource_type = resource.get("resourceType")
        where = f"{path}.entry[{index}].resource"
        try:
            if resource_type == "Bundle":
                events += _bundle(resource, ctx, where)
            elif isinstance(resource_type, str) and resource_type in MAPPERS:
                events += _map(MAPPERS[resource_type], resource, ctx, where)
        except FhirInputError as exc:
            issues += exc.issues
    if issues:
        raise FhirInputError(issues)
    return events


def from_fhir(
    resource: dict[str, Any],
    *,
    received_at: datetime,
    system_base: str = DEFAULT_SYSTEM_BASE,
    validate: bool = True,
) -> CanonicalEvents:
    """Canonical events from a FHIR R4 resource or Bundle.

    The input is validated first (``validate=False`` skips it for input
    already validated); problems raise :class:`FhirInputError` with one issue
    per problem, each with its FHIRPath expression. ``received_at`` stands in
    for event times the resource does not carry.
    """
    if received_at.tzinfo is None:
        raise ValueError("received_at must be an aware datetime")
    if validate:
        validate_resource(resource)
    resource_type = text(resource, "resourceType")
    if resource_type is None:
        raise FhirInputError.single("required", "resourceType is missing", "resourceType")
    ctx = Context(received_at=received_at, system_base=system_base)
    if resource_type == "Bundle":
        _index(resource, ctx)
        return _bundle(resource, ctx, "Bundle")
    mapper = MAPPERS.get(resource_type)
    if mapper is None:
        raise FhirInputError.single(
            "not-supported",
            f"{resource_type} resources are not accepted (Patient, Encounter, Location,"
            " Observation or a Bundle of them)",
            resource_type,
        )
    return _map(mapper, resource, ctx, resource_type)
