"""The ``census`` step: held beds per ward as keyed state, from ``events.adt``.

Every ADT action is followed:

- admit, register (when a location is sent), change_to_inpatient: occupy PV1-3;
- transfer: move to PV1-3; update: move only a patient already in the census
  whose ward, or named bed, differs (some feeds move with A08);
- discharge, change_to_outpatient: release; preadmit: nothing;
- cancel_admit: back to where the patient was before the admission it cancels
  (released if nowhere, or if that bed was taken since);
- cancel_transfer: back to the bed before the transfer it cancels;
  cancel_discharge: back to the bed discharged from. When that bed is taken
  meanwhile, the location in the message, else an unassigned place in that ward.
  A cancel also gives back the leave mark the patient had before the move;
- swap_beds: the two patients exchange beds; leave_out / leave_return: the bed
  stays held, the patient is marked on leave / back;
- merge: a bed held under a merged identifier passes to the surviving patient.

The state layout is in :mod:`pipelines.census._beds`, the moves per action in
:mod:`pipelines.census._actions`. Applying an event twice leaves the same
state: the keys of a patient's recent events are kept, and a repeat is a
no-op, which is what makes the cancels safe to replay.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime

from pydantic import TypeAdapter, ValidationError

from engine.types import Emit, Envelope, KeyedState
from pipelines.census._actions import apply_event
from pipelines.census._beds import LEAVE, WARD, load_map, slot_for
from pipelines.deadletter import dead_letter
from schemas.census import WardCensus
from schemas.events import AdtEvent, BedLocation, CanonicalEvent
from schemas.topics import CENSUS_WARDS

STEP_ID = "census"
CENSUS_CONTENT_TYPE = "application/vnd.wardstream.census+json"

__all__ = [
    "CENSUS_CONTENT_TYPE",
    "STEP_ID",
    "CensusStep",
    "apply_event",
    "bed_key",
    "census_snapshot",
    "ward_census",
]

_EVENTS: TypeAdapter[CanonicalEvent] = TypeAdapter(CanonicalEvent)


def bed_key(location: BedLocation, patient_id: str) -> str:
    """The slot a patient takes in a ward: room/bed, or an unassigned slot of their own."""
    return slot_for(location, patient_id)


def ward_census(state: KeyedState, ward: str, as_of: datetime) -> WardCensus:
    """One ward's held beds and how many of their patients are on leave."""
    beds = load_map(state, WARD + ward)
    on_leave = load_map(state, LEAVE + ward)
    return WardCensus(ward=ward, occupied=len(beds), on_leave=len(on_leave), beds=beds, as_of=as_of)


def census_snapshot(state: KeyedState) -> dict[str, dict[str, str]]:
    """Every ward's held beds, ward → {slot: patient}."""
    return {
        key[len(WARD) :]: dict(json.loads(value))
        for key, value in state.items()
        if key.startswith(WARD)
    }


class CensusStep:
    """Keeps held beds per ward and emits each changed ward's census on ``census.wards``."""

    step_id = STEP_ID

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def process(self, envelope: Envelope, state: KeyedState) -> Sequence[Emit]:
        try:
            event = _EVENTS.validate_json(envelope.payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "event"
            reason = f"not a canonical event: {first['type']} at {where}"
            return [dead_letter(envelope, step_id=STEP_ID, reason=reason, at=self._clock())]
        if not isinstance(event, AdtEvent):
            # Location events share events.adt; they do not move patients.
            return []
        emits = []
        at = self._clock()
        for ward in sorted(apply_event(state, event)):
            record = ward_census(state, ward, event.occurred_at)
            out = envelope.derive(
                step_id=STEP_ID,
                at=at,
                content_type=CENSUS_CONTENT_TYPE,
                payload=record.model_dump_json(),
            )
            emits.append(Emit(topic=CENSUS_WARDS, envelope=out, key=ward))
        return emits
