"""Reading the compared fields out of FHIR JSON, the same way for both sides.

Only Locations differ: ours carry the whole PL as one identifier under
``<base>location``; FHIR-Converter's split a PL into one Location per
component, all with the same ``description`` (the PL's parts joined by
``--``), typed by ``physicalType`` (``si`` facility, ``ro`` room, ``bd`` bed),
the Encounter pointing at the point of care. Either way the result is a
:class:`~engine.conformance.scoring.Place`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.conformance._times import parse_fhir_time
from engine.conformance.scoring import Coded, Ident, Place, SystemName, Tagged, Value
from pipelines.fhir_map import DEFAULT_SYSTEM_BASE
from pipelines.fhir_map.location import decode_pl

Json = dict[str, Any]
OUR_LOCATION_SYSTEM = f"{DEFAULT_SYSTEM_BASE}location"
_TEMPORARY = "http://hl7.org/fhir/uv/v2mappings/StructureDefinition/temporary-location"
_PLACE_TYPES = {"si": "facility", "ro": "room", "bd": "bed"}


class BundleView:
    """The resources of one side, with references resolved by ``Type/id``."""

    def __init__(self, resources: Sequence[Json]) -> None:
        self.resources = list(resources)
        self._by_reference: dict[str, Json] = {}
        for resource in self.resources:
            if isinstance(resource.get("id"), str):
                key = f"{resource['resourceType']}/{resource['id']}"
                self._by_reference.setdefault(key, resource)

    def of_type(self, resource_type: str) -> list[Json]:
        return [r for r in self.resources if r.get("resourceType") == resource_type]

    def resolve(self, reference: object) -> Json | None:
        if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
            return None
        return self._by_reference.get(reference["reference"])


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: object) -> Json:
    return value if isinstance(value, dict) else {}


def fhir_time(value: object) -> Value | None:
    """A date/dateTime as a :class:`FhirTime`, text as it is when it does not parse."""
    text = _text(value)
    if text is None:
        return None
    return parse_fhir_time(text) or text


def system_of(value: object) -> SystemName | None:
    text = _text(value)
    return SystemName(text) if text else None


def first_coding(concept: object) -> Coded | None:
    """The first coding with a code of a CodeableConcept (or of a Coding itself)."""
    node = _dict(concept)
    codings = _list(node.get("coding")) if "coding" in node else [node]
    for coding in codings:
        code = _text(_dict(coding).get("code"))
        if code is not None:
            return Coded(system_of(coding.get("system")), code)
    return None


def identifiers(resource: Json) -> list[Ident]:
    """The resource's identifiers that have a value, in order, first of each value."""
    seen: dict[str, Ident] = {}
    for identifier in _list(resource.get("identifier")):
        value = _text(_dict(identifier).get("value"))
        if value is not None and value not in seen:
            seen[value] = Ident(system_of(identifier.get("system")), value)
    return list(seen.values())


@dataclass(frozen=True, slots=True)
class Name:
    family: str | None
    given: tuple[str, ...]


def names(patient: Json) -> list[Name]:
    found = []
    for name in _list(patient.get("name")):
        node = _dict(name)
        given = tuple(g for g in _list(node.get("given")) if isinstance(g, str))
        if _text(node.get("family")) or given:
            found.append(Name(_text(node.get("family")), given))
    return found


def address_fields(address: Json) -> dict[str, Value | None]:
    lines = tuple(line for line in _list(address.get("line")) if isinstance(line, str))
    return {
        "line": lines or None,
        "city": _text(address.get("city")),
        "postalCode": _text(address.get("postalCode")),
        "country": _text(address.get("country")),
    }


def patient_fields(patient: Json) -> dict[str, Value | None]:
    """Gender and birth date (identifiers, names and addresses need pairing first)."""
    return {
        "gender": _text(patient.get("gender")),
        "birthDate": fhir_time(patient.get("birthDate")),
    }


def encounter_fields(encounter: Json) -> dict[str, Value | None]:
    """Class code, status and period (locations need pairing first)."""
    period = _dict(encounter.get("period"))
    return {
        "class": _text(_dict(encounter.get("class")).get("code")),
        "status": _text(encounter.get("status")),
        "period.start": fhir_time(period.get("start")),
        "period.end": fhir_time(period.get("end")),
    }


def _quantity(quantity: Json) -> Value | None:
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def observation_value(observation: Json) -> Value | None:
    """value[x]: Quantity by its number, string by its text, CodeableConcept by its code."""
    if "valueQuantity" in observation:
        number = _quantity(_dict(observation["valueQuantity"]))
        return Tagged("Quantity", number) if number is not None else None
    if "valueCodeableConcept" in observation:
        coded = first_coding(observation["valueCodeableConcept"])
        return Tagged("CodeableConcept", coded.code) if coded else None
    for key, item in observation.items():
        if key.startswith("value") and key != "value" and item not in (None, "", [], {}):
            kind = key.removeprefix("value")
            shown: Value = item if isinstance(item, str) else str(item)
            return Tagged("string" if kind == "String" else kind, shown)
    return None


def observation_fields(observation: Json) -> dict[str, Value | None]:
    quantity = _dict(observation.get("valueQuantity"))
    effective = observation.get("effectiveDateTime") or observation.get("effectiveInstant")
    if effective is None:
        effective = _dict(observation.get("effectivePeriod")).get("start")
    return {
        "code": first_coding(observation.get("code")),
        "value": observation_value(observation),
        "unit": _text(quantity.get("code")) or _text(quantity.get("unit")),
        "effective": fhir_time(effective),
    }


@dataclass(frozen=True, slots=True)
class PlaceEntry:
    """One Encounter.location entry: where, its status, and whether it is a
    temporary location (FHIR-Converter's extension for PV1-11 and PV1-43)."""

    place: Place
    status: str | None
    temporary: bool


def _our_place(location: Json) -> Place | None:
    for identifier in _list(location.get("identifier")):
        node = _dict(identifier)
        value = _text(node.get("value"))
        if node.get("system") == OUR_LOCATION_SYSTEM and value is not None:
            pl = decode_pl(value)
            if pl is not None:
                return Place(pl.ward or None, pl.room, pl.bed, pl.facility)
    return None


def _physical_types(location: Json) -> list[str]:
    # Several codings happen: FHIR-Converter merges two PL components with the same
    # text (bed "1" and facility "1") into one Location typed "bd" and "si".
    codings = _list(_dict(location.get("physicalType")).get("coding"))
    return [c["code"] for c in codings if isinstance(c, dict) and isinstance(c.get("code"), str)]


def _their_place(view: BundleView, location: Json) -> Place:
    """The PL a FHIR-Converter point of care stands for: its own name for PL.1, and the
    room, bed and facility Locations written from the same PL (same description)."""
    parts: dict[str, str | None] = {"ward": None, "room": None, "bed": None, "facility": None}
    own = [_PLACE_TYPES[t] for t in _physical_types(location) if t in _PLACE_TYPES] or ["ward"]
    for kind in own:
        parts[kind] = _text(location.get("name"))
    description = _text(location.get("description"))
    same_pl = [
        other
        for other in view.of_type("Location")
        if other is not location and description and other.get("description") == description
    ]
    for other in same_pl:
        for kind in (_PLACE_TYPES[t] for t in _physical_types(other) if t in _PLACE_TYPES):
            parts[kind] = parts[kind] or _text(other.get("name"))
    return Place(parts["ward"], parts["room"], parts["bed"], parts["facility"])


def place_entries(view: BundleView, encounter: Json) -> list[PlaceEntry]:
    """The encounter's locations as PLs, in order; references that do not resolve are
    left out (neither side's location can be read then)."""
    entries = []
    for entry in _list(encounter.get("location")):
        node = _dict(entry)
        location = view.resolve(node.get("location"))
        if location is None:
            continue
        place = _our_place(location) or _their_place(view, location)
        temporary = any(_dict(x).get("url") == _TEMPORARY for x in _list(node.get("extension")))
        entries.append(PlaceEntry(place, _text(node.get("status")), temporary))
    return entries
