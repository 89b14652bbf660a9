"""from_fhir without validation on arbitrary JSON: events or FhirInputError, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.fhir_map import FhirInputError, from_fhir

RECEIVED = datetime(2024, 3, 9, 8, 0, tzinfo=UTC)
KEYS = [
    "id",
    "status",
    "subject",
    "identifier",
    "location",
    "participant",
    "class",
    "period",
    "contained",
    "physicalType",
    "partOf",
    "name",
    "operationalStatus",
    "code",
    "category",
    "valueQuantity",
    "valueString",
    "valueCodeableConcept",
    "valueInteger",
    "component",
    "referenceRange",
    "interpretation",
    "encounter",
    "issued",
    "effectiveDateTime",
    "entry",
    "type",
    "reference",
    "display",
    "value",
    "system",
    "coding",
    "start",
    "end",
    "given",
    "family",
    "telecom",
    "address",
    "deceasedDateTime",
    "birthDate",
    "gender",
    "fullUrl",
    "resource",
    "hospitalization",
    "serviceType",
    "meta",
    "lastUpdated",
]
TYPES = ["Patient", "Encounter", "Location", "Observation", "Bundle"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.sampled_from(
        [
            "",
            "x",
            "Patient/1",
            "#p",
            "Location/2",
            "in-progress",
            "finished",
            "completed",
            "active",
            "bd",
            "wa",
            "ro",
            "final",
            "2024-03-01T10:00:00Z",
            "2024",
            "urn:wardstream:id:location",
            "4W^12^A",
            "^^^",
            "VN",
            "ATND",
            "http://loinc.org",
            "collection",
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=20,
)


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    body = draw(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8))
    return {**body, "resourceType": draw(st.sampled_from(TYPES))}


@settings(max_examples=300, deadline=None)
@given(resources())
def test_unvalidated_input_never_crashes_the_mapping(resource: dict[str, Any]) -> None:
    issues: tuple[object, ...] = ("mapped",)
    try:
        events = from_fhir(resource, received_at=RECEIVED, validate=False)
    except FhirInputError as exc:
        issues = exc.issues
    else:
        assert isinstance(events, list)
    assert issues
