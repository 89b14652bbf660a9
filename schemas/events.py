"""Canonical events: the one vocabulary every pipeline after ``normalize`` speaks.

Versioned pydantic models, serialised as JSON payloads of envelopes on
``events.adt`` (keyed by patient) and ``events.obs``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

EVENT_SCHEMA_VERSION: Literal[1] = 1

AdtAction = Literal["admit", "transfer", "discharge"]


class BedLocation(BaseModel):
    """A point of care: facility, ward (point of care), room and bed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ward: str = Field(description="Ward / point of care code (PV1-3.1).")
    room: str | None = Field(default=None, description="Room code (PV1-3.2).")
    bed: str | None = Field(default=None, description="Bed code (PV1-3.3).")
    facility: str | None = Field(default=None, description="Facility code (PV1-3.4).")


class AdtEvent(BaseModel):
    """An admission, transfer or discharge of one patient."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = Field(
        default=EVENT_SCHEMA_VERSION, description="Version of the canonical event schema."
    )
    kind: Literal["adt"] = Field(default="adt", description="Event family discriminator.")
    action: AdtAction = Field(description="What happened to the patient's bed occupancy.")
    trigger: str = Field(description="HL7v2 trigger event that produced it, e.g. A01.")
    message_id: str = Field(description="Source message control id (MSH-10).")
    patient_id: str = Field(description="Primary patient identifier (PID-3, first repetition).")
    patient_id_authority: str | None = Field(
        default=None, description="Assigning authority of the patient identifier (PID-3.4)."
    )
    visit_number: str | None = Field(default=None, description="Visit number (PV1-19).")
    patient_class: str | None = Field(default=None, description="Patient class (PV1-2).")
    location: BedLocation | None = Field(
        default=None, description="Where the patient is after the event (absent on discharge)."
    )
    prior_location: BedLocation | None = Field(
        default=None, description="Where the patient was before (PV1-6), when sent."
    )
    service: str | None = Field(default=None, description="Hospital service (PV1-10).")
    occurred_at: AwareDatetime = Field(
        description="When the event happened (EVN-6, else EVN-2, else MSH-7), with its offset."
    )
