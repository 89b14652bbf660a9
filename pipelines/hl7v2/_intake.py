"""Envelopes of HL7v2 intake, shared by every HL7v2 source: the ``raw.hl7v2``
record of an accepted message, its partition key and dedup id, and the
``dlq`` record of a refused input."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from json.encoder import encode_basestring

from pydantic import AwareDatetime, TypeAdapter

from engine.types import ENVELOPE_SCHEMA_VERSION, Envelope, Stage
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


def intake_envelope_bytes(
    message: Message,
    *,
    channel: str,
    received_at: datetime,
    headers: Mapping[str, str] | None = None,
    envelope_id: str | None = None,
) -> bytes:
    """``intake_envelope(...).to_bytes()``, byte for byte, without building the
    model: the ingest hot path writes the JSON itself (pydantic validation and
    dumping cost more than the rest of an append). Every value is a plain string
    here, so nothing needs validating beyond the aware ``received_at``."""
    header = message.header
    enc = _json_str
    if headers and not _INTAKE_HEADERS.isdisjoint(headers):
        # A caller's header of the same name replaces the value in place, as in a dict.
        merged = {
            "sending_application": header.sending_application,
            "sending_facility": header.sending_facility,
            "message_type": header.message_type,
            **headers,
        }
        head = ",".join(f"{enc(k)}:{enc(v)}" for k, v in merged.items())
    else:
        head = (
            f'"sending_application":{enc(header.sending_application)}'
            f',"sending_facility":{enc(header.sending_facility)}'
            f',"message_type":{enc(header.message_type)}'
        )
        if headers:
            head += "".join(f",{enc(k)}:{enc(v)}" for k, v in headers.items())
    envelope = (
        f'{{"schema_version":{ENVELOPE_SCHEMA_VERSION}'
        f',"id":{enc(envelope_id or uuid.uuid4().hex)}'
        f',"correlation_id":{enc(header.control_id)}'
        f',"channel":{enc(channel)}'
        f',"received_at":"{_iso_datetime(received_at)}"'
        f',"content_type":"{HL7_CONTENT_TYPE}"'
        f',"payload":{enc(message.text)}'
        f',"headers":{{{head}}},"trail":[]}}'
    )
    return envelope.encode()


_INTAKE_HEADERS = frozenset({"sending_application", "sending_facility", "message_type"})

# A JSON string as pydantic writes it: UTF-8 kept, quotes, backslashes and
# control characters escaped. Raises TypeError for anything but a str.
_json_str = encode_basestring


_AWARE_DATETIME: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)
_ISO_SECONDS: dict[tuple[int, ...], str] = {}


def _iso_datetime(at: datetime) -> str:
    """``at`` as pydantic writes an ``AwareDatetime`` in JSON ("Z" for UTC)."""
    offset = at.utcoffset()
    if offset is None:
        raise ValueError("received_at must be timezone-aware")
    if not offset:
        # isoformat is a good part of the envelope's cost: the date and time to
        # the second are formatted once per second (a zero offset's wall time is
        # the instant's, so the fields are a complete key).
        key = (at.year, at.month, at.day, at.hour, at.minute, at.second)
        text = _ISO_SECONDS.get(key)
        if text is None:
            if len(_ISO_SECONDS) >= 64:
                _ISO_SECONDS.clear()
            text = _ISO_SECONDS[key] = at.replace(microsecond=0, tzinfo=None).isoformat()
        microsecond = at.microsecond
        return f"{text}.{microsecond:06d}Z" if microsecond else f"{text}Z"
    if offset.seconds % 60 or offset.microseconds:
        # Sub-minute offsets: rare enough to leave their format to pydantic.
        return _AWARE_DATETIME.dump_json(at).decode()[1:-1]
    return at.isoformat()


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
    "intake_envelope_bytes",
    "intake_key",
    "refusal_envelope",
]
