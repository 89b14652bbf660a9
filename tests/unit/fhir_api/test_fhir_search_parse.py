"""FHIR search parameters: parsing query strings, date ranges, index extraction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.fhir.search import (
    MAX_COUNT,
    DateCondition,
    ReferenceCondition,
    SearchError,
    TokenCondition,
    date_range,
    index_rows,
    parse_conditional,
    parse_search,
)


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026", ts(2026, 1, 1), ts(2027, 1, 1)),
        ("2024-02", ts(2024, 2, 1), ts(2024, 3, 1)),
        ("2026-01-02", ts(2026, 1, 2), ts(2026, 1, 3)),
        ("2026-01-02T10:15Z", ts(2026, 1, 2, 10, 15), ts(2026, 1, 2, 10, 16)),
        ("2026-01-02T10:15:30Z", ts(2026, 1, 2, 10, 15, 30), ts(2026, 1, 2, 10, 15, 31)),
        ("2026-01-02T10:15:30+01:00", ts(2026, 1, 2, 9, 15, 30), ts(2026, 1, 2, 9, 15, 31)),
        ("2026-01-02T10:15:30-05:30", ts(2026, 1, 2, 15, 45, 30), ts(2026, 1, 2, 15, 45, 31)),
    ],
)
def test_date_range_covers_the_precision_given(text: str, start: float, end: float) -> None:
    assert date_range(text) == (start, end)


def test_date_range_with_fraction_is_as_wide_as_its_digits() -> None:
    start, end = date_range("2026-01-02T10:15:30.25Z")
    assert start == ts(2026, 1, 2, 10, 15, 30) + 0.25
    assert end == pytest.approx(start + 0.01)


@pytest.mark.parametrize("text", ["", "26-01-01", "2026-13-01", "2026-02-30", "yesterday"])
def test_date_range_refuses_non_dates(text: str) -> None:
    with pytest.raises(ValueError, match="not a FHIR date"):
        date_range(text)


def test_parse_identifier_tokens_and_alternatives() -> None:
    query = parse_search(
        "Patient", [("identifier", "urn:mrn|123,|456,789,urn:mrn|"), ("_count", "5")]
    )
    assert query.conditions == (
        TokenCondition(
            "identifier",
            (("urn:mrn", "123"), ("", "456"), (None, "789"), ("urn:mrn", None)),
        ),
    )
    assert query.count == 5
    assert query.echo == (("identifier", "urn:mrn|123,|456,789,urn:mrn|"), ("_count", "5"))


def test_parse_references_typed_untyped_and_absolute() -> None:
    query = parse_search(
        "Encounter",
        [
            ("patient", "p1"),
            ("location", "Location/ward-a,http://x/fhir/Location/ward-b"),
            ("subject", "s9"),
        ],
    )
    assert query.conditions == (
        ReferenceCondition("patient", ("Patient/p1",)),
        ReferenceCondition("location", ("Location/ward-a", "Location/ward-b")),
        ReferenceCondition("subject", ("s9",)),
    )


def test_parse_dates_with_prefixes_repeated_params_are_anded() -> None:
    query = parse_search("Observation", [("date", "ge2026-01-01"), ("date", "lt2026-02")])
    assert query.conditions == (
        DateCondition("date", (("ge", ts(2026, 1, 1), ts(2026, 1, 2)),)),
        DateCondition("date", (("lt", ts(2026, 2, 1), ts(2026, 3, 1)),)),
    )


def test_parse_ids_intersect_and_count_is_capped() -> None:
    query = parse_search("Patient", [("_id", "a,b"), ("_id", "b,c"), ("_count", "100000")])
    assert query.ids == ("b",)
    assert query.count == MAX_COUNT


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([("name", "x")], "unknown search parameter 'name'"),
        ([("identifier:missing", "true")], "unknown search parameter"),
        ([("date", "ge2026-99")], "date: not a FHIR date"),
        ([("_count", "-1")], "_count must be a whole number"),
        ([("identifier", "")], "identifier: empty value"),
    ],
)
def test_parse_refuses_what_it_cannot_answer(params: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(SearchError, match=message) as info:
        parse_search("Encounter", params)
    assert info.value.parameter == params[0][0]


def test_location_is_not_a_patient_search_parameter() -> None:
    with pytest.raises(SearchError, match="supported: _count, _id, _offset, identifier"):
        parse_search("Patient", [("location", "x")])


def test_escaped_separators_are_literal() -> None:
    query = parse_search("Patient", [("identifier", r"urn:a\|b|x\,y,v\\"), ("_id", r"a\,b")])
    assert query.conditions == (TokenCondition("identifier", (("urn:a|b", "x,y"), (None, "v\\"))),)
    assert query.ids == ("a,b",)


def test_conditional_query_is_url_decoded() -> None:
    query = parse_conditional("Patient", "identifier=urn:mrn|M%5C%7C1")
    assert query.conditions == (TokenCondition("identifier", (("urn:mrn", "M|1"),)),)


def test_conditional_query_accepts_a_leading_type() -> None:
    query = parse_conditional("Patient", "Patient?identifier=urn:mrn|1")
    assert query.conditions == (TokenCondition("identifier", (("urn:mrn", "1"),)),)
    with pytest.raises(SearchError, match="empty"):
        parse_conditional("Patient", "")


def test_index_rows_of_an_encounter() -> None:
    rows = index_rows(
        {
            "resourceType": "Encounter",
            "identifier": [{"system": "urn:visit", "value": "V1"}, {"value": "bare"}],
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2026-01-02T10:00:00Z"},
            "location": [
                {"location": {"reference": "Location/ward-a"}},
                {"location": {"reference": "http://h/fhir/Location/bed-3/_history/2"}},
                {"location": {"display": "no reference"}},
            ],
        }
    )
    assert rows.tokens == [("identifier", "urn:visit", "V1"), ("identifier", None, "bare")]
    assert rows.references == [
        ("subject", "Patient/p1"),
        ("patient", "Patient/p1"),
        ("location", "Location/ward-a"),
        ("location", "Location/bed-3"),
    ]
    (date,) = rows.dates
    assert date[:2] == ("date", ts(2026, 1, 2, 10))
    assert date[2] > ts(9999, 1, 1)  # ongoing: open end


def test_index_rows_of_an_observation() -> None:
    rows = index_rows(
        {
            "resourceType": "Observation",
            "subject": {"reference": "Group/g1"},
            "encounter": {"reference": "Encounter/e1"},
            "effectiveDateTime": "2026-01-02",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        }
    )
    assert rows.references == [("subject", "Group/g1"), ("encounter", "Encounter/e1")]
    assert rows.dates == [("date", ts(2026, 1, 2), ts(2026, 1, 3))]
    assert rows.tokens == [("code", "http://loinc.org", "8867-4")]


def test_index_rows_skip_malformed_values() -> None:
    rows = index_rows(
        {
            "resourceType": "Observation",
            "identifier": "not-a-list",
            "subject": {"reference": "just-an-id"},
            "effectiveDateTime": "whenever",
        }
    )
    assert rows.tokens == rows.references == rows.dates == []
