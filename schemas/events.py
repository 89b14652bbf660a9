"""Canonical events: the one vocabulary every pipeline after ``normalize`` speaks.

Versioned pydantic models, serialised as JSON payloads of envelopes on
``events.adt`` (keyed by patient), ``events.obs`` (keyed by patient) and, for
FHIR Location input, ``events.adt`` keyed by ward. HL7v2 and FHIR R4 input
both become these events; FHIR R4 output is made from them.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

EVENT_SCHEMA_VERSION: Literal[1] = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Coding(_Model):
    """A code from a code system (LOINC, SNOMED CT, an HL7 table, or a local one)."""

    system: str | None = Field(
        default=None,
        description="Code system URI (http://loinc.org) or the HL7v2 coding system name (LN, L).",
    )
    code: str = Field(description="The code itself.")
    display: str | None = Field(default=None, description="Human-readable text for the code.")


class Identifier(_Model):
    """An identifier with its assigning authority and type (HL7 CX)."""

    value: str = Field(description="The identifier (CX.1).")
    authority: str | None = Field(
        default=None, description="Assigning authority namespace (CX.4.1)."
    )
    type: str | None = Field(
        default=None, description="Identifier type code, HL7 table 0203 (CX.5): MR, VN, NH..."
    )


class HumanName(_Model):
    """A person's name (HL7 XPN)."""

    family: str | None = Field(default=None, description="Family name (XPN.1).")
    given: list[str] = Field(default_factory=list, description="Given and middle names.")
    prefix: str | None = Field(default=None, description="Prefix, e.g. DR (XPN.5).")
    suffix: str | None = Field(default=None, description="Suffix, e.g. JR (XPN.4).")
    use: str | None = Field(
        default=None, description="Name type code, HL7 table 0200 (XPN.7): L legal, D display..."
    )


class Address(_Model):
    """A postal address (HL7 XAD)."""

    lines: list[str] = Field(default_factory=list, description="Street lines (XAD.1, XAD.2).")
    city: str | None = Field(default=None, description="City (XAD.3).")
    state: str | None = Field(default=None, description="State or province (XAD.4).")
    postal_code: str | None = Field(default=None, description="Postal code (XAD.5).")
    country: str | None = Field(default=None, description="Country (XAD.6).")
    use: str | None = Field(
        default=None, description="Address type, HL7 table 0190 (XAD.7): H home, B business..."
    )


class Telecom(_Model):
    """A phone number or e-mail address (HL7 XTN)."""

    system: Literal["phone", "fax", "email", "pager", "url", "other"] = Field(
        description="Kind of contact point."
    )
    value: str = Field(description="The number or address.")
    use: str | None = Field(
        default=None, description="Use code, HL7 table 0201 (XTN.2): PRN home, WPN work..."
    )


class Patient(_Model):
    """Patient demographics (PID; FHIR Patient)."""

    identifiers: list[Identifier] = Field(
        min_length=1, description="Patient identifiers, the primary one first (PID-3)."
    )
    names: list[HumanName] = Field(default_factory=list, description="Names (PID-5).")
    birth_date: date | None = Field(default=None, description="Date of birth (PID-7).")
    sex: Literal["male", "female", "other", "unknown"] | None = Field(
        default=None, description="Administrative sex (PID-8 mapped to FHIR gender)."
    )
    addresses: list[Address] = Field(default_factory=list, description="Addresses (PID-11).")
    telecom: list[Telecom] = Field(
        default_factory=list, description="Phone numbers and e-mail (PID-13, PID-14)."
    )
    deceased: bool | None = Field(default=None, description="Death indicator (PID-30).")
    deceased_at: AwareDatetime | None = Field(
        default=None, description="Date/time of death (PID-29)."
    )

    @property
    def primary_id(self) -> str:
        return self.identifiers[0].value


class BedLocation(_Model):
    """A point of care: facility, ward (point of care), room and bed (HL7 PL)."""

    ward: str = Field(description="Ward / point of care code (PL.1).")
    room: str | None = Field(default=None, description="Room code (PL.2).")
    bed: str | None = Field(default=None, description="Bed code (PL.3).")
    facility: str | None = Field(default=None, description="Facility code (PL.4).")


class Practitioner(_Model):
    """A clinician (HL7 XCN)."""

    id: str | None = Field(default=None, description="Practitioner identifier (XCN.1).")
    family: str | None = Field(default=None, description="Family name (XCN.2).")
    given: list[str] = Field(default_factory=list, description="Given names (XCN.3, XCN.4).")


EncounterStatus = Literal[
    "planned", "arrived", "in-progress", "onleave", "finished", "cancelled", "unknown"
]


class Encounter(_Model):
    """A visit (PV1/PV2; FHIR Encounter)."""

    visit_number: Identifier | None = Field(default=None, description="Visit number (PV1-19).")
    patient_class: str | None = Field(
        default=None, description="Patient class, HL7 table 0004 (PV1-2): I, O, E, P, R, B..."
    )
    status: EncounterStatus = Field(
        default="unknown", description="Encounter status after the event (FHIR Encounter.status)."
    )
    location: BedLocation | None = Field(
        default=None, description="Assigned location after the event (PV1-3)."
    )
    prior_location: BedLocation | None = Field(
        default=None, description="Prior location, when sent (PV1-6)."
    )
    attending: list[Practitioner] = Field(
        default_factory=list, description="Attending doctors (PV1-7)."
    )
    service: str | None = Field(default=None, description="Hospital service (PV1-10).")
    admit_source: str | None = Field(default=None, description="Admit source (PV1-14).")
    discharge_disposition: str | None = Field(
        default=None, description="Discharge disposition (PV1-36)."
    )
    admitted_at: AwareDatetime | None = Field(
        default=None, description="Admit date/time, with its offset (PV1-44)."
    )
    discharged_at: AwareDatetime | None = Field(
        default=None, description="Discharge date/time, with its offset (PV1-45)."
    )


AdtAction = Literal[
    "admit",  # A01
    "register",  # A04 (outpatient / emergency registration)
    "preadmit",  # A05
    "change_to_inpatient",  # A06
    "change_to_outpatient",  # A07
    "transfer",  # A02
    "discharge",  # A03
    "update",  # A08, A28, A31 (demographics / visit update, no movement)
    "cancel_admit",  # A11
    "cancel_transfer",  # A12
    "cancel_discharge",  # A13
    "swap_beds",  # A17 (two patients)
    "leave_out",  # A21
    "leave_return",  # A22
    "merge",  # A40
]


class AdtEvent(_Model):
    """A patient administration event: admission, transfer, discharge, update, cancel..."""

    schema_version: Literal[1] = Field(
        default=EVENT_SCHEMA_VERSION, description="Version of the canonical event schema."
    )
    kind: Literal["adt"] = Field(default="adt", description="Event family discriminator.")
    action: AdtAction = Field(description="What happened.")
    trigger: str = Field(
        description="Source trigger: the HL7v2 event (A01) or the FHIR interaction (Encounter)."
    )
    message_id: str = Field(description="Source message id: MSH-10, or the FHIR resource id.")
    occurred_at: AwareDatetime = Field(
        description="When the event happened (EVN-6, else EVN-2, else MSH-7), with its offset."
    )
    patient: Patient = Field(description="The patient the event is about.")
    encounter: Encounter | None = Field(default=None, description="The visit, when sent.")
    other_patient: Patient | None = Field(
        default=None, description="The second patient of a bed swap (A17)."
    )
    other_encounter: Encounter | None = Field(
        default=None, description="The second patient's visit in a bed swap (A17)."
    )
    merged_identifiers: list[Identifier] = Field(
        default_factory=list,
        description="Identifiers merged into this patient (MRG-1), for A40.",
    )

    @property
    def patient_id(self) -> str:
        return self.patient.primary_id


ObservationStatus = Literal[
    "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error"
]


class ReferenceRange(_Model):
    low: float | None = Field(default=None, description="Lower limit.")
    high: float | None = Field(default=None, description="Upper limit.")
    text: str | None = Field(default=None, description="The range as sent (OBX-7).")


class Observation(_Model):
    """One result (OBX; FHIR Observation)."""

    code: Coding = Field(description="What was observed (OBX-3): LOINC or a local code.")
    category: Literal["vital-signs", "laboratory", "other"] = Field(
        description="FHIR observation category."
    )
    value_type: str = Field(description="HL7 value type (OBX-2): NM, ST, CWE, CE, TX, SN...")
    value_number: float | None = Field(default=None, description="Numeric value (NM, SN).")
    value_text: str | None = Field(default=None, description="Text value (ST, TX, FT).")
    value_code: Coding | None = Field(default=None, description="Coded value (CWE, CE).")
    comparator: str | None = Field(
        default=None, description="Comparator of a structured numeric (SN): <, <=, >, >=."
    )
    unit: str | None = Field(default=None, description="UCUM unit code (OBX-6.1).")
    unit_system: str | None = Field(
        default=None, description="Unit coding system as sent (OBX-6.3), e.g. UCUM."
    )
    reference_range: ReferenceRange | None = Field(
        default=None, description="Reference range (OBX-7)."
    )
    abnormal_flags: list[str] = Field(
        default_factory=list, description="Abnormal flags, HL7 table 0078 (OBX-8): H, L, A..."
    )
    status: ObservationStatus = Field(description="Result status (OBX-11 mapped to FHIR).")
    effective_at: AwareDatetime | None = Field(
        default=None, description="When observed (OBX-14, else OBR-7), with its offset."
    )
    set_id: str | None = Field(default=None, description="OBX-1 set id within the message.")


class ObservationEvent(_Model):
    """A batch of results for one patient (ORU^R01 order observation; FHIR Observation)."""

    schema_version: Literal[1] = Field(
        default=EVENT_SCHEMA_VERSION, description="Version of the canonical event schema."
    )
    kind: Literal["obs"] = Field(default="obs", description="Event family discriminator.")
    trigger: str = Field(description="Source trigger: R01, or the FHIR resource type.")
    message_id: str = Field(description="Source message id: MSH-10, or the FHIR resource id.")
    occurred_at: AwareDatetime = Field(description="When the results were reported.")
    patient: Patient = Field(description="The patient observed.")
    encounter: Encounter | None = Field(default=None, description="The visit, when sent.")
    order_code: Coding | None = Field(default=None, description="Universal service id (OBR-4).")
    filler_order_number: str | None = Field(
        default=None, description="Filler order number (OBR-3), the report's identity."
    )
    observations: list[Observation] = Field(min_length=1, description="The results.")

    @property
    def patient_id(self) -> str:
        return self.patient.primary_id


class LocationEvent(_Model):
    """A bed, room or ward declared or changed (FHIR Location input)."""

    schema_version: Literal[1] = Field(
        default=EVENT_SCHEMA_VERSION, description="Version of the canonical event schema."
    )
    kind: Literal["location"] = Field(default="location", description="Event family.")
    trigger: str = Field(description="Source trigger, e.g. the FHIR resource type.")
    message_id: str = Field(description="Source id (the FHIR resource id).")
    occurred_at: AwareDatetime = Field(description="When it was received or last updated.")
    location: BedLocation = Field(description="Which ward / room / bed.")
    physical_type: Literal["ward", "room", "bed"] = Field(
        description="Level of the location in the ward → room → bed hierarchy."
    )
    name: str | None = Field(default=None, description="Display name.")
    status: Literal["active", "suspended", "inactive"] = Field(
        default="active", description="FHIR Location.status."
    )
    operational_status: str | None = Field(
        default=None,
        description="Bed operational status code, HL7 table 0116 (O occupied, U unoccupied, C"
        " closed, H housekeeping, K contaminated, I isolated).",
    )


CanonicalEvent = Annotated[AdtEvent | ObservationEvent | LocationEvent, Field(discriminator="kind")]
