"""HL7v2 DTM/TS values to aware datetimes.

Format: ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``. A value without an
offset is read in the channel's zone, passed in by the caller.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo


class Hl7TimestampError(ValueError):
    """A DTM value that cannot be read."""


def parse_hl7_datetime(value: str, default_tz: tzinfo = UTC) -> datetime:
    """Parse an HL7 DTM into an aware datetime (missing parts default to their minimum)."""
    text = value.strip()
    tz: tzinfo = default_tz
    for sign in ("+", "-"):
        cut = text.rfind(sign)
        if cut > 0:
            offset = text[cut + 1 :]
            if len(offset) != 4 or not offset.isdigit():
                raise Hl7TimestampError(f"bad UTC offset in {value!r}")
            minutes = int(offset[:2]) * 60 + int(offset[2:])
            tz = timezone(timedelta(minutes=minutes if sign == "+" else -minutes))
            text = text[:cut]
            break
    whole, _, fraction = text.partition(".")
    if len(whole) < 4 or len(whole) > 14 or len(whole) % 2 or not whole.isdigit():
        raise Hl7TimestampError(f"not an HL7 date/time: {value!r}")
    if fraction and (not fraction.isdigit() or len(whole) != 14):
        raise Hl7TimestampError(f"bad fractional seconds in {value!r}")
    parts = [int(whole[0:4])] + [int(whole[i : i + 2]) for i in range(4, len(whole), 2)]
    year, month, day, hour, minute, second = (parts + [1, 1, 0, 0, 0][len(parts) - 1 :])[:6]
    micro = int((fraction + "000000")[:6]) if fraction else 0
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError as exc:
        raise Hl7TimestampError(f"not a valid date/time: {value!r}") from exc
