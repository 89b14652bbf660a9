"""Errors are data: a failing step turns its input into a dead letter on ``dlq``."""

from __future__ import annotations

from datetime import datetime

from engine.types import Emit, Envelope
from schemas.topics import DLQ


def dead_letter(envelope: Envelope, *, step_id: str, reason: str, at: datetime) -> Emit:
    """The input envelope, unchanged in payload, routed to ``dlq`` with the step and reason."""
    letter = envelope.derive(
        step_id=step_id,
        at=at,
        content_type=envelope.content_type,
        payload=envelope.payload,
        status="error",
        detail=reason,
    )
    letter.headers["dlq.step_id"] = step_id
    letter.headers["dlq.reason"] = reason
    return Emit(topic=DLQ, envelope=letter, key=envelope.correlation_id)
