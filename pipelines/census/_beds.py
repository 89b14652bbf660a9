"""The census state and the moves on it, over a step's :class:`KeyedState`.

Keys:

- ``ward:<code>``: the ward's held beds, slot → patient (a slot is ``room/bed``,
  ``bed``, or ``unassigned:<patient>`` when the feed names no bed);
- ``leave:<code>``: the held beds whose patient is on leave, slot → patient;
- ``patient:<id>``: where the patient lies, whether on leave, their last few
  moves (so a cancel can undo exactly the move it cancels) and the keys of the
  last events applied (so an event applied twice changes nothing the second time);
- ``released:seq`` and ``released:<n>``: patients who left their bed, in buckets
  of :data:`BUCKET`. Their records are kept for the last :data:`KEEP_BUCKETS`
  buckets, long enough for a late A13 or A12, then dropped, so the state stays
  bounded by the beds plus that window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from engine.types import KeyedState
from schemas.events import BedLocation

WARD = "ward:"
LEAVE = "leave:"
PATIENT = "patient:"
RELEASED = "released:"
_SEQ = RELEASED + "seq"
UNASSIGNED = "unassigned:"

HISTORY = 8
SEEN = 16
BUCKET = 256
KEEP_BUCKETS = 16


class Bed(NamedTuple):
    """A held place: the ward and the slot within it."""

    ward: str
    slot: str


def slot_for(location: BedLocation, patient_id: str) -> str:
    """The slot a patient takes in a ward: room/bed, or an unassigned slot of their own."""
    if location.bed:
        return f"{location.room}/{location.bed}" if location.room else location.bed
    return f"{UNASSIGNED}{patient_id}"


def bed_at(location: BedLocation, patient_id: str) -> Bed:
    return Bed(location.ward, slot_for(location, patient_id))


def for_patient(bed: Bed, patient_id: str) -> Bed:
    """``bed`` as ``patient_id`` would hold it: an unassigned slot is personal."""
    if bed.slot.startswith(UNASSIGNED):
        return Bed(bed.ward, f"{UNASSIGNED}{patient_id}")
    return bed


@dataclass
class Move:
    """One move of a patient, kept so that a cancel can reverse it."""

    action: str
    origin: Bed | None
    target: Bed | None
    was_on_leave: bool = False

    def to_json(self) -> list[Any]:
        return [self.action, self.origin, self.target, self.was_on_leave]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Move:
        action, origin, target, was_on_leave = raw
        return cls(
            action,
            Bed(*origin) if origin else None,
            Bed(*target) if target else None,
            bool(was_on_leave),
        )


@dataclass
class PatientRecord:
    """What the census knows about one patient."""

    bed: Bed | None = None
    on_leave: bool = False
    history: list[Move] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    released_seq: int | None = None

    def remember(self, move: Move) -> None:
        self.history = [*self.history, move][-HISTORY:]

    def last(self, actions: frozenset[str]) -> Move | None:
        """The latest move made by one of ``actions``, taken out of the history:
        a move is cancelled at most once."""
        for index in range(len(self.history) - 1, -1, -1):
            if self.history[index].action in actions:
                return self.history.pop(index)
        return None

    def to_bytes(self) -> bytes:
        raw = {
            "bed": self.bed,
            "leave": self.on_leave,
            "history": [move.to_json() for move in self.history],
            "seen": self.seen,
            "released": self.released_seq,
        }
        return json.dumps(raw, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> PatientRecord:
        raw = json.loads(data)
        return cls(
            bed=Bed(*raw["bed"]) if raw.get("bed") else None,
            on_leave=bool(raw.get("leave", False)),
            history=[Move.from_json(move) for move in raw.get("history", [])],
            seen=list(raw.get("seen", [])),
            released_seq=raw.get("released"),
        )


def load_map(state: KeyedState, key: str) -> dict[str, str]:
    raw = state.get(key)
    return {} if raw is None else dict(json.loads(raw))


def _store_map(state: KeyedState, key: str, value: dict[str, str]) -> None:
    if value:
        state.put(key, json.dumps(value, sort_keys=True, separators=(",", ":")).encode())
    else:
        state.delete(key)


class Beds:
    """The census moves. Each returns the wards whose beds or leave changed."""

    def __init__(self, state: KeyedState) -> None:
        self.state = state

    def record(self, patient_id: str) -> PatientRecord | None:
        raw = self.state.get(PATIENT + patient_id)
        return None if raw is None else PatientRecord.from_bytes(raw)

    def save(self, patient_id: str, record: PatientRecord) -> None:
        self.state.put(PATIENT + patient_id, record.to_bytes())

    def forget(self, patient_id: str) -> None:
        self.state.delete(PATIENT + patient_id)

    def holder(self, bed: Bed) -> str | None:
        return load_map(self.state, WARD + bed.ward).get(bed.slot)

    def is_free_for(self, bed: Bed, patient_id: str) -> bool:
        return self.holder(bed) in (None, patient_id)

    def _put(self, bed: Bed, patient_id: str, on_leave: bool) -> None:
        beds = load_map(self.state, WARD + bed.ward)
        beds[bed.slot] = patient_id
        _store_map(self.state, WARD + bed.ward, beds)
        leave = load_map(self.state, LEAVE + bed.ward)
        if on_leave:
            leave[bed.slot] = patient_id
        else:
            leave.pop(bed.slot, None)
        _store_map(self.state, LEAVE + bed.ward, leave)

    def _take(self, bed: Bed, patient_id: str) -> None:
        for prefix in (WARD, LEAVE):
            held = load_map(self.state, prefix + bed.ward)
            if held.get(bed.slot) == patient_id:
                del held[bed.slot]
                _store_map(self.state, prefix + bed.ward, held)

    def place(
        self,
        patient_id: str,
        record: PatientRecord,
        target: Bed,
        action: str,
        *,
        on_leave: bool | None = None,
    ) -> set[str]:
        """Move the patient into ``target``, leaving their current bed, on leave
        or not as ``on_leave`` says (``None``: as before). The newest message
        wins an occupied bed: its holder is no longer counted in it."""
        origin, was_on_leave = record.bed, record.on_leave
        if on_leave is not None:
            record.on_leave = on_leave
        if origin == target:
            self._put(target, patient_id, record.on_leave)
            return {target.ward} if was_on_leave != record.on_leave else set()
        changed = {target.ward}
        if origin is not None:
            self._take(origin, patient_id)
            changed.add(origin.ward)
        displaced = self.holder(target)
        if displaced is not None and displaced != patient_id:
            other = self.record(displaced) or PatientRecord()
            other.remember(Move("displaced", target, None, other.on_leave))
            other.bed, other.on_leave = None, False
            self.mark_released(displaced, other)
            self.save(displaced, other)
        self._put(target, patient_id, record.on_leave)
        record.bed = target
        record.released_seq = None
        record.remember(Move(action, origin, target, was_on_leave))
        return changed

    def vacate(
        self, patient_id: str, record: PatientRecord, action: str, *, keep: bool = True
    ) -> set[str]:
        """Free the patient's bed (discharge and the like). With ``keep`` the record
        joins the recently released, for a later cancel to find."""
        origin = record.bed
        if origin is None:
            return set()
        self._take(origin, patient_id)
        record.remember(Move(action, origin, None, record.on_leave))
        record.bed, record.on_leave = None, False
        if keep:
            self.mark_released(patient_id, record)
        return {origin.ward}

    def swap(
        self, first_id: str, first: PatientRecord, second_id: str, second: PatientRecord
    ) -> set[str]:
        """Exchange the beds of two patients who both hold one; each keeps their
        own leave mark."""
        if first.bed is None or second.bed is None:
            return set()
        old_first, old_second = first.bed, second.bed
        self._take(old_first, first_id)
        self._take(old_second, second_id)
        first.bed = for_patient(old_second, first_id)
        second.bed = for_patient(old_first, second_id)
        self._put(first.bed, first_id, first.on_leave)
        self._put(second.bed, second_id, second.on_leave)
        first.remember(Move("swap_beds", old_first, first.bed, first.on_leave))
        second.remember(Move("swap_beds", old_second, second.bed, second.on_leave))
        return {old_first.ward, old_second.ward}

    def set_leave(self, patient_id: str, record: PatientRecord, on_leave: bool) -> set[str]:
        if record.bed is None or record.on_leave == on_leave:
            return set()
        record.on_leave = on_leave
        self._put(record.bed, patient_id, on_leave)
        return {record.bed.ward}

    def mark_released(self, patient_id: str, record: PatientRecord) -> None:
        """File the patient among the recently released; drop the oldest bucket's
        records once the window is full."""
        raw = self.state.get(_SEQ)
        seq = int(raw) if raw is not None else 0
        bucket = seq // BUCKET
        if seq % BUCKET == 0 and bucket >= KEEP_BUCKETS:
            self._drop_bucket(bucket - KEEP_BUCKETS)
        key = f"{RELEASED}{bucket}"
        members = json.loads(self.state.get(key) or b"[]")
        members.append(patient_id)
        self.state.put(key, json.dumps(members, separators=(",", ":")).encode())
        self.state.put(_SEQ, str(seq + 1).encode())
        record.released_seq = seq

    def _drop_bucket(self, bucket: int) -> None:
        key = f"{RELEASED}{bucket}"
        for patient_id in json.loads(self.state.get(key) or b"[]"):
            record = self.record(patient_id)
            # Only records whose latest release is this one: a patient released
            # again since is filed in a newer bucket and kept.
            seq = record.released_seq if record is not None else None
            if (
                record is not None
                and record.bed is None
                and seq is not None
                and seq // BUCKET == bucket
            ):
                self.forget(patient_id)
        self.state.delete(key)
