"""Envelopes of HL7v2 intake, shared by every HL7v2 source: the ``raw.hl7v2``
record of an accepted message, its partition key and dedup id, and the
``dlq`` record of a refused input."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from engine.types import Envelope, Stage
from pipelines.hl7v2.ack import AckCode, AckError
from pipelines.hl7v2.tokenizer import Message

HL7_CONTENT_TYPE = "x-application/hl7-v2+er7"


def intake_envelope(
    message: Message,
    *,
    channel: str,
    received_at: datetime,
    headers: Mapping[str, str] | None = None,
    envelope_id: str | None = None,
) -> Envelope:
    """The envelope of an accepted message: correlation id MSH-10, payload the
    message text as received, sender and message type in the headers.
    ``envelope_id`` replaces the default random id when given."""
    header = message.header
    return Envelope(
        **({"id": envelope_id} if envelope_id else {}),
        correlation_id=header.control_id,
        channel=channel,
        received_at=received_at,
        content_type=HL7_CONTENT_TYPE,
        payload=message.text,
        headers={
            "sending_application": header.sending_application,
            "sending_facility": header.sending_facility,
            "message_type": header.message_type,
            **(headers or {}),
        },
    )


def intake_key(message: Message) -> bytes:
    """Partition key: the patient (PID-3.1) if present, else sending application^facility."""
    header = message.header
    key = message.get("PID-3") or f"{header.sending_application}^{header.sending_facility}"
    return key.encode()


def intake_dedup_id(message: Message, channel: str) -> str:
    """``channel|MSH-3|MSH-4|MSH-10``: a resend of the same message is stored once."""
    header = message.header
    return f"{channel}|{header.sending_application}|{header.sending_facility}|{header.control_id}"


def refusal_envelope(
    raw: bytes,
    *,
    ack_code: AckCode,
    error: AckError,
    control_id: str,
    channel: str,
    received_at: datetime,
    step_id: str,
    headers: Mapping[str, str] | None = None,
) -> Envelope:
    """The dead letter of a refused input: the bytes as Latin-1 text (so any
    input round-trips exactly), the reason, table 0357 code and step."""
    return Envelope(
        correlation_id=control_id or f"refused-{uuid.uuid4().hex}",
        channel=channel,
        received_at=received_at,
        content_type=HL7_CONTENT_TYPE,
        payload=raw.decode("latin-1"),
        headers={
            "dlq.step_id": step_id,
            "dlq.reason": error.text,
            "dlq.error_code": str(int(error.code)),
            "ack_code": ack_code,
            "payload_encoding": "latin-1",
            **(headers or {}),
        },
        trail=[Stage(step_id=step_id, at=received_at, status="error", detail=error.text)],
    )


__all__ = [
    "HL7_CONTENT_TYPE",
    "intake_dedup_id",
    "intake_envelope",
    "intake_key",
    "refusal_envelope",
]
