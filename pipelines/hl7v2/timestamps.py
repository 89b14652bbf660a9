"""HL7v2 DTM/TS and DT values to aware datetimes and dates.

Format: ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``. A value without an
offset is read in the channel's zone, passed in by the caller.

Error messages never quote the value: a birth date is patient data, and the
reason of a dead letter ends up in logs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

_FORMAT = "expected YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]"


class Hl7TimestampError(ValueError):
    """A DTM or DT value that cannot be read."""


def _split_offset(text: str) -> tuple[str, tzinfo | None]:
    for sign in ("+", "-"):
        cut = text.rfind(sign)
        if cut > 0:
            offset = text[cut + 1 :]
            if len(offset) != 4 or not offset.isdigit():
                raise Hl7TimestampError(f"bad UTC offset ({_FORMAT})")
            hours, minutes = int(offset[:2]), int(offset[2:])
            if hours > 23 or minutes > 59:
                raise Hl7TimestampError("UTC offset out of range")
            delta = timedelta(hours=hours, minutes=minutes)
            return text[:cut], timezone(delta if sign == "+" else -delta)
    return text, None


def _digits(whole: str) -> list[int]:
    if len(whole) < 4 or len(whole) > 14 or len(whole) % 2 or not whole.isdigit():
        raise Hl7TimestampError(f"not an HL7 date/time ({_FORMAT})")
    return [int(whole[0:4])] + [int(whole[i : i + 2]) for i in range(4, len(whole), 2)]


def parse_hl7_datetime(value: str, default_tz: tzinfo = UTC) -> datetime:
    """Parse an HL7 DTM into an aware datetime (missing parts default to their minimum).

    Raises :class:`Hl7TimestampError` for anything else, including an offset
    out of range or a calendar date that does not exist.
    """
    text, tz = _split_offset(value.strip())
    whole, _, fraction = text.partition(".")
    parts = _digits(whole)
    if fraction and (not fraction.isdigit() or len(whole) != 14):
        raise Hl7TimestampError("bad fractional seconds")
    year, month, day, hour, minute, second = (parts + [1, 1, 0, 0, 0][len(parts) - 1 :])[:6]
    micro = int((fraction + "000000")[:6]) if fraction else 0
    try:
        return datetime(
            year, month, day, hour, minute, second, micro, tzinfo=default_tz if tz is None else tz
        )
    except ValueError as exc:
        raise Hl7TimestampError("not a valid calendar date/time") from exc


def parse_hl7_date(value: str) -> date:
    """The calendar date of an HL7 DT or DTM, as written (any time and offset are
    dropped; a missing month or day defaults to the first)."""
    text, _ = _split_offset(value.strip())
    whole = text.partition(".")[0]
    parts = _digits(whole)[:3]
    year, month, day = (parts + [1, 1][len(parts) - 1 :])[:3]
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise Hl7TimestampError("not a valid calendar date") from exc
