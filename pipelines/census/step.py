"""The ``census`` step: occupied beds per ward as keyed state, from ``events.adt``.

State keys: ``ward:<code>`` holds the ward's occupied beds (bed → patient),
``patient:<id>`` where that patient lies. Applying an event twice leaves the
same state, so a replay never doubles a bed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime

from pydantic import ValidationError

from engine.types import Emit, Envelope, KeyedState
from pipelines.deadletter import dead_letter
from schemas.census import WardCensus
from schemas.events import AdtEvent, BedLocation
from schemas.topics import CENSUS_WARDS

STEP_ID = "census"
CENSUS_CONTENT_TYPE = "application/vnd.wardstream.census+json"
_WARD = "ward:"
_PATIENT = "patient:"


def bed_key(location: BedLocation, patient_id: str) -> str:
    """The slot a patient takes in a ward: room/bed, or an unassigned slot of their own."""
    if location.bed:
        return f"{location.room}/{location.bed}" if location.room else location.bed
    return f"unassigned:{patient_id}"


def _load(state: KeyedState, key: str) -> dict[str, str]:
    raw = state.get(key)
    return {} if raw is None else dict(json.loads(raw))


def _store(state: KeyedState, key: str, value: dict[str, str]) -> None:
    if value:
        state.put(key, json.dumps(value, sort_keys=True, separators=(",", ":")).encode())
    else:
        state.delete(key)


def _release(state: KeyedState, patient_id: str) -> str | None:
    """Free the patient's bed; returns the ward they left."""
    where = _load(state, _PATIENT + patient_id)
    if not where:
        return None
    ward, slot = where["ward"], where["bed"]
    beds = _load(state, _WARD + ward)
    if beds.get(slot) == patient_id:
        del beds[slot]
        _store(state, _WARD + ward, beds)
    state.delete(_PATIENT + patient_id)
    return ward


def _occupy(state: KeyedState, patient_id: str, location: BedLocation) -> str:
    slot = bed_key(location, patient_id)
    beds = _load(state, _WARD + location.ward)
    displaced = beds.get(slot)
    if displaced is not None and displaced != patient_id:
        # The feed put someone into an occupied bed: the newest message wins, and
        # the displaced patient is no longer counted in that bed.
        state.delete(_PATIENT + displaced)
    beds[slot] = patient_id
    _store(state, _WARD + location.ward, beds)
    _store(state, _PATIENT + patient_id, {"ward": location.ward, "bed": slot})
    return location.ward


def apply_event(state: KeyedState, event: AdtEvent) -> set[str]:
    """Apply one ADT event to the census; returns the wards whose beds changed."""
    changed: set[str] = set()
    left = _release(state, event.patient_id)
    if left is not None:
        changed.add(left)
    if event.action != "discharge" and event.location is not None:
        changed.add(_occupy(state, event.patient_id, event.location))
    return changed


def ward_census(state: KeyedState, ward: str, as_of: datetime) -> WardCensus:
    beds = _load(state, _WARD + ward)
    return WardCensus(ward=ward, occupied=len(beds), beds=beds, as_of=as_of)


def census_snapshot(state: KeyedState) -> dict[str, dict[str, str]]:
    """Every ward's occupied beds, ward → {bed: patient}."""
    return {
        key[len(_WARD) :]: dict(json.loads(value))
        for key, value in state.items()
        if key.startswith(_WARD)
    }


class CensusStep:
    """Keeps occupied beds per ward and emits each changed ward's census."""

    step_id = STEP_ID

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def process(self, envelope: Envelope, state: KeyedState) -> Sequence[Emit]:
        try:
            event = AdtEvent.model_validate_json(envelope.payload)
        except ValidationError as exc:
            reason = f"not a canonical ADT event: {exc.errors()[0]['msg']}"
            return [dead_letter(envelope, step_id=STEP_ID, reason=reason, at=self._clock())]
        emits = []
        for ward in sorted(apply_event(state, event)):
            record = ward_census(state, ward, event.occurred_at)
            out = envelope.derive(
                step_id=STEP_ID,
                at=self._clock(),
                content_type=CENSUS_CONTENT_TYPE,
                payload=record.model_dump_json(),
            )
            emits.append(Emit(topic=CENSUS_WARDS, envelope=out, key=ward))
        return emits
