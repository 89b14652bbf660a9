"""Acknowledgements (original mode): building ACK replies, reading them back,
and the intake checks that decide between AA, AE and AR.

Everything here is pure: the clock and the ACK's own control id are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal

from pipelines.hl7v2._encoding import DEFAULT_DELIMITERS, escape
from pipelines.hl7v2._message_types import (
    MESSAGE_TYPES,
    PROCESSING_IDS,
    SUPPORTED_VERSIONS,
)
from pipelines.hl7v2.errors import ErrorCode, Hl7ParseError
from pipelines.hl7v2.tokenizer import Message, parse, parse_bytes

AckCode = Literal["AA", "AE", "AR"]

DEFAULT_VERSION = "2.5"


@dataclass(frozen=True, slots=True)
class AckError:
    """One error to report in MSA-3 and an ERR segment."""

    code: ErrorCode
    text: str
    location: str | None = None


def build_ack(
    inbound: Message | None,
    *,
    ack_code: AckCode,
    control_id: str,
    at: datetime,
    error: AckError | None = None,
    text: str | None = None,
    errors: Sequence[AckError] = (),
) -> str:
    """The ACK for ``inbound`` (``None`` when nothing usable was received).

    The reply swaps sending and receiving application/facility, keeps the
    inbound delimiters, version (MSH-12), processing id and character set,
    types itself ``ACK^<trigger>^ACK`` and echoes MSH-10 in MSA-2. ``control_id``
    becomes its own MSH-10 and ``at`` (timezone-aware) its MSH-7. AE and AR
    carry MSA-3 and one ERR segment per error (ERR-2 location, ERR-3 table 0357
    code, ERR-4 severity E): ``error`` first, then ``errors``; without any they
    report 207. MSA-3 is ``text`` when given, else the first error's text.
    """
    all_errors = [error, *errors] if error is not None else list(errors)
    if ack_code != "AA" and not all_errors:
        all_errors = [AckError(ErrorCode.APPLICATION_INTERNAL_ERROR, text or "application error")]
    d = inbound.delimiters if inbound is not None else DEFAULT_DELIMITERS
    fs = d.field
    if inbound is not None:
        raw = inbound.msh.raw_field
        head = f"MSH{fs}{raw(2)}{fs}{raw(5)}{fs}{raw(6)}{fs}{raw(3)}{fs}{raw(4)}{fs}"
        trigger = inbound.header.trigger_event
        tail = f"{fs}{raw(11) or 'P'}{fs}{raw(12) or DEFAULT_VERSION}"
        charset = raw(18)
        if charset:
            tail += f"{fs * 6}{charset}"
        echoed = raw(10)
    else:
        head = f"MSH{fs}{d.encoding_characters}{fs}{fs}{fs}{fs}{fs}"
        trigger = echoed = ""
        tail = f"{fs}P{fs}{DEFAULT_VERSION}"
    message_type = "ACK"
    if trigger:
        message_type = f"ACK{d.component}{escape(trigger, d)}{d.component}ACK"
    msh = f"{head}{_ack_time(at)}{fs}{fs}{message_type}{fs}{escape(control_id, d)}{tail}\r"
    msa_text = text if text is not None else (all_errors[0].text if all_errors else "")
    msa = _trim(["MSA", ack_code, echoed, escape(msa_text, d) if msa_text else ""])
    segments = [msh, fs.join(msa), "\r"]
    c = d.component
    for err in all_errors:
        fields = [
            "ERR",
            "",
            _error_location(err.location, c),
            f"{int(err.code)}{c}{escape(err.code.text, d)}{c}HL70357",
            "E",
            "",
            "",
            escape(err.text, d),
        ]
        segments += (fs.join(_trim(fields)), "\r")
    return "".join(segments)


def _ack_time(at: datetime) -> str:
    """MSH-7 of an ACK: ``YYYYMMDDHHMMSS+ZZZZ``."""
    offset = at.utcoffset()
    if offset is None:
        raise ValueError("ACK time must be timezone-aware")
    return _second_stamp(at.replace(microsecond=0), offset)


@lru_cache(maxsize=16)
def _second_stamp(second: datetime, offset: timedelta) -> str:
    # ACKs go out by the thousand per second and strftime is not cheap. The offset
    # is part of the key: 10:00+00:00 and 11:00+01:00 are equal datetimes.
    return second.strftime("%Y%m%d%H%M%S%z")


def _trim(fields: list[str]) -> list[str]:
    while len(fields) > 1 and not fields[-1]:
        fields.pop()
    return fields


_LOCATION = re.compile(r"([A-Z][A-Z0-9]{2})(?:\((\d+)\))?(?:-(\d+)(?:\((\d+)\))?(?:\.(\d+))?)?")


def _error_location(location: str | None, component: str) -> str:
    """ERR-2 (ERL): segment ^ sequence ^ field ^ repetition ^ component."""
    match = _LOCATION.fullmatch(location or "")
    if match is None:
        return ""
    name, seq, field, rep, comp = match.groups()
    parts = [name, seq or "1"]
    if field:
        parts += [field, rep or "1"]
        if comp:
            parts.append(comp)
    return component.join(parts)


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledgement as read back by a sender."""

    code: str
    control_id: str
    text: str
    error_codes: tuple[str, ...]
    raw: str

    @property
    def accepted(self) -> bool:
        """True for AA (and CA, the enhanced-mode commit accept)."""
        return self.code in ("AA", "CA")


def parse_ack(data: bytes | str) -> Ack:
    """Read an ACK; raises ``Hl7ParseError`` when it has no MSA segment."""
    message = parse_bytes(data) if isinstance(data, bytes) else parse(data)
    msa = message.segment("MSA")
    if msa is None or not msa.value(1):
        raise Hl7ParseError(
            "reply has no MSA-1", code=ErrorCode.REQUIRED_FIELD_MISSING, location="MSA-1"
        )
    return Ack(
        code=msa.value(1),
        control_id=msa.value(2),
        text=msa.value(3),
        error_codes=tuple(err.value(3) for err in message.segments("ERR") if err.value(3)),
        raw=message.text,
    )


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """The verdict on one inbound message: accepted (``error`` is None, code AA)
    or refused with AE/AR. ``message`` is set whenever the input parsed, so a
    refusal can still echo MSH-10."""

    ack_code: AckCode
    message: Message | None = None
    error: AckError | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None


_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")


def _refuse(
    ack_code: AckCode,
    code: ErrorCode,
    reason: str,
    location: str | None = None,
    message: Message | None = None,
) -> IntakeResult:
    return IntakeResult(ack_code, message, AckError(code, reason, location))


def validate_for_intake(
    data: bytes | str,
    *,
    message_types: Mapping[str, frozenset[str]] = MESSAGE_TYPES,
    versions: frozenset[str] = SUPPORTED_VERSIONS,
) -> IntakeResult:
    """Decode (per MSH-18), parse and check one inbound message. Never raises.

    AR when the message cannot be taken at all: empty, not starting with MSH,
    binary or control characters, MSH-9/10/11/12 missing (a truncated MSH),
    unknown message code (200) or trigger event (201), processing id (202) or
    version (203). AE for a body that does not hold up: a malformed segment
    name or a second MSH (100). ``message_types`` maps each accepted message
    code to its trigger events (an empty set for any); add local Z-types there.
    """
    if not data.strip():
        return _refuse("AR", ErrorCode.SEGMENT_SEQUENCE_ERROR, "empty message")
    try:
        message = parse_bytes(data) if isinstance(data, bytes) else parse(data)
    except Hl7ParseError as exc:
        binary = (
            _CONTROL_BYTES.search(data) if isinstance(data, bytes) else _CONTROL_CHARS.search(data)
        )
        if binary is not None:
            return _refuse("AR", ErrorCode.DATA_TYPE_ERROR, "binary data, not HL7v2 text")
        return _refuse("AR", exc.code, exc.reason, exc.location)
    junk = _CONTROL_CHARS.search(message.text)
    if junk is not None:
        return _refuse(
            "AR",
            ErrorCode.DATA_TYPE_ERROR,
            f"control character 0x{ord(junk.group()):02x} in message",
            _position(message, junk.start()),
            message,
        )
    return _check_header(message, message_types, versions) or _check_segments(message)


def _check_header(
    message: Message, message_types: Mapping[str, frozenset[str]], versions: frozenset[str]
) -> IntakeResult | None:
    header = message.header
    last = len(message.msh)
    for number, value, what in (
        (9, header.message_code, "message type"),
        (10, header.control_id, "message control id"),
        (11, header.processing_id, "processing id"),
        (12, header.version, "version id"),
    ):
        if not value:
            truncated = f" (MSH ends at MSH-{last})" if last < number else ""
            return _refuse(
                "AR",
                ErrorCode.REQUIRED_FIELD_MISSING,
                f"MSH-{number} {what} is missing{truncated}",
                f"MSH-{number}",
                message,
            )
    code, event = header.message_code, header.trigger_event
    events = message_types.get(code)
    if events is None:
        return _refuse(
            "AR",
            ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
            f"unsupported message type {code!r}",
            "MSH-9.1",
            message,
        )
    if events:
        if not event:
            return _refuse(
                "AR",
                ErrorCode.REQUIRED_FIELD_MISSING,
                "MSH-9.2 trigger event is missing",
                "MSH-9.2",
                message,
            )
        if event not in events:
            return _refuse(
                "AR",
                ErrorCode.UNSUPPORTED_EVENT_CODE,
                f"unsupported event {event!r} for message type {code!r}",
                "MSH-9.2",
                message,
            )
    if header.processing_id not in PROCESSING_IDS:
        return _refuse(
            "AR",
            ErrorCode.UNSUPPORTED_PROCESSING_ID,
            f"unsupported processing id {header.processing_id!r}",
            "MSH-11",
            message,
        )
    if header.version not in versions:
        return _refuse(
            "AR",
            ErrorCode.UNSUPPORTED_VERSION_ID,
            f"unsupported version {header.version!r}",
            "MSH-12",
            message,
        )
    return None


# Segment names already seen well formed: nearly every message repeats a few.
_WELL_FORMED: set[str] = set()


def _check_segments(message: Message) -> IntakeResult:
    for position, segment in enumerate(message, start=1):
        name = segment.name
        if name not in _WELL_FORMED:
            if _SEGMENT_NAME.fullmatch(name) is None:
                return _refuse(
                    "AE",
                    ErrorCode.SEGMENT_SEQUENCE_ERROR,
                    f"segment {position} has a malformed name (truncated or corrupt message)",
                    None,
                    message,
                )
            if len(_WELL_FORMED) < 4096:
                _WELL_FORMED.add(name)
        if position > 1 and name == "MSH":
            return _refuse(
                "AE",
                ErrorCode.SEGMENT_SEQUENCE_ERROR,
                f"segment {position} is a second MSH (batches must be split first)",
                "MSH(2)",
                message,
            )
    return IntakeResult("AA", message)


def _position(message: Message, index: int) -> str | None:
    """Terser location (``"PID-5"``) of a character index in ``message.text``."""
    text = message.text
    start = max(text.rfind("\r", 0, index), text.rfind("\n", 0, index)) + 1
    before = text[start:index]
    fs = message.delimiters.field
    name = before.split(fs, 1)[0]
    if _SEGMENT_NAME.fullmatch(name) is None:
        return None
    field = before.count(fs) + (1 if name == "MSH" else 0)
    return f"{name}-{field}" if field else name


__all__ = [
    "DEFAULT_VERSION",
    "MESSAGE_TYPES",
    "SUPPORTED_VERSIONS",
    "Ack",
    "AckCode",
    "AckError",
    "IntakeResult",
    "build_ack",
    "parse_ack",
    "validate_for_intake",
]
