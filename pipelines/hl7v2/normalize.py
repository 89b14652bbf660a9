"""HL7v2 → canonical events: the ``normalize.hl7v2`` step.

Pure: the clock and the zone of timestamps sent without an offset come in
through the constructor, nothing else is read. The ADT family (A01-A08, A11-A13,
A17, A21, A22, A28, A31, A40) becomes :class:`schemas.events.AdtEvent` on
``events.adt``; ORU^R01 becomes one :class:`schemas.events.ObservationEvent`
per order observation on ``events.obs``; both keyed by patient. Everything
else, and every message that cannot be mapped faithfully, becomes a dead
letter whose reason names the field. The step never raises, and no reason
quotes a value from the message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo

from pydantic import ValidationError

from engine.types import Emit, Envelope, KeyedState
from pipelines.deadletter import dead_letter
from pipelines.hl7v2._adt import ADT_ACTIONS, merge_events
from pipelines.hl7v2._adt import adt_event as _adt_event
from pipelines.hl7v2._datatypes import MappingError
from pipelines.hl7v2._oru import VITAL_SIGNS_LOINC, observation_events
from pipelines.hl7v2.errors import Hl7ParseError
from pipelines.hl7v2.tokenizer import Message, parse
from schemas.events import AdtEvent, ObservationEvent
from schemas.topics import EVENTS_ADT, EVENTS_OBS

STEP_ID = "normalize.hl7v2"
CANONICAL_CONTENT_TYPE = "application/vnd.wardstream.event+json"

__all__ = [
    "ADT_ACTIONS",
    "CANONICAL_CONTENT_TYPE",
    "STEP_ID",
    "VITAL_SIGNS_LOINC",
    "MappingError",
    "NormalizeHl7v2",
    "adt_event",
    "canonical_events",
]


def _message_type(msg: Message) -> tuple[str, str]:
    """(message code, trigger event), upper-cased; the trigger falls back on
    EVN-1 for feeds that send MSH-9 as the code alone."""
    kind = msg.get("MSH-9.1").strip().upper()
    trigger = msg.get("MSH-9.2").strip().upper() or msg.get("EVN-1").strip().upper()
    return kind, trigger


def _message_id(msg: Message) -> str:
    message_id = msg.get("MSH-10").strip()
    if not message_id:
        raise MappingError("MSH-10: message control id missing")
    return message_id


def adt_event(msg: Message, default_tz: tzinfo = UTC) -> AdtEvent:
    """Map one ADT message of a mapped trigger to its canonical event.

    Raises :class:`MappingError` when the trigger is not mapped or the message
    lacks what its action needs.
    """
    kind, trigger = _message_type(msg)
    if kind != "ADT" or trigger not in ADT_ACTIONS:
        # Clipped: MSH-9 is the sender's text, and reasons reach logs.
        shown = f"{kind[:8] or '?'}^{trigger[:8] or '?'}"
        raise MappingError(f"MSH-9: {shown} has no canonical mapping")
    return _adt_event(msg, trigger, _message_id(msg), default_tz)


def canonical_events(msg: Message, default_tz: tzinfo = UTC) -> list[AdtEvent | ObservationEvent]:
    """Every canonical event of one message: one ADT event, or one observation
    event per ORU^R01 order observation. Raises :class:`MappingError`."""
    kind, trigger = _message_type(msg)
    if kind == "ORU" and trigger == "R01":
        return list(observation_events(msg, _message_id(msg), default_tz))
    if kind == "ADT" and ADT_ACTIONS.get(trigger) == "merge":
        return list(merge_events(msg, trigger, _message_id(msg), default_tz))
    return [adt_event(msg, default_tz)]


def _invalid(exc: ValidationError) -> str:
    # Location and kind of the first error only: pydantic's own text quotes the input.
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "event"
    return f"canonical event invalid at {where}: {first['type']}"


class NormalizeHl7v2:
    """Turns raw HL7v2 envelopes into canonical events (or dead letters)."""

    step_id = STEP_ID

    def __init__(
        self,
        clock: Callable[[], datetime],
        default_tz: tzinfo = UTC,
        channel_tz: Mapping[str, tzinfo] | None = None,
    ) -> None:
        self._clock = clock
        self._tz = default_tz
        self._channel_tz = dict(channel_tz or {})

    def process(self, envelope: Envelope, state: KeyedState) -> Sequence[Emit]:
        tz = self._channel_tz.get(envelope.channel, self._tz)
        try:
            events = canonical_events(parse(envelope.payload), tz)
        except (Hl7ParseError, MappingError) as exc:
            return [self._dead_letter(envelope, str(exc))]
        except ValidationError as exc:
            return [self._dead_letter(envelope, _invalid(exc))]
        at = self._clock()
        emits = []
        for event in events:
            out = envelope.derive(
                step_id=STEP_ID,
                at=at,
                content_type=CANONICAL_CONTENT_TYPE,
                payload=event.model_dump_json(),
            )
            topic = EVENTS_ADT if isinstance(event, AdtEvent) else EVENTS_OBS
            emits.append(Emit(topic=topic, envelope=out, key=event.patient_id))
        return emits

    def _dead_letter(self, envelope: Envelope, reason: str) -> Emit:
        return dead_letter(envelope, step_id=STEP_ID, reason=reason, at=self._clock())
