"""FHIR R4 input → canonical events: the ``normalize.fhir`` step on ``raw.fhir``.

Each record holds one resource or a Bundle (batch, transaction, or a
Subscription notification). Every Patient, Encounter, Location and
Observation in it becomes canonical events through ``from_fhir`` (which
resolves references between a Bundle's entries): AdtEvent → ``events.adt``
and ObservationEvent → ``events.obs``, keyed by patient; LocationEvent →
``events.adt``, keyed by ward. Other resource types are not events and are
passed over. A record that cannot be mapped is a dead letter as a whole,
naming every failing entry. Ingest has validated the input already (when
``fhir.validate_on_ingest`` is on), so it is not validated again here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime

from engine.types import Emit, Envelope, KeyedState
from pipelines.deadletter import dead_letter
from pipelines.fhir_map import FhirInputError, from_fhir
from pipelines.hl7v2.normalize import CANONICAL_CONTENT_TYPE
from schemas.events import AdtEvent, LocationEvent, ObservationEvent
from schemas.topics import EVENTS_ADT, EVENTS_OBS

STEP_ID = "normalize.fhir"
#: Input that can hold canonical events: the four resource types, or a Bundle of them.
MAPPED_TYPES = frozenset({"Patient", "Encounter", "Location", "Observation", "Bundle"})


def event_route(event: AdtEvent | ObservationEvent | LocationEvent) -> tuple[str, str]:
    """(topic, key): patient streams keyed by patient, locations by ward."""
    if isinstance(event, AdtEvent):
        return EVENTS_ADT, event.patient_id
    if isinstance(event, ObservationEvent):
        return EVENTS_OBS, event.patient_id
    return EVENTS_ADT, event.location.ward


class NormalizeFhir:
    """Turns ``raw.fhir`` records into canonical events."""

    step_id = STEP_ID

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def process(self, envelope: Envelope, state: KeyedState) -> Sequence[Emit]:
        try:
            document = json.loads(envelope.payload)
        except ValueError as exc:
            return [self._dead(envelope, f"payload is not JSON: {exc}")]
        if not isinstance(document, dict) or "resourceType" not in document:
            return [self._dead(envelope, "payload is not a FHIR resource")]
        if document.get("resourceType") not in MAPPED_TYPES:
            return []
        try:
            events = from_fhir(document, received_at=envelope.received_at, validate=False)
        except FhirInputError as exc:
            return [self._dead(envelope, str(exc))]
        emits = []
        for event in events:
            topic, key = event_route(event)
            out = envelope.derive(
                step_id=STEP_ID,
                at=self._clock(),
                content_type=CANONICAL_CONTENT_TYPE,
                payload=event.model_dump_json(),
            )
            emits.append(Emit(topic=topic, envelope=out, key=key))
        return emits

    def _dead(self, envelope: Envelope, reason: str) -> Emit:
        return dead_letter(envelope, step_id=STEP_ID, reason=reason, at=self._clock())


__all__ = ["MAPPED_TYPES", "STEP_ID", "NormalizeFhir", "event_route"]
