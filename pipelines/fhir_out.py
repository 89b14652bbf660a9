"""Canonical events → FHIR R4: the ``fhir.out`` step on ``events.adt`` and ``events.obs``.

One transaction Bundle per event (``PUT Type/id`` entries under the mapping's
deterministic ids, so a replay rewrites the same resources) on ``fhir.out``,
keyed by patient (by ward for location events). Events that came from FHIR
input are passed over: the result store already holds those resources as
received, and writing them back would echo them to where they came from.
With ``validate`` on, every produced resource is validated against FHIR R4
first and an invalid one makes the event a dead letter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime

from pydantic import TypeAdapter, ValidationError

from engine.types import Emit, Envelope, KeyedState
from pipelines.deadletter import dead_letter
from pipelines.fhir_in import STEP_ID as FHIR_INPUT_STEP
from pipelines.fhir_in import event_route
from pipelines.fhir_map import FhirInputError, to_fhir, transaction_bundle, validate_resource
from schemas.events import CanonicalEvent
from schemas.topics import FHIR_OUT

STEP_ID = "fhir.out"
FHIR_CONTENT_TYPE = "application/fhir+json"
_EVENT: TypeAdapter[CanonicalEvent] = TypeAdapter(CanonicalEvent)


def from_fhir_input(envelope: Envelope) -> bool:
    """Whether the envelope's event was made from FHIR input (``raw.fhir``)."""
    return any(stage.step_id == FHIR_INPUT_STEP for stage in envelope.trail)


class FhirOut:
    """Turns canonical events into transaction Bundles on ``fhir.out``."""

    step_id = STEP_ID

    def __init__(self, clock: Callable[[], datetime], *, validate: bool = False) -> None:
        self._clock = clock
        self._validate = validate

    def process(self, envelope: Envelope, state: KeyedState) -> Sequence[Emit]:
        if from_fhir_input(envelope):
            return []
        try:
            event = _EVENT.validate_json(envelope.payload)
        except ValidationError as exc:
            reason = f"not a canonical event: {exc.error_count()} validation errors"
            return [dead_letter(envelope, step_id=STEP_ID, reason=reason, at=self._clock())]
        try:
            resources = to_fhir(event, envelope)
            if self._validate:
                for resource in resources:
                    validate_resource(resource)
            bundle = transaction_bundle(resources, conditional="put")
        except (FhirInputError, ValueError) as exc:
            reason = f"FHIR mapping failed: {exc}"
            return [dead_letter(envelope, step_id=STEP_ID, reason=reason, at=self._clock())]
        out = envelope.derive(
            step_id=STEP_ID,
            at=self._clock(),
            content_type=FHIR_CONTENT_TYPE,
            payload=json.dumps(bundle, separators=(",", ":"), ensure_ascii=False),
        )
        return [Emit(topic=FHIR_OUT, envelope=out, key=event_route(event)[1])]


__all__ = ["FHIR_CONTENT_TYPE", "STEP_ID", "FhirOut", "from_fhir_input"]
