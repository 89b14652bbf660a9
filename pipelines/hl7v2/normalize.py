"""HL7v2 → canonical events: the ``normalize.hl7v2`` step.

Pure: the clock comes in through the constructor, nothing else is read.
ADT A01/A02/A03 become :class:`schemas.events.AdtEvent` on ``events.adt``,
keyed by patient. Malformed or inconsistent messages become dead letters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo

from engine.types import Emit, Envelope, KeyedState
from pipelines.deadletter import dead_letter
from pipelines.hl7v2.errors import Hl7ParseError
from pipelines.hl7v2.timestamps import Hl7TimestampError, parse_hl7_datetime
from pipelines.hl7v2.tokenizer import Message, parse
from schemas.events import AdtAction, AdtEvent, BedLocation
from schemas.topics import EVENTS_ADT

STEP_ID = "normalize.hl7v2"
CANONICAL_CONTENT_TYPE = "application/vnd.wardstream.event+json"

ADT_ACTIONS: dict[str, AdtAction] = {"A01": "admit", "A02": "transfer", "A03": "discharge"}


class MappingError(ValueError):
    """A message that parses but cannot be mapped to a canonical event."""


def _value(msg: Message, path: str) -> str | None:
    text = msg.get(path)
    return text or None


def _location(msg: Message, field: str) -> BedLocation | None:
    ward = _value(msg, f"{field}.1")
    if ward is None:
        return None
    return BedLocation(
        ward=ward,
        room=_value(msg, f"{field}.2"),
        bed=_value(msg, f"{field}.3"),
        facility=_value(msg, f"{field}.4"),
    )


def _event_time(msg: Message, default_tz: tzinfo) -> datetime:
    for path in ("EVN-6", "EVN-2", "MSH-7"):
        text = _value(msg, f"{path}.1")
        if text:
            try:
                return parse_hl7_datetime(text, default_tz)
            except Hl7TimestampError as exc:
                raise MappingError(f"{path}: {exc}") from exc
    raise MappingError("no event time: EVN-6, EVN-2 and MSH-7 are all empty")


def adt_event(msg: Message, default_tz: tzinfo = UTC) -> AdtEvent:
    """Map an ADT A01/A02/A03 message to its canonical event."""
    trigger = _value(msg, "MSH-9.2") or _value(msg, "EVN-1") or ""
    action = ADT_ACTIONS.get(trigger)
    if action is None:
        raise MappingError(f"ADT^{trigger or '?'} is not mapped")
    patient_id = _value(msg, "PID-3(1).1")
    if patient_id is None:
        raise MappingError("PID-3: patient identifier missing")
    location = _location(msg, "PV1-3")
    if action != "discharge" and location is None:
        raise MappingError(f"PV1-3: assigned location missing on ADT^{trigger}")
    return AdtEvent(
        action=action,
        trigger=trigger,
        message_id=_value(msg, "MSH-10") or "",
        patient_id=patient_id,
        patient_id_authority=_value(msg, "PID-3(1).4"),
        visit_number=_value(msg, "PV1-19.1"),
        patient_class=_value(msg, "PV1-2.1"),
        location=location,
        prior_location=_location(msg, "PV1-6"),
        service=_value(msg, "PV1-10.1"),
        occurred_at=_event_time(msg, default_tz),
    )


class NormalizeHl7v2:
    """Turns raw HL7v2 envelopes into canonical events."""

    step_id = STEP_ID

    def __init__(self, clock: Callable[[], datetime], default_tz: tzinfo = UTC) -> None:
        self._clock = clock
        self._tz = default_tz

    def process(self, envelope: Envelope, state: KeyedState) -> Sequence[Emit]:
        try:
            msg = parse(envelope.payload)
        except Hl7ParseError as exc:
            return [dead_letter(envelope, step_id=STEP_ID, reason=str(exc), at=self._clock())]
        if _value(msg, "MSH-9.1") != "ADT" or _value(msg, "MSH-9.2") not in ADT_ACTIONS:
            return []
        try:
            event = adt_event(msg, self._tz)
        except MappingError as exc:
            return [dead_letter(envelope, step_id=STEP_ID, reason=str(exc), at=self._clock())]
        out = envelope.derive(
            step_id=STEP_ID,
            at=self._clock(),
            content_type=CANONICAL_CONTENT_TYPE,
            payload=event.model_dump_json(),
        )
        return [Emit(topic=EVENTS_ADT, envelope=out, key=event.patient_id)]
