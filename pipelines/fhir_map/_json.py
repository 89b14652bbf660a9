"""Small helpers for building FHIR JSON: no None values, no empty arrays or objects."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

Resource = dict[str, Any]


def clean(**fields: Any) -> dict[str, Any]:
    """The given fields in order, without those that are None, empty lists or empty objects."""
    return {
        key: value
        for key, value in fields.items()
        if value is not None and value != [] and value != {}
    }


def coding(system: str | None, code: str, display: str | None = None) -> dict[str, Any]:
    return clean(system=system, code=code, display=display)


def concept(system: str | None, code: str, display: str | None = None) -> dict[str, Any]:
    """A CodeableConcept with one coding."""
    return {"coding": [coding(system, code, display)]}


def reference(resource_type: str, resource_id: str, **extra: Any) -> dict[str, Any]:
    return clean(reference=f"{resource_type}/{resource_id}", **extra)


def date_time(value: datetime) -> str:
    """A FHIR dateTime/instant: ISO 8601 with the offset as sent, UTC written as ``Z``."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: canonical events carry aware datetimes only")
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def utc_key(value: datetime) -> str:
    """The instant in UTC, for ids: the same moment sent with another offset keeps its id."""
    return value.astimezone(UTC).isoformat()


def fhir_date(value: date) -> str:
    return value.isoformat()
