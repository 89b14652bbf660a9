"""Code systems, and the HL7 v2 → FHIR concept maps of the v2-to-FHIR IG that the mapping uses.

Each table is the IG concept map of the same name, restricted to rows that map
to a code (``tests/golden/fhir_map`` checks them against the IG's CSV sources).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

THO = "http://terminology.hl7.org/CodeSystem/"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
V2_0003 = THO + "v2-0003"
V2_0004 = THO + "v2-0004"
V2_0023 = THO + "v2-0023"
V2_0069 = THO + "v2-0069"
V2_0078 = THO + "v2-0078"
V2_0112 = THO + "v2-0112"
V2_0116 = THO + "v2-0116"
V2_0203 = THO + "v2-0203"
V3_ACT_CODE = THO + "v3-ActCode"
V3_NULL_FLAVOR = THO + "v3-NullFlavor"
V3_DATA_OPERATION = THO + "v3-DataOperation"
V3_INTERPRETATION = THO + "v3-ObservationInterpretation"
V3_PARTICIPATION_TYPE = THO + "v3-ParticipationType"
OBSERVATION_CATEGORY = THO + "observation-category"
LOCATION_PHYSICAL_TYPE = THO + "location-physical-type"
PROVENANCE_PARTICIPANT_TYPE = THO + "provenance-participant-type"
SERVICE_TYPE = THO + "service-type"
DATA_ABSENT_REASON = THO + "data-absent-reason"
# Code systems that have no URI of their own (HL7 "L", "99zzz" local tables).
LOCAL_CODE_SYSTEM_BASE = "urn:wardstream:code:"

# PatientClass[EncounterClass]: PV1-2 → Encounter.class.
PATIENT_CLASS: dict[str, tuple[str, str, str]] = {
    "E": (V3_ACT_CODE, "EMER", "emergency"),
    "I": (V3_ACT_CODE, "IMP", "inpatient encounter"),
    "O": (V3_ACT_CODE, "AMB", "ambulatory"),
    "P": (V3_ACT_CODE, "PRENC", "pre-admission"),
    "R": (V2_0004, "R", "Recurring patient"),
    "B": (V2_0004, "B", "Obstetrics"),
    "C": (V2_0004, "C", "Commercial Account"),
    "N": (V2_0004, "N", "Not Applicable"),
    "U": (V2_0004, "U", "Unknown"),
}
# Reverse of PATIENT_CLASS, plus the other ActEncounterCode codes folded onto the nearest v2 class.
ACT_CODE_TO_CLASS: dict[str, str] = {
    "EMER": "E",
    "IMP": "I",
    "ACUTE": "I",
    "NONAC": "I",
    "AMB": "O",
    "OBSENC": "O",
    "SS": "O",
    "HH": "O",
    "VR": "O",
    "FLD": "O",
    "PRENC": "P",
}
UNKNOWN_CLASS = (V3_NULL_FLAVOR, "UNK", "unknown")

# InterpretationCodes: OBX-8 → Observation.interpretation (v3-ObservationInterpretation).
INTERPRETATION: dict[str, str] = {
    "<": "Off scale low",
    ">": "Off scale high",
    "A": "Abnormal",
    "AA": "Critical abnormal",
    "B": "Better",
    "CAR": "Carrier",
    "D": "Significant change down",
    "DET": "Detected",
    "E": "Equivocal",
    "EX": "outside threshold",
    "EXP": "Expected",
    "H": "High",
    "HH": "Critical high",
    "HU": "Significantly high",
    "I": "Intermediate",
    "IE": "Insufficient evidence",
    "IND": "Indeterminate",
    "L": "Low",
    "LL": "Critical low",
    "LU": "Significantly low",
    "MS": "moderately susceptible",
    "N": "Normal",
    "NCL": "No CLSI defined breakpoint",
    "ND": "Not detected",
    "NEG": "Negative",
    "NR": "Non-reactive",
    "NS": "Non-susceptible",
    "POS": "Positive",
    "R": "Resistant",
    "RR": "Reactive",
    "S": "Susceptible",
    "SDD": "Susceptible-dose dependent",
    "SYN-R": "Synergy - resistant",
    "SYN-S": "Synergy - susceptible",
    "U": "Significant change up",
    "VS": "very susceptible",
    "UNE": "Unexpected",
    "W": "Worse",
    "WR": "Weakly reactive",
}

# NameType (table 0200) → HumanName.use; the reverse picks one v2 code per FHIR code.
NAME_USE: dict[str, str] = {
    "BAD": "old",
    "D": "usual",
    "L": "official",
    "M": "maiden",
    "MSK": "anonymous",
    "N": "nickname",
    "NAV": "temp",
    "R": "official",
    "TEMP": "temp",
}
NAME_USE_TO_V2: dict[str, str] = {
    "old": "BAD",
    "usual": "D",
    "official": "L",
    "maiden": "M",
    "anonymous": "MSK",
    "nickname": "N",
    "temp": "TEMP",
}

# AddressType[Use] (table 0190) → Address.use.
ADDRESS_USE: dict[str, str] = {
    "BA": "old",
    "BI": "billing",
    "C": "temp",
    "B": "work",
    "H": "home",
    "O": "work",
}
ADDRESS_USE_TO_V2 = {"old": "BA", "billing": "BI", "temp": "C", "work": "B", "home": "H"}

# TelecommunicationUseCode (table 0201) → ContactPoint.use.
TELECOM_USE: dict[str, str] = {"PRN": "home", "WPN": "work", "PRS": "mobile"}
TELECOM_USE_TO_V2 = {v: k for k, v in TELECOM_USE.items()}

# BedStatus (table 0116) → Location.operationalStatus.
BED_STATUS: dict[str, str] = {
    "C": "Closed",
    "H": "Housekeeping",
    "O": "Occupied",
    "U": "Unoccupied",
    "K": "Contaminated",
    "I": "Isolated",
}

# HospitalService (table 0069) → Encounter.serviceType.
HOSPITAL_SERVICE: dict[str, tuple[str, str, str]] = {
    "MED": (SERVICE_TYPE, "382", "Medical Services"),
    "SUR": (V2_0069, "SUR", "Surgical Service"),
    "URO": (SERVICE_TYPE, "222", "Urology"),
    "PUL": (V2_0069, "PUL", "Pulmonary Service"),
    "CAR": (V2_0069, "CAR", "Cardiac Service"),
}

# IdentifierType (table 0203): displays for the identifier types seen on patients and visits.
IDENTIFIER_TYPE: dict[str, str] = {
    "AN": "Account number",
    "BR": "Birth registry number",
    "DL": "Driver's license number",
    "DN": "Doctor number",
    "HC": "Health Card Number",
    "JHN": "Jurisdictional health number (Canada)",
    "MA": "Patient Medicaid number",
    "MC": "Patient's Medicare number",
    "MR": "Medical record number",
    "MRT": "Temporary Medical Record Number",
    "NH": "National Health Plan Identifier",
    "NI": "National unique individual identifier",
    "PI": "Patient internal identifier",
    "PN": "Person number",
    "PPN": "Passport number",
    "PT": "Patient external identifier",
    "SS": "Social Security number",
    "U": "Unspecified identifier",
    "VN": "Visit number",
}

# EventType (table 0003): displays of the triggers that become canonical events.
EVENT_TYPE: dict[str, str] = {
    "A01": "ADT/ACK - Admit/visit notification",
    "A02": "ADT/ACK - Transfer a patient",
    "A03": "ADT/ACK - Discharge/end visit",
    "A04": "ADT/ACK - Register a patient",
    "A05": "ADT/ACK - Pre-admit a patient",
    "A06": "ADT/ACK - Change an outpatient to an inpatient",
    "A07": "ADT/ACK - Change an inpatient to an outpatient",
    "A08": "ADT/ACK - Update patient information",
    "A11": "ADT/ACK - Cancel admit/visit notification",
    "A12": "ADT/ACK - Cancel transfer",
    "A13": "ADT/ACK - Cancel discharge/end visit",
    "A17": "ADT/ACK - Swap patients",
    "A21": 'ADT/ACK - Patient goes on a "leave of absence"',
    "A22": 'ADT/ACK - Patient returns from a "leave of absence"',
    "A28": "ADT/ACK - Add person information",
    "A31": "ADT/ACK - Update person information",
    "A40": "ADT/ACK - Merge patient - patient identifier list",
    "R01": "ORU/ACK - Unsolicited transmission of an observation message",
}

_NAMED_SYSTEMS = {"LN": LOINC, "SCT": SNOMED, "UCUM": UCUM, "I10": ICD10, "I10C": ICD10_CM}
_SYSTEM_NAMES = {uri: name for name, uri in _NAMED_SYSTEMS.items()}
_HL7_TABLE = re.compile(r"HL7(\d{4})")
_THO_V2_TABLE = re.compile(re.escape(THO) + r"v2-(\d{4})")


def is_uri(text: str) -> bool:
    return text.startswith(("http://", "https://", "urn:"))


def code_system_uri(system: str) -> str:
    """The FHIR URI of a coding system given as an HL7v2 name (LN, HL70078, L) or a URI."""
    if is_uri(system):
        return system
    known = _NAMED_SYSTEMS.get(system)
    if known is not None:
        return known
    table = _HL7_TABLE.fullmatch(system)
    if table is not None:
        return f"{THO}v2-{table.group(1)}"
    return LOCAL_CODE_SYSTEM_BASE + quote(system, safe="")


def code_system_name(uri: str) -> str:
    """Inverse of :func:`code_system_uri`: the HL7v2 name where there is one, else the URI."""
    known = _SYSTEM_NAMES.get(uri)
    if known is not None:
        return known
    table = _THO_V2_TABLE.fullmatch(uri)
    if table is not None:
        return f"HL7{table.group(1)}"
    if uri.startswith(LOCAL_CODE_SYSTEM_BASE):
        return unquote(uri.removeprefix(LOCAL_CODE_SYSTEM_BASE))
    return uri
