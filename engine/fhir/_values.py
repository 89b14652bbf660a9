"""Values of FHIR search parameters: date precision ranges and escaping."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def date_range(text: str) -> tuple[float, float]:
    """The instants a FHIR date/dateTime/instant covers, as [start, end) epoch
    seconds: ``2026`` is the whole year, ``2026-01-02T10:00:00Z`` one second."""
    match = _DATE_RE.match(text.strip())
    if match is None:
        raise ValueError(f"not a FHIR date: {text!r}")
    g = match.groupdict()
    year, month, day = int(g["y"]), int(g["m"] or 1), int(g["d"] or 1)
    offset_s = 0
    if g["tz"] and g["tz"] != "Z":
        sign = -1 if g["tz"][0] == "-" else 1
        offset_s = sign * (int(g["tz"][1:3]) * 3600 + int(g["tz"][4:6]) * 60)
    try:
        start = datetime(
            year, month, day, int(g["H"] or 0), int(g["M"] or 0), int(g["S"] or 0), tzinfo=UTC
        )
    except ValueError as exc:
        raise ValueError(f"not a FHIR date: {text!r}") from exc
    begin = start.timestamp() - offset_s + (float(g["f"]) if g["f"] else 0.0)
    if g["m"] is None:
        width = (366 if calendar.isleap(year) else 365) * 86_400.0
    elif g["d"] is None:
        width = calendar.monthrange(year, month)[1] * 86_400.0
    elif g["H"] is None:
        width = 86_400.0
    elif g["S"] is None:
        width = 60.0
    elif g["f"]:
        width = 10.0 ** -(len(g["f"]) - 1)
    else:
        width = 1.0
    return begin, begin + width


def split_escaped(text: str, separator: str, limit: int = -1) -> list[str]:
    """``text`` cut at unescaped ``separator`` (at most ``limit`` cuts; -1 any),
    pieces still escaped: ``a\\,b,c`` → ``["a\\,b", "c"]``."""
    pieces: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if char == separator and limit != 0:
            pieces.append("".join(current))
            current = []
            limit -= 1
        else:
            current.append(char)
        i += 1
    pieces.append("".join(current))
    return pieces


def unescape(text: str) -> str:
    """FHIR search escaping undone: ``\\,`` ``\\|`` ``\\$`` ``\\\\`` → the character."""
    return re.sub(r"\\(.)", r"\1", text)


__all__ = ["date_range", "split_escaped", "unescape"]
