"""HL7 batch files: FHS/BHS ... BTS/FTS around any number of messages."""

from __future__ import annotations

from pipelines.hl7v2.errors import ErrorCode, Hl7ParseError

_BOM = "\ufeff"
_BATCH_SEGMENTS = frozenset({"FHS", "BHS", "BTS", "FTS"})


def split_batch(text: str) -> list[str]:
    """Split an HL7 batch file (FHS/BHS ... BTS/FTS) into message texts.

    Header and trailer segments are dropped; each MSH starts a message. Text
    without batch segments gives one message. Raises ``Hl7ParseError`` for a
    segment found outside any message.
    """
    if text[:1] == _BOM:
        text = text[1:]
    messages: list[list[str]] = []
    current: list[str] | None = None
    for raw in text.replace("\r\n", "\r").replace("\n", "\r").split("\r"):
        if not raw or raw.isspace():
            continue
        name = raw[:3]
        if name == "MSH":
            current = [raw]
            messages.append(current)
        elif name in _BATCH_SEGMENTS:
            current = None
        elif current is None:
            raise Hl7ParseError(
                f"segment {name!r} outside a message",
                code=ErrorCode.SEGMENT_SEQUENCE_ERROR,
                location=name,
            )
        else:
            current.append(raw)
    return ["\r".join(m) + "\r" for m in messages]


__all__ = ["split_batch"]
