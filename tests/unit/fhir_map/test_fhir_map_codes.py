"""Code-system names, PL identifiers and ids: inverses and invariants."""

from __future__ import annotations

import re
import uuid

from hypothesis import example, given
from hypothesis import strategies as st

from pipelines.fhir_map import _codes as codes
from pipelines.fhir_map.ids import ID_NAMESPACE, authority_of, identifier_system, resource_id
from pipelines.fhir_map.location import decode_pl, encode_pl
from schemas.events import BedLocation

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
FHIR_URI = re.compile(r"\S*")
codes_text = st.text(min_size=1, max_size=12)


def test_reverse_maps_are_inverses() -> None:
    for forward, reverse in (
        (codes.NAME_USE, codes.NAME_USE_TO_V2),
        (codes.ADDRESS_USE, codes.ADDRESS_USE_TO_V2),
        (codes.TELECOM_USE, codes.TELECOM_USE_TO_V2),
    ):
        assert set(reverse) == set(forward.values())
        assert all(forward[v2] == fhir for fhir, v2 in reverse.items())
    for v2, (system, code, _) in codes.PATIENT_CLASS.items():
        if system == codes.V3_ACT_CODE:
            assert codes.ACT_CODE_TO_CLASS[code] == v2


def test_named_code_systems() -> None:
    assert codes.code_system_uri("LN") == "http://loinc.org"
    assert codes.code_system_uri("HL70078") == "http://terminology.hl7.org/CodeSystem/v2-0078"
    assert codes.code_system_name("http://terminology.hl7.org/CodeSystem/v2-0203") == "HL70203"
    assert codes.code_system_name("http://example.org/cs") == "http://example.org/cs"


@given(st.text(min_size=1, max_size=20).filter(lambda s: not codes.is_uri(s)))
def test_code_system_names_round_trip(name: str) -> None:
    uri = codes.code_system_uri(name)
    assert FHIR_URI.fullmatch(uri)
    assert codes.code_system_name(uri) == name


@given(st.text(min_size=1, max_size=20))
def test_authorities_round_trip_through_identifier_systems(authority: str) -> None:
    system = identifier_system(authority)
    assert system is not None
    assert FHIR_URI.fullmatch(system)
    assert authority_of(system) == authority


@example(ward="\\S\\", room="a^b", bed="\\", facility=None)
@given(
    ward=codes_text,
    room=st.none() | codes_text,
    bed=st.none() | codes_text,
    facility=st.none() | codes_text,
)
def test_pl_identifier_round_trips(
    ward: str, room: str | None, bed: str | None, facility: str | None
) -> None:
    location = BedLocation(ward=ward, room=room, bed=bed, facility=facility)
    assert decode_pl(encode_pl(location)) == location


@given(st.text(max_size=8), st.lists(st.text(max_size=30), max_size=5))
def test_ids_are_fhir_ids(resource_type: str, parts: list[str]) -> None:
    value = resource_id(resource_type, *parts)
    assert FHIR_ID.fullmatch(value)
    assert value == resource_id(resource_type, *parts)
    assert value == str(uuid.uuid5(ID_NAMESPACE, "\x1f".join((resource_type, *parts))))
