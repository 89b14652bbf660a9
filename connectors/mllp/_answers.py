"""What the MLLP listener sends back and sets aside: framed ACKs, and the dead
letters of refused input. Logs say what was refused and why, never what it held.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from connectors.mllp._stats import ListenerStats
from connectors.mllp.framing import OversizeFrame, encode_frame
from pipelines.hl7v2 import (
    AckCode,
    AckError,
    ErrorCode,
    Hl7ParseError,
    IntakeResult,
    Message,
    build_ack,
    parse_bytes,
    refusal_envelope,
)
from pipelines.hl7v2.strict import StrictError, strict_summary

STEP_ID = "mllp.intake"


def sequential_ids() -> Callable[[], str]:
    """ACK control ids: a random prefix per listener and a counter (fits MSH-10's 20)."""
    prefix, counter = uuid.uuid4().hex[:8], itertools.count(1)
    return lambda: f"{prefix}{next(counter)}"


class Answers:
    """Builds the replies and dead letters of one listener's channel."""

    def __init__(
        self,
        *,
        channel: str,
        max_frame_bytes: int,
        clock: Callable[[], datetime],
        ack_ids: Callable[[], str],
        stats: ListenerStats,
        log: Any,
    ) -> None:
        self.channel = channel
        self.max_frame_bytes = max_frame_bytes
        self.clock = clock
        self.ack_ids = ack_ids
        self.stats = stats
        self.log = log

    def reply(
        self,
        message: Message | None,
        code: AckCode,
        error: AckError | None,
        errors: Sequence[AckError] = (),
        text: str | None = None,
    ) -> bytes:
        """The framed ACK, in the message's own character set."""
        ack = build_ack(
            message,
            ack_code=code,
            control_id=self.ack_ids(),
            at=self.clock(),
            error=error,
            errors=errors,
            text=text,
        )
        self.stats.acks[code] += 1
        codec = message.codec if message is not None else "ascii"
        return encode_frame(ack.encode(codec, errors="replace"))

    def internal_error(self) -> bytes:
        """AE 207 for a frame whose handling failed in an unexpected way."""
        error = AckError(ErrorCode.APPLICATION_INTERNAL_ERROR, "application internal error")
        return self.reply(None, "AE", error)

    def store_failed(self, message: Message, peer: str, exc: BaseException) -> bytes:
        """AE 207 for a valid message the bus did not take: never AA unless durable."""
        self.stats.append_failures += 1
        self.log.error(
            "mllp.append.failed",
            peer=peer,
            control_id=message.header.control_id,
            error=type(exc).__name__,
        )
        error = AckError(ErrorCode.APPLICATION_INTERNAL_ERROR, "message could not be stored")
        return self.reply(message, "AE", error)

    def oversize(self, item: OversizeFrame) -> IntakeResult:
        """AR 104 for a frame over the size limit, echoing MSH-10 when its head parses."""
        self.stats.oversize_frames += 1
        reason = f"frame of {item.size} bytes exceeds the {self.max_frame_bytes}-byte limit"
        return IntakeResult("AR", _salvage(item.head), AckError(ErrorCode.VALUE_TOO_LONG, reason))

    def strict_refusal(
        self, message: Message, problems: Sequence[StrictError]
    ) -> tuple[IntakeResult, bytes]:
        """AE with one ERR per strict-validation problem and MSA-3 summing them up;
        the refusal's reason (for the dead letter) is that summary."""
        self.stats.strict_refused += 1
        text = strict_summary(problems, message.header.version)
        errors = [problem.ack_error() for problem in problems]
        first = errors[0]
        result = IntakeResult("AE", message, AckError(first.code, text, first.location))
        return result, self.reply(message, "AE", first, errors[1:], text)

    def letter(
        self,
        raw: bytes,
        result: IntakeResult,
        peer: str,
        received_at: datetime,
        size: int | None = None,
    ) -> bytes:
        """Log a refusal (no content) and build its dead letter."""
        error = result.error or AckError(ErrorCode.APPLICATION_INTERNAL_ERROR, "refused")
        control_id = result.message.header.control_id if result.message is not None else ""
        self.log.warning(
            "mllp.message.refused",
            peer=peer,
            ack_code=result.ack_code,
            error_code=int(error.code),
            location=error.location,
            control_id=control_id,
        )
        headers = {"peer": peer} if size is None else {"peer": peer, "frame_bytes": str(size)}
        return refusal_envelope(
            raw,
            ack_code=result.ack_code,
            error=error,
            control_id=control_id,
            channel=self.channel,
            received_at=received_at,
            step_id=STEP_ID,
            headers=headers,
        ).to_bytes()


def _salvage(head: bytes) -> Message | None:
    """The parse of an oversize frame's first bytes, to echo its MSH-10."""
    try:
        return parse_bytes(head)
    except Hl7ParseError:
        return None


__all__ = ["STEP_ID", "Answers", "sequential_ids"]
