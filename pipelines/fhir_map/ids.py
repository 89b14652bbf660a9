"""Deterministic FHIR resource ids and identifier systems.

Every id is a UUID v5 of the resource type and the source identifiers that
name the thing (``[A-Za-z0-9\\-\\.]{1,64}`` by construction), so the same source
message mapped twice, or replayed after a crash, upserts the same resources.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from functools import lru_cache
from urllib.parse import quote, unquote

from pipelines.fhir_map._json import utc_key
from schemas.events import BedLocation, Encounter, Identifier, Observation, Patient

DEFAULT_SYSTEM_BASE = "urn:wardstream:id:"
"""Prefix of the identifier systems made from HL7 assigning authorities (CX.4)."""

ID_NAMESPACE = uuid.UUID("6f1c3a52-5d0e-4d5b-9a57-776172647374")
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
# Unit separator: cannot occur in HL7 fields, so joined parts never collide.
_SEP = "\x1f"


@lru_cache(maxsize=65536)
def resource_id(resource_type: str, *parts: str) -> str:
    """A stable id for ``resource_type`` named by ``parts``: ``uuid5(ID_NAMESPACE, ...)``.

    Cached (bounded): the same patients, visits and beds recur message after message.
    """
    name = _SEP.join((resource_type, *parts)).encode()
    digest = bytearray(hashlib.sha1(ID_NAMESPACE.bytes + name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    hex_ = digest.hex()
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"


def patient_id(identifier: Identifier) -> str:
    """Patient id from the assigning authority and value of its primary identifier."""
    return resource_id("Patient", identifier.authority or "", identifier.value)


def encounter_id(patient: Patient, encounter: Encounter, message_id: str) -> str:
    """Encounter id from the visit number, else the patient and admit time.

    With neither, nothing ties two messages to one visit, so the id is the
    source message's: still stable under replay.
    """
    if encounter.visit_number is not None:
        number = encounter.visit_number
        return resource_id("Encounter", "visit", number.authority or "", number.value)
    primary = patient.identifiers[0]
    if encounter.admitted_at is not None:
        admitted = utc_key(encounter.admitted_at)
        return resource_id("Encounter", "admit", primary.authority or "", primary.value, admitted)
    return resource_id("Encounter", "message", primary.authority or "", primary.value, message_id)


def site_id(facility: str) -> str:
    return resource_id("Location", "site", facility)


def ward_id(location: BedLocation) -> str:
    return resource_id("Location", "ward", location.facility or "", location.ward)


def room_id(location: BedLocation) -> str:
    room = location.room or ""
    return resource_id("Location", "room", location.facility or "", location.ward, room)


def bed_id(location: BedLocation) -> str:
    parts = (location.facility or "", location.ward, location.room or "", location.bed or "")
    return resource_id("Location", "bed", *parts)


def most_granular_id(location: BedLocation) -> str:
    """Id of the bed, else the room, else the ward: what Encounter.location points at."""
    if location.bed is not None:
        return bed_id(location)
    if location.room is not None:
        return room_id(location)
    return ward_id(location)


def observation_key(report: str, index: int, observation: Observation) -> tuple[str, str, str]:
    """(report, OBX set id, code) naming one result: the filler order number (else the
    message id), the set id (else the position in the message) and the code."""
    code = f"{observation.code.system or ''}|{observation.code.code}"
    return report, observation.set_id or str(index + 1), code


def observation_id(key: tuple[str, str, str]) -> str:
    return resource_id("Observation", *key)


def provenance_id(envelope_id: str, kind: str, trigger: str, message_id: str) -> str:
    """Provenance id from the source envelope and the event it carried (a FHIR Bundle
    envelope carries several events)."""
    return resource_id("Provenance", envelope_id, kind, trigger, message_id)


def identifier_system(authority: str | None, base: str = DEFAULT_SYSTEM_BASE) -> str | None:
    """Identifier.system for an assigning authority: a URI as is, an OID as ``urn:oid:``,
    anything else under ``base``."""
    if authority is None:
        return None
    if authority.startswith(("http://", "https://", "urn:")):
        return authority
    if _OID.fullmatch(authority):
        return f"urn:oid:{authority}"
    return base + quote(authority, safe="")


def authority_of(system: str | None, base: str = DEFAULT_SYSTEM_BASE) -> str | None:
    """Inverse of :func:`identifier_system`."""
    if system is None:
        return None
    if system.startswith(base):
        return unquote(system.removeprefix(base))
    if system.startswith("urn:oid:"):
        return system.removeprefix("urn:oid:")
    return system
