"""Canonical locations → FHIR Location hierarchy (IG PL[Location], PV1-40 BedStatus).

A PL becomes up to four Location resources chained with ``partOf``: site
(PL.4 facility, "si") ← ward (PL.1 point of care, "wa") ← room (PL.2, "ro") ←
bed (PL.3, "bd"). Each carries the whole PL as one identifier
(``ward^room^bed^facility`` under ``<system_base>location``), so a reader of a
single Location recovers its place in the hierarchy without the others.
"""

from __future__ import annotations

import re
from typing import Literal

from pipelines.fhir_map import _codes as codes
from pipelines.fhir_map._json import Resource, clean, coding, concept, reference
from pipelines.fhir_map.ids import bed_id, room_id, site_id, ward_id
from schemas.events import BedLocation

Level = Literal["site", "ward", "room", "bed"]
_ESCAPE = re.compile(r"\\([SE])\\")

PHYSICAL_TYPES: dict[Level, tuple[str, str]] = {
    "site": ("si", "Site"),
    "ward": ("wa", "Ward"),
    "room": ("ro", "Room"),
    "bed": ("bd", "Bed"),
}


def location_system(system_base: str) -> str:
    return f"{system_base}location"


def _escape(component: str) -> str:
    # HL7 escapes, so a component holding a delimiter still round-trips.
    return component.replace("\\", "\\E\\").replace("^", "\\S\\")


def _unescape(component: str) -> str:
    # One pass, so an escaped backslash never pairs with the next escape.
    return _ESCAPE.sub(lambda m: "^" if m.group(1) == "S" else "\\", component)


def encode_pl(location: BedLocation) -> str:
    """``ward^room^bed^facility`` (PL.1-PL.4), trailing empty components dropped."""
    parts = [location.ward, location.room or "", location.bed or "", location.facility or ""]
    return "^".join(_escape(p) for p in parts).rstrip("^")


def decode_pl(text: str) -> BedLocation | None:
    """Inverse of :func:`encode_pl`; None when there is no ward."""
    parts = [_unescape(p) or None for p in text.split("^")] + [None] * 4
    ward, room, bed, facility = parts[:4]
    if ward is None:
        return None
    return BedLocation(ward=ward, room=room, bed=bed, facility=facility)


def _level_of(location: BedLocation, level: Level) -> BedLocation:
    """The PL that names only ``level`` and the levels above it."""
    if level == "site":
        return BedLocation(ward="", facility=location.facility)
    if level == "ward":
        return BedLocation(ward=location.ward, facility=location.facility)
    if level == "room":
        return BedLocation(ward=location.ward, room=location.room, facility=location.facility)
    return location


def _location(
    level: Level,
    code: str,
    resource_id: str,
    identifier: str,
    parent: str | None,
    system_base: str,
    operational_status: str | None,
    name: str | None = None,
    status: str = "active",
) -> Resource:
    physical, display = PHYSICAL_TYPES[level]
    op_status = None
    if operational_status is not None:
        op_status = coding(
            codes.V2_0116, operational_status, codes.BED_STATUS.get(operational_status)
        )
    return clean(
        resourceType="Location",
        id=resource_id,
        identifier=[{"system": location_system(system_base), "value": identifier}],
        status=status,
        operationalStatus=op_status,
        name=name or code,
        mode="instance",
        physicalType=concept(codes.LOCATION_PHYSICAL_TYPE, physical, display),
        partOf=reference("Location", parent) if parent else None,
    )


def location_resources(
    location: BedLocation,
    *,
    system_base: str,
    operational_status: str | None = None,
    top: Level | None = None,
    name: str | None = None,
    status: str = "active",
) -> list[Resource]:
    """The Location resources of ``location`` from the site down to the most granular
    level (or to ``top``), parents first.

    ``operational_status`` (table 0116), ``name`` and ``status`` go on the most
    granular resource; the others are named by their codes and active.
    """
    chain: list[tuple[Level, str, str]] = []
    if location.facility is not None:
        chain.append(("site", location.facility, site_id(location.facility)))
    chain.append(("ward", location.ward, ward_id(location)))
    if location.room is not None:
        chain.append(("room", location.room, room_id(location)))
    if location.bed is not None:
        chain.append(("bed", location.bed, bed_id(location)))
    levels = [level for level, _, _ in chain]
    if top is not None and top in levels:
        chain = chain[: levels.index(top) + 1]
    resources: list[Resource] = []
    parent: str | None = None
    for position, (level, code, rid) in enumerate(chain):
        last = position == len(chain) - 1
        resources.append(
            _location(
                level,
                code,
                rid,
                encode_pl(_level_of(location, level)),
                parent,
                system_base,
                operational_status if last else None,
                name=name if last else None,
                status=status if last else "active",
            )
        )
        parent = rid
    return resources
