"""Shared builders for the fhir_map unit tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from engine.types import Envelope
from schemas.events import BedLocation, Encounter, Identifier, Patient

RECEIVED = datetime(2024, 3, 1, 10, 15, 2, tzinfo=UTC)


@pytest.fixture
def source() -> Envelope:
    """The HL7v2 envelope an ADT event came in."""
    return Envelope(
        id="env-1",
        correlation_id="MSG0001",
        channel="adt-in",
        received_at=RECEIVED,
        content_type="x-application/hl7-v2+er7",
        payload="MSH|^~\\&|PAS|GENHOSP|||20240301101500||ADT^A01|MSG0001|P|2.5.1",
        headers={"sending_application": "PAS", "sending_facility": "GENHOSP"},
    )


@pytest.fixture
def patient() -> Patient:
    return Patient(
        identifiers=[Identifier(value="MRN1", authority="GENHOSP", type="MR")],
        birth_date=None,
        sex="female",
    )


@pytest.fixture
def bed() -> BedLocation:
    return BedLocation(ward="4W", room="12", bed="A", facility="GENHOSP")


@pytest.fixture
def visit(bed: BedLocation) -> Encounter:
    return Encounter(
        visit_number=Identifier(value="V1", authority="GENHOSP", type="VN"),
        patient_class="I",
        status="in-progress",
        location=bed,
    )


@pytest.fixture
def assert_valid() -> Callable[[dict[str, Any]], None]:
    """Validate one resource with fhir.resources' R4B model of its type."""

    def check(resource: dict[str, Any]) -> None:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)

    return check
