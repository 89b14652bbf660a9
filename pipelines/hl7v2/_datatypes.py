"""HL7v2 data types → canonical models: CX, XPN, XAD, XTN, PL, XCN, CWE/CE, DTM.

Every reader takes a :class:`Field` (one field, or one repetition of it) and
returns ``None`` or an empty list for what is absent. The HL7 null ``""`` reads
as absent, surrounding blanks are dropped, escape sequences are decoded by the
tokenizer.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Literal

from pipelines.hl7v2.timestamps import Hl7TimestampError, parse_hl7_date, parse_hl7_datetime
from pipelines.hl7v2.tokenizer import Field, Segment
from schemas.events import (
    Address,
    BedLocation,
    Coding,
    HumanName,
    Identifier,
    Practitioner,
    Telecom,
)

HL7_NULL = '""'
LOINC = "http://loinc.org"
# Coding systems (HL7 table 0396) given a canonical URI; the rest are kept as sent.
_SYSTEM_URIS = {"LN": LOINC}

TelecomSystem = Literal["phone", "fax", "email", "pager", "url", "other"]
# HL7 table 0202 (telecommunication equipment type) → FHIR ContactPoint.system.
_EQUIPMENT: dict[str, TelecomSystem] = {
    "PH": "phone",
    "CP": "phone",
    "FX": "fax",
    "BP": "pager",
    "MD": "other",
    "SAT": "other",
    "TDD": "other",
    "TTY": "other",
}
_EMAIL_EQUIPMENT = frozenset({"INTERNET", "X.400"})


class MappingError(ValueError):
    """A message that parses but cannot be mapped to a canonical event.

    The text names the field and the problem, never a value from the message.
    """


def text(field: Field, component: int = 1, subcomponent: int = 1) -> str | None:
    """One leaf value, or ``None`` when empty or the HL7 null ``""``."""
    value = field.value(component, subcomponent).strip()
    if not value or value == HL7_NULL:
        return None
    return value


def code(field: Field, component: int = 1) -> str | None:
    """A code from an HL7 table, upper-cased (feeds send ``m`` for ``M``)."""
    value = text(field, component)
    return value.upper() if value is not None else None


def repetitions(field: Field) -> list[Field]:
    """The repetitions that hold something (a ``""`` repetition holds nothing)."""
    return [rep for rep in field.repetitions if rep.raw.strip() and rep.raw.strip() != HL7_NULL]


def field_of(segment: Segment | None, number: int) -> Field | None:
    """Field ``number`` of a segment that may be missing."""
    return None if segment is None else segment.field(number)


def identifier(rep: Field) -> Identifier | None:
    """CX: ID (CX.1), assigning authority namespace (CX.4.1), type (CX.5)."""
    value = text(rep, 1)
    if value is None:
        return None
    return Identifier(value=value, authority=text(rep, 4), type=code(rep, 5))


def identifiers(field: Field) -> list[Identifier]:
    """Every CX repetition that carries an ID, in the order sent."""
    found = (identifier(rep) for rep in repetitions(field))
    return [ident for ident in found if ident is not None]


def human_name(rep: Field) -> HumanName | None:
    """XPN: family (XPN.1.1), given and middle names (XPN.2, XPN.3), suffix,
    prefix, name type."""
    family = text(rep, 1)
    given = [name for name in (text(rep, 2), text(rep, 3)) if name is not None]
    if family is None and not given:
        return None
    return HumanName(
        family=family, given=given, suffix=text(rep, 4), prefix=text(rep, 5), use=code(rep, 7)
    )


def human_names(field: Field) -> list[HumanName]:
    found = (human_name(rep) for rep in repetitions(field))
    return [name for name in found if name is not None]


def address(rep: Field) -> Address | None:
    """XAD: street (SAD.1 and SAD.2 as lines, else dwelling number and street
    name on one line), other designation, city, state, postal code, country, type."""
    street, street_name = text(rep, 1, 1), text(rep, 1, 2)
    if street is None:
        parts = [part for part in (text(rep, 1, 3), street_name) if part is not None]
        street, street_name = " ".join(parts) or None, None
    # SAD.2 beside SAD.1 is a line of its own (the IG's line[2]), never dropped.
    lines = [line for line in (street, street_name, text(rep, 2)) if line is not None]
    found = Address(
        lines=lines,
        city=text(rep, 3),
        state=text(rep, 4),
        postal_code=text(rep, 5),
        country=text(rep, 6),
        use=code(rep, 7),
    )
    if not lines and not any((found.city, found.state, found.postal_code, found.country)):
        return None
    return found


def addresses(field: Field) -> list[Address]:
    found = (address(rep) for rep in repetitions(field))
    return [item for item in found if item is not None]


def _phone_number(rep: Field) -> str | None:
    # v2.3+ splits the number (XTN.5 country, .6 area, .7 local, .8 extension);
    # older feeds send it whole in XTN.1, some in XTN.12 (unformatted).
    local = text(rep, 7)
    if local is not None:
        country, area, extension = text(rep, 5), text(rep, 6), text(rep, 8)
        number = " ".join(
            part for part in (f"+{country}" if country else None, area, local) if part
        )
        return f"{number} X{extension}" if extension else number
    return text(rep, 12) or text(rep, 1)


def telecom(rep: Field) -> Telecom | None:
    """XTN: an e-mail address (XTN.4, for equipment Internet/X.400 or use NET)
    or a number (XTN.7 with its country and area codes, else XTN.12, else XTN.1)."""
    equipment, use = code(rep, 3), code(rep, 2)
    email = text(rep, 4)
    is_email = equipment in _EMAIL_EQUIPMENT or use == "NET" or (equipment is None and bool(email))
    if is_email:
        value = email or text(rep, 1)
        return None if value is None else Telecom(system="email", value=value, use=use)
    number = _phone_number(rep)
    if number is None:
        return None
    system = _EQUIPMENT.get(equipment or "PH", "other")
    return Telecom(system=system, value=number, use=use)


def telecoms(field: Field) -> list[Telecom]:
    found = (telecom(rep) for rep in repetitions(field))
    return [item for item in found if item is not None]


def bed_location(field: Field) -> BedLocation | None:
    """PL: point of care (PL.1), room, bed, facility; each the first
    subcomponent, as v2.7+ sends them as HD (``ward&OID&ISO``)."""
    ward = text(field, 1, 1)
    if ward is None:
        return None
    return BedLocation(
        ward=ward, room=text(field, 2, 1), bed=text(field, 3, 1), facility=text(field, 4, 1)
    )


def practitioner(rep: Field) -> Practitioner | None:
    """XCN: ID (XCN.1), family (XCN.2.1), given and middle names (XCN.3, XCN.4)."""
    ident, family = text(rep, 1), text(rep, 2, 1)
    given = [name for name in (text(rep, 3), text(rep, 4)) if name is not None]
    if ident is None and family is None and not given:
        return None
    return Practitioner(id=ident, family=family, given=given)


def practitioners(field: Field) -> list[Practitioner]:
    found = (practitioner(rep) for rep in repetitions(field))
    return [item for item in found if item is not None]


def coding_system(name: str | None) -> str | None:
    """The canonical URI of an HL7 coding system name (LN → LOINC), else the name."""
    if name is None:
        return None
    return _SYSTEM_URIS.get(name.upper(), name)


def coding(field: Field, *, alternate: bool = False) -> Coding | None:
    """CWE/CE/CNE: the primary triplet (.1 code, .2 text, .3 system), or the
    alternate one (.4-.6). The display falls back on the original text (.9)."""
    first = 4 if alternate else 1
    value = text(field, first)
    if value is None:
        return None
    return Coding(
        system=coding_system(text(field, first + 2)),
        code=value,
        display=text(field, first + 1) or text(field, 9),
    )


def codings(field: Field) -> list[Coding]:
    """The primary and alternate codings of a CWE, those present."""
    found = (coding(field), coding(field, alternate=True))
    return [item for item in found if item is not None]


def timestamp(segment: Segment | None, number: int, default_tz: tzinfo) -> datetime | None:
    """A DTM field (its first component) as an aware datetime; ``None`` when absent.

    Raises :class:`MappingError` naming the field when it cannot be read.
    """
    if segment is None:
        return None
    value = text(segment.field(number))
    if value is None:
        return None
    try:
        return parse_hl7_datetime(value, default_tz)
    except Hl7TimestampError as exc:
        raise MappingError(f"{segment.name}-{number}: {exc}") from exc


def calendar_date(segment: Segment | None, number: int) -> date | None:
    """A DT (or DTM) field as a date; ``None`` when absent."""
    if segment is None:
        return None
    value = text(segment.field(number))
    if value is None:
        return None
    try:
        return parse_hl7_date(value)
    except Hl7TimestampError as exc:
        raise MappingError(f"{segment.name}-{number}: {exc}") from exc
