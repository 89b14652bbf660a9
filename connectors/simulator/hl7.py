"""Rendering simulated events as HL7 v2.5 ER7 text (``\\r`` between segments).

Plain string building: the simulator emits hundreds of thousands of messages
per simulated month, and the layout is fixed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from connectors.simulator._events import Location, SimEvent, Vitals
from connectors.simulator._people import Person
from connectors.simulator.config import HospitalConfig

HL7_VERSION = "2.5"
SEGMENT_END = "\r"

_MESSAGE_TYPES = {
    "A01": "ADT^A01^ADT_A01",
    "A02": "ADT^A02^ADT_A02",
    "A03": "ADT^A03^ADT_A03",
    "R01": "ORU^R01^ORU_R01",
}
VITALS_PANEL = "85353-1^Vital signs panel^LN"
# (LOINC code, display, HL7 value type, UCUM unit) in NEWS2 order.
VITAL_CODES: tuple[tuple[str, str, str, str], ...] = (
    ("9279-1", "Respiratory rate", "NM", "/min"),
    ("59408-5", "Oxygen saturation by pulse oximetry", "NM", "%"),
    ("8867-4", "Heart rate", "NM", "/min"),
    ("8310-5", "Body temperature", "NM", "Cel"),
    ("8480-6", "Systolic blood pressure", "NM", "mm[Hg]"),
    ("67775-7", "Level of responsiveness", "CWE", ""),
    ("3151-8", "Inhaled oxygen flow rate", "NM", "L/min"),
)
ACVPU_DISPLAY = {
    "A": "Alert",
    "C": "New confusion",
    "V": "Responds to voice",
    "P": "Responds to pain",
    "U": "Unresponsive",
}


@lru_cache(maxsize=8192)
def hl7_timestamp(at: datetime, zone: ZoneInfo) -> str:
    """``YYYYMMDDHHMMSS+ZZZZ`` in the hospital's zone."""
    return at.astimezone(zone).strftime("%Y%m%d%H%M%S%z")


def _segment(name: str, fields: Mapping[int, str]) -> str:
    values = [""] * (max(fields) + 1)
    values[0] = name
    for i, value in fields.items():
        values[i] = value
    return "|".join(values)


@lru_cache(maxsize=4096)
def _pid(person: Person, authority: str) -> str:
    # Cached: a patient's PID repeats in every message of the stay.
    return _segment(
        "PID",
        {
            1: "1",
            3: f"{person.mrn}^^^{authority}^MR",
            5: f"{person.family}^{person.given}^^^^^L",
            7: person.birth_date.strftime("%Y%m%d"),
            8: person.sex,
            11: f"{person.street}^^{person.town}^^{person.postcode}^GBR^H",
            13: f"{person.phone}^PRN^PH",
        },
    )


def _location(loc: Location) -> str:
    return f"{loc.ward}^{loc.room}^{loc.bed}^{loc.facility}"


def msh(config: HospitalConfig, *, message_type: str, control_id: str, timestamp: str) -> str:
    """The MSH segment; MSH-1 and MSH-2 are the field separator and encoding characters."""
    return (
        f"MSH|^~\\&|{config.sending_application}|{config.facility}|"
        f"{config.receiving_application}|{config.receiving_facility}|{timestamp}||"
        f"{message_type}|{control_id}|P|{HL7_VERSION}"
    )


def render(event: SimEvent, *, config: HospitalConfig, zone: ZoneInfo, control_id: str) -> str:
    """One complete message for ``event``, each segment terminated by ``\\r``."""
    ts = hl7_timestamp(event.at, zone)
    visit = event.visit
    auth = config.assigning_authority
    segments = [
        msh(config, message_type=_MESSAGE_TYPES[event.kind], control_id=control_id, timestamp=ts)
    ]
    if event.kind != "R01":
        segments.append(_segment("EVN", {1: event.kind, 2: ts, 6: ts}))
    segments.append(_pid(visit.person, auth))
    pv1 = {
        1: "1",
        2: "I",
        3: _location(event.location),
        10: event.service,
        19: f"{visit.visit_number}^^^{auth}^VN",
        44: hl7_timestamp(visit.admitted_at, zone),
    }
    if event.prior_location is not None:
        pv1[6] = _location(event.prior_location)
    if event.discharged_at is not None:
        pv1[45] = hl7_timestamp(event.discharged_at, zone)
    segments.append(_segment("PV1", pv1))
    if event.vitals is not None:
        segments.extend(_observations(event.vitals, ts=ts, order_id=control_id))
    return SEGMENT_END.join(segments) + SEGMENT_END


def _observations(vitals: Vitals, *, ts: str, order_id: str) -> list[str]:
    obr = _segment("OBR", {1: "1", 2: order_id, 3: order_id, 4: VITALS_PANEL, 7: ts, 25: "F"})
    values = (
        str(vitals.respiratory_rate),
        str(vitals.spo2),
        str(vitals.heart_rate),
        f"{vitals.temperature:.1f}",
        str(vitals.systolic_bp),
        f"{vitals.consciousness}^{ACVPU_DISPLAY[vitals.consciousness]}^L",
        f"{vitals.oxygen_l_min:g}",
    )
    lines = [obr]
    for i, ((code, display, vtype, unit), value) in enumerate(
        zip(VITAL_CODES, values, strict=True), start=1
    ):
        units = f"{unit}^{unit}^UCUM" if unit else ""
        # OBX-1 set id, -2 type, -3 code, -5 value, -6 units, -11 status, -14 time.
        lines.append(f"OBX|{i}|{vtype}|{code}^{display}^LN||{value}|{units}|||||F|||{ts}")
    return lines


def batch_header(
    parties: tuple[str, str, str, str], *, timestamp: str, file_name: str, batch_id: str
) -> str:
    """FHS and BHS segments that open an HL7 batch file.

    ``parties`` are the sending application and facility and the receiving
    application and facility, as in MSH-3..6.
    """
    common = "|".join(["|^~\\&", *parties, timestamp])
    # FHS-9 names the file, BHS-11 carries the batch control id.
    return f"FHS{common}||{file_name}{SEGMENT_END}BHS{common}||||{batch_id}{SEGMENT_END}"


def batch_trailer(message_count: int) -> str:
    """BTS (message count) and FTS (one batch) segments that close an HL7 batch file."""
    return f"BTS|{message_count}{SEGMENT_END}FTS|1{SEGMENT_END}"
