"""ORU^R01 → :class:`schemas.events.ObservationEvent`, one per ORDER_OBSERVATION.

An order observation is an OBR and the OBX segments after it, up to the next
OBR or PID (those in its SPECIMEN group included). A feed that sends no OBR at
all gets its OBX segments read as one order. OBX segments before the first OBR
of a message that has OBRs sit outside every order and are not mapped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Literal

from pipelines.hl7v2._adt import encounter, patient
from pipelines.hl7v2._datatypes import (
    LOINC,
    MappingError,
    code,
    coding,
    codings,
    repetitions,
    text,
    timestamp,
)
from pipelines.hl7v2.tokenizer import Delimiters, Field, Message, Segment
from schemas.events import (
    Coding,
    Observation,
    ObservationEvent,
    ObservationStatus,
    ReferenceRange,
)

# FHIR vital-signs profile codes and the NEWS2 inputs (RCP 2017).
VITAL_SIGNS_LOINC: frozenset[str] = frozenset(
    {
        "85353-1",  # vital signs panel
        "9279-1",  # respiratory rate
        "59408-5",  # oxygen saturation by pulse oximetry
        "2708-6",  # oxygen saturation in arterial blood
        "8867-4",  # heart rate
        "8310-5",  # body temperature
        "8480-6",  # systolic blood pressure
        "8462-4",  # diastolic blood pressure
        "8478-0",  # mean blood pressure
        "85354-9",  # blood pressure panel
        "67775-7",  # level of responsiveness (ACVPU)
        "3151-8",  # inhaled oxygen flow rate
        "3150-0",  # inhaled oxygen concentration
        "8302-2",  # body height
        "29463-7",  # body weight
        "39156-5",  # body mass index
        "9843-4",  # head circumference
    }
)

# HL7 table 0085 (observation result status) → FHIR Observation.status.
_OBX_STATUS: dict[str, ObservationStatus] = {
    "F": "final",
    "U": "final",
    "V": "final",
    "C": "corrected",
    "A": "amended",
    "B": "amended",
    "P": "preliminary",
    "R": "preliminary",
    "S": "preliminary",
    "I": "registered",
    "O": "registered",
    "X": "cancelled",
    "N": "cancelled",
    "D": "entered-in-error",
    "W": "entered-in-error",
}
# HL7 table 0123 (OBR-25 result status), read when an OBX leaves OBX-11 empty.
_OBR_STATUS: dict[str, ObservationStatus] = {
    "F": "final",
    "C": "corrected",
    "A": "preliminary",
    "P": "preliminary",
    "R": "preliminary",
    "O": "registered",
    "I": "registered",
    "S": "registered",
    "X": "cancelled",
}

_TEXT_TYPES = frozenset({"ST", "TX", "FT"})
_CODED_TYPES = frozenset({"CWE", "CE", "CNE", "CF"})
_PLAIN_CODE_TYPES = frozenset({"IS", "ID"})
_TIME_TYPES = frozenset({"DT", "DTM", "TM", "TS"})
_COMPARATORS = frozenset({"<", ">", "<=", ">="})
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_COMPARED = re.compile(r"(<=|>=|<|>)\s*([+-]?(?:\d+\.?\d*|\.\d+))")
_RANGE = re.compile(
    r"\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*(?:-|to|\u2013)\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*",
    re.IGNORECASE,
)
_BOUND = re.compile(r"\s*(<=|>=|<|>)\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*")


@dataclass
class _Order:
    pid: Segment
    pv1: Segment | None
    obr: Segment | None
    obx: list[Segment] = field(default_factory=list)


def _orders(msg: Message) -> list[_Order]:
    has_obr = msg.segment("OBR") is not None
    orders: list[_Order] = []
    pid: Segment | None = None
    pv1: Segment | None = None
    current: _Order | None = None
    for seg in msg:
        name = seg.name
        if name == "PID":
            pid, pv1, current = seg, None, None
        elif name == "PV1" and pid is not None and pv1 is None:
            pv1 = seg
        elif name == "OBR" and pid is not None:
            current = _Order(pid, pv1, seg)
            orders.append(current)
        elif name == "OBX" and pid is not None:
            if current is None and not has_obr:
                current = _Order(pid, pv1, None)
                orders.append(current)
            if current is not None:
                current.obx.append(seg)
    return orders


def _whole_text(rep: Field, d: Delimiters) -> str:
    """A text value with any unescaped component or subcomponent separators kept,
    so free text that forgot to escape ``^`` or ``&`` loses nothing."""
    components = []
    for c, comp in enumerate(rep.raw.split(d.component), start=1):
        subs = comp.split(d.subcomponent)
        components.append(d.subcomponent.join(rep.value(c, s) for s in range(1, len(subs) + 1)))
    return d.component.join(components).rstrip(d.component).strip()


def _number(value: str | None) -> float | None:
    return float(value) if value is not None and _NUMBER.fullmatch(value) else None


def _numeric_value(rep: Field, value_type: str) -> tuple[dict[str, Any], str | None]:
    """(value fields, the repetition as text) of an NM or SN repetition."""
    if value_type == "SN":
        comparator, first, separator, second = (text(rep, n) for n in (1, 2, 3, 4))
        rendered = "".join(part for part in (comparator, first, separator, second) if part)
        number = _number(first)
        if separator is None and second is None and number is not None:
            if comparator in (None, "="):
                return {"value_number": number}, rendered
            if comparator in _COMPARATORS:
                return {"value_number": number, "comparator": comparator}, rendered
        return {"value_text": rendered or None}, rendered
    value = text(rep, 1) or ""
    number = _number(value)
    if number is not None:
        return {"value_number": number}, value
    compared = _COMPARED.fullmatch(value)
    if compared is not None:
        return {"value_number": float(compared[2]), "comparator": compared[1]}, value
    return {"value_text": value or None}, value


def _value(obx: Segment, value_type: str, d: Delimiters) -> dict[str, Any]:
    """Observation value fields from OBX-5. Numeric and coded types take the
    first repetition; with several, all of them are also kept as text."""
    reps = repetitions(obx.field(5))
    if not reps:
        return {}
    if value_type in _TEXT_TYPES:
        return {"value_text": "\n".join(_whole_text(rep, d) for rep in reps) or None}
    if value_type in ("NM", "SN"):
        found = [_numeric_value(rep, value_type) for rep in reps]
        if len(found) > 1:
            return {**found[0][0], "value_text": "; ".join(shown for _, shown in found if shown)}
        return found[0][0]
    if value_type in _CODED_TYPES or value_type in _PLAIN_CODE_TYPES:
        coded = [coding(rep) if value_type in _CODED_TYPES else _plain_code(rep) for rep in reps]
        present = [item for item in coded if item is not None]
        coded_value: dict[str, Any] = {"value_code": present[0]} if present else {}
        if len(reps) > 1 or not present:
            shown = [item.display or item.code for item in present] or [
                t for rep in reps if (t := text(rep, 2) or text(rep, 9)) is not None
            ]
            coded_value["value_text"] = "; ".join(shown) or None
        return coded_value
    if value_type in _TIME_TYPES:
        times = [t for rep in reps if (t := text(rep, 1)) is not None]
        return {"value_text": "; ".join(times) or None}
    # ED, RP, NA, NR, ...: binary data and pointers are not carried in the event.
    return {}


def _plain_code(rep: Field) -> Coding | None:
    value = text(rep, 1)
    return None if value is None else Coding(code=value)


def _reference_range(obx: Segment) -> ReferenceRange | None:
    """OBX-7 as sent, with its limits when it reads ``low-high``, ``low to high``,
    ``<high`` or ``>low``."""
    value = text(obx.field(7))
    if value is None:
        return None
    both = _RANGE.fullmatch(value)
    if both is not None:
        return ReferenceRange(low=float(both[1]), high=float(both[2]), text=value)
    bound = _BOUND.fullmatch(value)
    if bound is not None:
        limit = float(bound[2])
        if bound[1].startswith("<"):
            return ReferenceRange(high=limit, text=value)
        return ReferenceRange(low=limit, text=value)
    return ReferenceRange(text=value)


def _status(obx: Segment, obr: Segment | None, where: str) -> ObservationStatus:
    status = code(obx.field(11))
    if status is None:
        fallback = code(obr.field(25)) if obr is not None else None
        if fallback is not None and fallback in _OBR_STATUS:
            return _OBR_STATUS[fallback]
        raise MappingError(f"OBX-11: observation result status missing ({where})")
    if status not in _OBX_STATUS:
        raise MappingError(f"OBX-11: unknown observation result status ({where})")
    return _OBX_STATUS[status]


def _category(found: list[Coding]) -> Literal["vital-signs", "laboratory", "other"]:
    loinc = [item.code for item in found if item.system == LOINC]
    if any(item in VITAL_SIGNS_LOINC for item in loinc):
        return "vital-signs"
    return "laboratory" if loinc else "other"


def observation(
    obx: Segment, obr: Segment | None, d: Delimiters, default_tz: tzinfo, where: str
) -> Observation:
    """One OBX → Observation. Raises :class:`MappingError` for a missing
    identifier or status, or an unreadable time."""
    found = codings(obx.field(3))
    if not found:
        raise MappingError(f"OBX-3: observation identifier missing ({where})")
    value_type = code(obx.field(2)) or ""
    if not value_type and repetitions(obx.field(5)):
        raise MappingError(f"OBX-2: value type missing for a valued OBX-5 ({where})")
    units = obx.field(6)
    try:
        effective = timestamp(obx, 14, default_tz) or timestamp(obr, 7, default_tz)
    except MappingError as exc:
        raise MappingError(f"{exc} ({where})") from exc
    return Observation(
        code=found[0],
        category=_category(found),
        value_type=value_type,
        **_value(obx, value_type, d),
        unit=text(units, 1),
        unit_system=text(units, 3),
        reference_range=_reference_range(obx),
        abnormal_flags=[flag for rep in repetitions(obx.field(8)) if (flag := text(rep, 1))],
        status=_status(obx, obr, where),
        effective_at=effective,
        set_id=text(obx.field(1)),
    )


def observation_events(msg: Message, message_id: str, default_tz: tzinfo) -> list[ObservationEvent]:
    """Map an ORU^R01 message to one event per order observation that has results."""
    orders = [order for order in _orders(msg) if order.obx]
    if not orders:
        if msg.segment("PID") is None:
            raise MappingError("PID: patient identification segment missing on ORU^R01")
        raise MappingError("OBX: no observation in any order of ORU^R01")
    reported = timestamp(msg.msh, 7, default_tz)
    events = []
    count = 0
    for number, order in enumerate(orders, start=1):
        who = patient(order.pid, default_tz, where=" on ORU^R01")
        results = []
        for obx in order.obx:
            count += 1
            where = f"OBX #{count} of ORU^R01"
            results.append(observation(obx, order.obr, msg.delimiters, default_tz, where))
        occurred = timestamp(order.obr, 22, default_tz) or reported
        if occurred is None:
            raise MappingError(f"MSH-7: no report time (OBR-22 of order {number} and MSH-7)")
        events.append(
            ObservationEvent(
                trigger="R01",
                message_id=message_id,
                occurred_at=occurred,
                patient=who,
                encounter=encounter(order.pv1, "unknown", default_tz),
                order_code=coding(order.obr.field(4)) if order.obr is not None else None,
                filler_order_number=text(order.obr.field(3)) if order.obr is not None else None,
                observations=results,
            )
        )
    return events
