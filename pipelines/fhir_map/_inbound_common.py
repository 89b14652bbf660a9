"""What the FHIR → canonical mappers share: reading JSON defensively, resolving
references (contained, bundle entries), times, identifiers and patients."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import unquote

from pipelines.fhir_map import _codes as codes
from pipelines.fhir_map._json import Resource
from pipelines.fhir_map.ids import authority_of
from pipelines.fhir_map.outcome import FhirInputError
from schemas.events import Address, HumanName, Identifier, Patient, Telecom

FHIR_AUTHORITY = "fhir"
"""Authority of a patient known only by a FHIR resource id."""

Sex = Literal["male", "female", "other", "unknown"]
TelecomSystem = Literal["phone", "fax", "email", "pager", "url", "other"]
_SEX: dict[str, Sex] = {"male": "male", "female": "female", "other": "other", "unknown": "unknown"}
# FHIR's "sms" has no canonical counterpart: it becomes "other".
_TELECOM_SYSTEMS: dict[str, TelecomSystem] = {
    "phone": "phone",
    "fax": "fax",
    "email": "email",
    "pager": "pager",
    "url": "url",
}


def text(data: object, key: str) -> str | None:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def obj(data: object, key: str) -> dict[str, Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def items(data: object, key: str) -> list[dict[str, Any]]:
    value = data.get(key) if isinstance(data, dict) else None
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def strings(data: object, key: str) -> list[str]:
    value = data.get(key) if isinstance(data, dict) else None
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []


def first_code(concept: object, *systems: str | None) -> str | None:
    """The code of the first coding in ``concept`` from one of ``systems`` (any, if none given)."""
    for entry in items(concept, "coding"):
        code = text(entry, "code")
        if code is not None and (not systems or entry.get("system") in systems):
            return code
    return None


def instant(value: object) -> datetime | None:
    """An aware datetime from a FHIR dateTime/instant; None for dates and partial values."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def full_date(value: object) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def message_id(resource: Resource) -> str:
    """The resource id; a digest of the content for resources posted without one."""
    resource_id = text(resource, "id")
    if resource_id is not None:
        return resource_id
    canonical = json.dumps(resource, sort_keys=True, separators=(",", ":"))
    return "sha1-" + hashlib.sha1(canonical.encode(), usedforsecurity=False).hexdigest()


_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
_SEARCH_ESCAPE = re.compile(r"\\([\\|,$])")


def conditional_identifier(reference: str, system_base: str) -> tuple[str, Identifier] | None:
    """(type, identifier) of a conditional reference ``Type?identifier=system|value``."""
    resource_type, sep, query = reference.partition("?")
    if not sep:
        return None
    for param in query.split("&"):
        name, _, token = param.partition("=")
        if name != "identifier" or not token:
            continue
        parts = _UNESCAPED_PIPE.split(unquote(token), maxsplit=1)
        system, value = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
        value = _SEARCH_ESCAPE.sub(r"\1", value)
        if value:
            authority = authority_of(_SEARCH_ESCAPE.sub(r"\1", system) or None, system_base)
            return resource_type, Identifier(value=value, authority=authority)
    return None


def _type_and_id(reference: str) -> str | None:
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


@dataclass
class Context:
    """One from_fhir call: receive time, identifier system base, and the resources a
    reference may point at (bundle entries by fullUrl and by ``Type/id``)."""

    received_at: datetime
    system_base: str
    index: dict[str, Resource] = field(default_factory=dict)

    def add(self, resource: Resource, full_url: str | None) -> None:
        if full_url is not None:
            self.index[full_url] = resource
        resource_type, resource_id = text(resource, "resourceType"), text(resource, "id")
        if resource_type is not None and resource_id is not None:
            self.index.setdefault(f"{resource_type}/{resource_id}", resource)

    def resolve(self, ref: object, container: Resource) -> Resource | None:
        """The resource ``ref`` points at, if it is contained in ``container`` or bundled."""
        target = text(ref, "reference")
        if target is None:
            return None
        if target.startswith("#"):
            return next(
                (c for c in items(container, "contained") if c.get("id") == target[1:]), None
            )
        found = self.index.get(target)
        if found is None:
            key = _type_and_id(target)
            found = self.index.get(key) if key is not None else None
        return found

    def occurred(self, resource: Resource, *candidates: datetime | None) -> datetime:
        """The first known of ``candidates``, else meta.lastUpdated, else the receive time."""
        for candidate in candidates:
            if candidate is not None:
                return candidate
        return instant(obj(resource, "meta").get("lastUpdated")) or self.received_at


def identifier(data: object, system_base: str) -> Identifier | None:
    value = text(data, "value")
    if value is None:
        return None
    type_ = first_code(obj(data, "type"), codes.V2_0203, None)
    return Identifier(
        value=value, authority=authority_of(text(data, "system"), system_base), type=type_
    )


def _name(data: dict[str, Any]) -> HumanName | None:
    name = HumanName(
        family=text(data, "family"),
        given=strings(data, "given"),
        prefix=next(iter(strings(data, "prefix")), None),
        suffix=next(iter(strings(data, "suffix")), None),
        use=codes.NAME_USE_TO_V2.get(text(data, "use") or ""),
    )
    return name if name.family or name.given or name.prefix or name.suffix else None


def _address(data: dict[str, Any]) -> Address:
    return Address(
        lines=strings(data, "line"),
        city=text(data, "city"),
        state=text(data, "state"),
        postal_code=text(data, "postalCode"),
        country=text(data, "country"),
        use=codes.ADDRESS_USE_TO_V2.get(text(data, "use") or ""),
    )


def _telecom(data: dict[str, Any]) -> Telecom | None:
    value = text(data, "value")
    if value is None:
        return None
    return Telecom(
        system=_TELECOM_SYSTEMS.get(text(data, "system") or "", "other"),
        value=value,
        use=codes.TELECOM_USE_TO_V2.get(text(data, "use") or ""),
    )


def patient_from(resource: Resource, ctx: Context, path: str) -> Patient:
    """FHIR Patient → canonical patient (the inverse of the PID[Patient] mapping)."""
    identifiers = [
        i for i in (identifier(d, ctx.system_base) for d in items(resource, "identifier")) if i
    ]
    if not identifiers:
        resource_id = text(resource, "id")
        if resource_id is None:
            raise FhirInputError.single(
                "required", "a patient needs an identifier or an id", f"{path}.identifier"
            )
        identifiers = [Identifier(value=resource_id, authority=FHIR_AUTHORITY)]
    deceased_at = instant(resource.get("deceasedDateTime"))
    deceased = resource.get("deceasedBoolean")
    if "deceasedDateTime" in resource:
        deceased = True
    names = [n for n in (_name(d) for d in items(resource, "name")) if n]
    return Patient(
        identifiers=identifiers,
        names=names,
        birth_date=full_date(resource.get("birthDate")),
        sex=_SEX.get(text(resource, "gender") or ""),
        addresses=[_address(a) for a in items(resource, "address")],
        telecom=[t for t in (_telecom(d) for d in items(resource, "telecom")) if t],
        deceased=deceased if isinstance(deceased, bool) else None,
        deceased_at=deceased_at,
    )


def subject_patient(resource: Resource, ctx: Context, path: str) -> Patient:
    """The patient ``resource.subject`` names: a contained or bundled Patient, else the
    reference's identifier, else its id (authority ``fhir``)."""
    ref = resource.get("subject")
    where = f"{path}.subject"
    if not isinstance(ref, dict):
        raise FhirInputError.single("required", "the subject patient is needed", where)
    target = ctx.resolve(ref, resource)
    if target is not None:
        if target.get("resourceType") != "Patient":
            raise FhirInputError.single("not-supported", "the subject must be a Patient", where)
        return patient_from(target, ctx, where)
    by_identifier = identifier(obj(ref, "identifier"), ctx.system_base)
    if by_identifier is not None:
        return Patient(identifiers=[by_identifier])
    target_ref = text(ref, "reference")
    conditional = conditional_identifier(target_ref or "", ctx.system_base)
    if conditional is not None:
        if conditional[0] != "Patient":
            raise FhirInputError.single("not-supported", "the subject must be a Patient", where)
        return Patient(identifiers=[conditional[1]])
    key = _type_and_id(target_ref) if target_ref and not target_ref.startswith("#") else None
    if key is None:
        raise FhirInputError.single("invalid", "the subject reference cannot be resolved", where)
    resource_type, _, resource_id = key.partition("/")
    if resource_type != "Patient":
        raise FhirInputError.single("not-supported", "the subject must be a Patient", where)
    return Patient(identifiers=[Identifier(value=resource_id, authority=FHIR_AUTHORITY)])
