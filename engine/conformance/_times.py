"""FHIR date/dateTime/instant values compared as points in time, not as text.

Two renderings of one moment agree: ``2015-02-08T11:34:19+01:10`` and
``2015-02-08T15:54:19+05:30`` are the same instant. Precision is compared at
the coarser of the two: ``1999-07-02`` agrees with ``1999-07-02T00:00:00Z``
(the day, read in the finer value's own offset), and a value given to the
minute agrees with one given to the second within that minute. A time of day
without an offset is a local time that names no instant, so it agrees only
with another local time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

Precision = Literal["year", "month", "day", "minute", "second", "fraction"]
_ORDER: tuple[Precision, ...] = ("year", "month", "day", "minute", "second", "fraction")
# Wall-clock parts kept at each precision: year, month, day, hour, minute, second, microsecond.
_PARTS = {"year": 1, "month": 2, "day": 3, "minute": 5, "second": 6, "fraction": 7}

_DATE_TIME = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


@dataclass(frozen=True, slots=True)
class FhirTime:
    """A parsed FHIR date, dateTime or instant: its wall-clock parts as written,
    how precise it is, and its UTC offset (``None`` for a local time or a date)."""

    text: str
    precision: Precision
    wall: tuple[int, int, int, int, int, int, int]
    offset: timedelta | None

    def __str__(self) -> str:
        return self.text

    @property
    def has_time(self) -> bool:
        return _ORDER.index(self.precision) > _ORDER.index("day")

    def instant(self) -> datetime | None:
        """The moment in UTC, when this names one (a time of day with an offset)."""
        if not self.has_time or self.offset is None:
            return None
        year, month, day, hour, minute, second, micro = self.wall
        local = datetime(
            year, month, day, hour, minute, second, micro, tzinfo=timezone(self.offset)
        )
        return local.astimezone(UTC)


def parse_fhir_time(text: str) -> FhirTime | None:
    """``text`` as a :class:`FhirTime`, or ``None`` when it is not a FHIR date/dateTime."""
    match = _DATE_TIME.fullmatch(text.strip())
    if match is None:
        return None
    parts = match.groupdict()
    precision: Precision = "year"
    names: tuple[Precision, ...] = ("month", "day", "minute", "second", "fraction")
    for name in names:
        if parts[name] is not None:
            precision = name
    fraction = (parts["fraction"] or "0")[:6].ljust(6, "0")
    wall = (
        int(parts["year"]),
        int(parts["month"] or 1),
        int(parts["day"] or 1),
        int(parts["hour"] or 0),
        int(parts["minute"] or 0),
        int(parts["second"] or 0),
        int(fraction),
    )
    zone = parts["zone"]
    offset = None
    if zone == "Z":
        offset = timedelta(0)
    elif zone is not None:
        sign = -1 if zone[0] == "-" else 1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    try:
        # Rejects impossible dates and times (2021-02-30, 25:00).
        datetime(*wall[:6], tzinfo=UTC)
    except ValueError:
        return None
    return FhirTime(text, precision, wall, offset)


def _coarser(a: FhirTime, b: FhirTime) -> Precision:
    return _ORDER[min(_ORDER.index(a.precision), _ORDER.index(b.precision))]


def _truncate(moment: datetime, precision: Precision) -> datetime:
    if precision == "minute":
        return moment.replace(second=0, microsecond=0)
    if precision == "second":
        return moment.replace(microsecond=0)
    return moment


def same_wall_clock(a: FhirTime, b: FhirTime) -> bool:
    """Whether the two read the same on a clock, each in its own zone, to the coarser
    precision: what is left to compare when one side dropped the offset."""
    keep = _PARTS[_coarser(a, b)]
    return a.wall[:keep] == b.wall[:keep]


def same_time(a: FhirTime, b: FhirTime) -> bool:
    """Whether ``a`` and ``b`` name the same time, at the coarser precision of the two."""
    precision = _coarser(a, b)
    if not a.has_time or not b.has_time:
        # A date (or coarser) against anything: the calendar day as each side wrote it.
        return same_wall_clock(a, b)
    if (a.offset is None) != (b.offset is None):
        return False
    if a.offset is None:
        return same_wall_clock(a, b)
    first, second = a.instant(), b.instant()
    if first is None or second is None:
        return False
    return _truncate(first, precision) == _truncate(second, precision)
