"""FHIR Location → canonical locations: the LocationEvent, and the ward/room/bed a
Location reference names (own PL identifier, else the partOf chain)."""

from __future__ import annotations

from typing import Literal

from pipelines.fhir_map import _codes as codes
from pipelines.fhir_map._inbound_common import Context, first_code, items, message_id, obj, text
from pipelines.fhir_map._json import Resource
from pipelines.fhir_map.location import decode_pl, location_system
from pipelines.fhir_map.outcome import FhirInputError
from schemas.events import BedLocation, LocationEvent

Level = Literal["site", "ward", "room", "bed"]
_LEVELS: dict[str, Level] = {"si": "site", "wa": "ward", "ro": "room", "bd": "bed"}
# A parent known only by name is taken to be the next level up.
_PARENT: dict[Level, Level] = {"bed": "room", "room": "ward", "ward": "site"}
_MAX_DEPTH = 8
_STATUSES: dict[str, Literal["active", "suspended", "inactive"]] = {
    "active": "active",
    "suspended": "suspended",
    "inactive": "inactive",
}


def physical_code(resource: Resource) -> str | None:
    return first_code(obj(resource, "physicalType"), codes.LOCATION_PHYSICAL_TYPE, None)


def _own_pl(resource: Resource, ctx: Context) -> BedLocation | None:
    system = location_system(ctx.system_base)
    for entry in items(resource, "identifier"):
        value = text(entry, "value")
        if entry.get("system") == system and value is not None:
            return decode_pl(value)
    return None


def _own_code(resource: Resource, ctx: Context) -> str | None:
    system = location_system(ctx.system_base)
    for entry in items(resource, "identifier"):
        if entry.get("system") != system and text(entry, "value"):
            return text(entry, "value")
    return text(resource, "name") or text(resource, "id")


def _fill(found: dict[Level, str], pl: BedLocation) -> None:
    levels: tuple[tuple[Level, str | None], ...] = (
        ("site", pl.facility),
        ("ward", pl.ward),
        ("room", pl.room),
        ("bed", pl.bed),
    )
    for level, code in levels:
        if code is not None:
            found.setdefault(level, code)


def bed_location_of(resource: Resource, ctx: Context) -> BedLocation | None:
    """The ward/room/bed/facility a Location stands for; None when no ward is found."""
    own = _own_pl(resource, ctx)
    if own is not None:
        return own
    found: dict[Level, str] = {}
    current: Resource | None = resource
    seen: set[int] = set()
    while current is not None and id(current) not in seen and len(seen) < _MAX_DEPTH:
        seen.add(id(current))
        level = _LEVELS.get(physical_code(current) or "")
        code = _own_code(current, ctx)
        if level is not None and code is not None:
            found.setdefault(level, code)
        pl = _own_pl(current, ctx) if current is not resource else None
        if pl is not None:
            _fill(found, pl)
            break
        parent_ref = obj(current, "partOf")
        parent = ctx.resolve(parent_ref, current) if parent_ref else None
        parent_pl = obj(parent_ref, "identifier")
        if parent is None and parent_pl.get("system") == location_system(ctx.system_base):
            decoded = decode_pl(text(parent_pl, "value") or "")
            if decoded is not None:
                _fill(found, decoded)
                break
        parent_level = _PARENT.get(level) if level is not None else None
        if parent is None and parent_level is not None:
            by_name = text(obj(parent_ref, "identifier"), "value") or text(parent_ref, "display")
            if by_name is not None:
                found.setdefault(parent_level, by_name)
        current = parent
    ward = found.get("ward")
    if ward is None:
        return None
    return BedLocation(
        ward=ward, room=found.get("room"), bed=found.get("bed"), facility=found.get("site")
    )


def referenced_location(ref: object, container: Resource, ctx: Context) -> BedLocation | None:
    """The location an Encounter.location.location reference names: the resource when it
    is contained or bundled, else the reference's PL identifier, else its display or id
    taken as a ward code."""
    target = ctx.resolve(ref, container)
    if target is not None:
        return bed_location_of(target, ctx)
    ref_identifier = obj(ref, "identifier")
    if ref_identifier.get("system") == location_system(ctx.system_base):
        pl = decode_pl(text(ref_identifier, "value") or "")
        if pl is not None:
            return pl
    name = text(ref, "display") or text(ref_identifier, "value")
    reference = text(ref, "reference")
    if name is None and reference is not None and not reference.startswith("#"):
        name = reference.rstrip("/").rsplit("/", 1)[-1]
    return BedLocation(ward=name) if name else None


def location_event(resource: Resource, ctx: Context, path: str) -> list[LocationEvent]:
    """A Location → one LocationEvent for a ward, room or bed; sites, buildings and
    other levels above the ward are not tracked and give none."""
    code = physical_code(resource)
    own = _own_pl(resource, ctx)
    if code is None and own is not None:
        code = "bd" if own.bed else "ro" if own.room else "wa"
    if code is None:
        raise FhirInputError.single(
            "required", "physicalType (wa, ro or bd) is needed", f"{path}.physicalType"
        )
    level = _LEVELS.get(code)
    if level is None or level == "site":
        return []
    location = bed_location_of(resource, ctx)
    if location is None:
        raise FhirInputError.single(
            "required", "cannot tell which ward this location belongs to", f"{path}.partOf"
        )
    return [
        LocationEvent(
            trigger="Location",
            message_id=message_id(resource),
            occurred_at=ctx.occurred(resource),
            location=location,
            physical_type=level,
            name=text(resource, "name"),
            status=_STATUSES.get(text(resource, "status") or "", "active"),
            operational_status=text(obj(resource, "operationalStatus"), "code"),
        )
    ]
