"""HL7v2: a fast lazy tokenizer, ACK building and intake validation."""

from pipelines.hl7v2._intake import (
    HL7_CONTENT_TYPE,
    intake_dedup_id,
    intake_envelope,
    intake_key,
    refusal_envelope,
)
from pipelines.hl7v2.ack import (
    DEFAULT_VERSION,
    MESSAGE_TYPES,
    SUPPORTED_VERSIONS,
    Ack,
    AckCode,
    AckError,
    IntakeResult,
    build_ack,
    parse_ack,
    validate_for_intake,
)
from pipelines.hl7v2.errors import ErrorCode, Hl7ParseError, Hl7PathError
from pipelines.hl7v2.tokenizer import (
    Delimiters,
    Field,
    Message,
    MessageHeader,
    Segment,
    parse,
    parse_bytes,
    split_batch,
)

__all__ = [
    "DEFAULT_VERSION",
    "HL7_CONTENT_TYPE",
    "MESSAGE_TYPES",
    "SUPPORTED_VERSIONS",
    "Ack",
    "AckCode",
    "AckError",
    "Delimiters",
    "ErrorCode",
    "Field",
    "Hl7ParseError",
    "Hl7PathError",
    "IntakeResult",
    "Message",
    "MessageHeader",
    "Segment",
    "build_ack",
    "intake_dedup_id",
    "intake_envelope",
    "intake_key",
    "parse",
    "parse_ack",
    "parse_bytes",
    "refusal_envelope",
    "split_batch",
    "validate_for_intake",
]
