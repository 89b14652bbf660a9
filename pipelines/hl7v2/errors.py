"""Typed errors of the HL7v2 tokenizer, with codes from HL7 table 0357."""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """HL7 table 0357 (message error condition codes), as used in ERR-3."""

    MESSAGE_ACCEPTED = 0
    SEGMENT_SEQUENCE_ERROR = 100
    REQUIRED_FIELD_MISSING = 101
    DATA_TYPE_ERROR = 102
    TABLE_VALUE_NOT_FOUND = 103
    VALUE_TOO_LONG = 104
    UNSUPPORTED_MESSAGE_TYPE = 200
    UNSUPPORTED_EVENT_CODE = 201
    UNSUPPORTED_PROCESSING_ID = 202
    UNSUPPORTED_VERSION_ID = 203
    UNKNOWN_KEY_IDENTIFIER = 204
    DUPLICATE_KEY_IDENTIFIER = 205
    APPLICATION_RECORD_LOCKED = 206
    APPLICATION_INTERNAL_ERROR = 207

    @property
    def text(self) -> str:
        """The table's display text, e.g. "Required field missing" (ERR-3.2)."""
        return _TEXTS[self]


_TEXTS: dict[ErrorCode, str] = {
    ErrorCode.MESSAGE_ACCEPTED: "Message accepted",
    ErrorCode.SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    ErrorCode.REQUIRED_FIELD_MISSING: "Required field missing",
    ErrorCode.DATA_TYPE_ERROR: "Data type error",
    ErrorCode.TABLE_VALUE_NOT_FOUND: "Table value not found",
    ErrorCode.VALUE_TOO_LONG: "Value too long",
    ErrorCode.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ErrorCode.UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    ErrorCode.UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    ErrorCode.UNSUPPORTED_VERSION_ID: "Unsupported version id",
    ErrorCode.UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    ErrorCode.DUPLICATE_KEY_IDENTIFIER: "Duplicate key identifier",
    ErrorCode.APPLICATION_RECORD_LOCKED: "Application record locked",
    ErrorCode.APPLICATION_INTERNAL_ERROR: "Application internal error",
}


class Hl7ParseError(ValueError):
    """The input is not a parseable HL7v2 message.

    ``code`` says what kind of problem (table 0357) and ``location`` where, in
    terser form ("MSH-2", "MSH-18"), when it is known.
    """

    def __init__(self, reason: str, *, code: ErrorCode, location: str | None = None) -> None:
        super().__init__(reason if location is None else f"{location}: {reason}")
        self.reason = reason
        self.code = code
        self.location = location


class Hl7PathError(ValueError):
    """A terser path such as ``"PID-3(2).1"`` is malformed (a programming error,
    not a property of the message)."""


__all__ = ["ErrorCode", "Hl7ParseError", "Hl7PathError"]
