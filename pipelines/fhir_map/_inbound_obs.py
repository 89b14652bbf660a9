"""FHIR Observation → canonical ObservationEvent (components become results of their own)."""

from __future__ import annotations

from typing import Any

from pipelines.fhir_map import _codes as codes
from pipelines.fhir_map._inbound_adt import visit_number
from pipelines.fhir_map._inbound_common import (
    FHIR_AUTHORITY,
    Context,
    conditional_identifier,
    first_code,
    identifier,
    instant,
    items,
    message_id,
    obj,
    subject_patient,
    text,
)
from pipelines.fhir_map._json import Resource
from pipelines.fhir_map.observation import observation_system
from pipelines.fhir_map.outcome import FhirInputError
from schemas.events import (
    Coding,
    Encounter,
    Identifier,
    Observation,
    ObservationEvent,
    ObservationStatus,
    ReferenceRange,
)

_STATUS: dict[str, ObservationStatus] = {
    "registered": "registered",
    "preliminary": "preliminary",
    "final": "final",
    "amended": "amended",
    "corrected": "corrected",
    "cancelled": "cancelled",
    "entered-in-error": "entered-in-error",
}
_CATEGORIES = ("vital-signs", "laboratory")
_UNSUPPORTED_VALUES = (
    "valueRange",
    "valueRatio",
    "valuePeriod",
    "valueSampledData",
    "valueAttachment",
)


def _coding(concept: dict[str, Any]) -> Coding | None:
    for entry in items(concept, "coding"):
        code = text(entry, "code")
        if code is not None:
            system = text(entry, "system")
            return Coding(
                system=codes.code_system_name(system) if system else None,
                code=code,
                display=text(entry, "display") or text(concept, "text"),
            )
    label = text(concept, "text")
    return Coding(code=label) if label else None


def _quantity_fields(quantity: dict[str, Any]) -> dict[str, Any]:
    system = text(quantity, "system")
    number = quantity.get("value")
    return {
        "value_number": float(number) if isinstance(number, int | float) else None,
        "comparator": text(quantity, "comparator"),
        "unit": text(quantity, "code") if system else text(quantity, "unit"),
        "unit_system": codes.code_system_name(system) if system else None,
    }


def _value(data: dict[str, Any], path: str) -> dict[str, Any]:
    if "valueQuantity" in data:
        fields = _quantity_fields(obj(data, "valueQuantity"))
        return {"value_type": "SN" if fields["comparator"] else "NM", **fields}
    if "valueCodeableConcept" in data:
        return {"value_type": "CWE", "value_code": _coding(obj(data, "valueCodeableConcept"))}
    if isinstance(data.get("valueInteger"), int):
        return {"value_type": "NM", "value_number": float(data["valueInteger"])}
    for key, value_type in (("valueString", "ST"), ("valueDateTime", "DTM"), ("valueTime", "TM")):
        if key in data:
            return {"value_type": value_type, "value_text": text(data, key)}
    if isinstance(data.get("valueBoolean"), bool):
        return {"value_type": "ST", "value_text": "true" if data["valueBoolean"] else "false"}
    for key in _UNSUPPORTED_VALUES:
        if key in data:
            raise FhirInputError.single(
                "not-supported", f"{key} results are not mapped", f"{path}.{key}"
            )
    return {"value_type": "ST"}


def _range(data: dict[str, Any]) -> ReferenceRange | None:
    ranges = items(data, "referenceRange")
    if not ranges:
        return None
    low, high = obj(ranges[0], "low").get("value"), obj(ranges[0], "high").get("value")
    return ReferenceRange(
        low=float(low) if isinstance(low, int | float) else None,
        high=float(high) if isinstance(high, int | float) else None,
        text=text(ranges[0], "text"),
    )


def _flags(data: dict[str, Any]) -> list[str]:
    flags = (
        first_code(concept, codes.V3_INTERPRETATION, codes.V2_0078, None)
        for concept in items(data, "interpretation")
    )
    return [flag for flag in flags if flag]


def _result(data: dict[str, Any], common: dict[str, Any], path: str) -> Observation:
    code = _coding(obj(data, "code"))
    if code is None:
        raise FhirInputError.single("required", "the observation code is needed", f"{path}.code")
    return Observation(
        code=code,
        reference_range=_range(data),
        abnormal_flags=_flags(data),
        **common,
        **_value(data, path),
    )


def _encounter(resource: Resource, ctx: Context) -> Encounter | None:
    ref = obj(resource, "encounter")
    if not ref:
        return None
    target = ctx.resolve(ref, resource)
    number = visit_number(target, ctx) if target is not None else None
    number = number or identifier(obj(ref, "identifier"), ctx.system_base)
    reference = text(ref, "reference")
    conditional = conditional_identifier(reference or "", ctx.system_base)
    if number is None and conditional is not None:
        number = conditional[1]
    if number is None and reference is not None and not reference.startswith("#"):
        number = Identifier(
            value=reference.rstrip("/").rsplit("/", 1)[-1], authority=FHIR_AUTHORITY
        )
    return Encounter(visit_number=number) if number is not None else None


def _report(resource: Resource, ctx: Context) -> tuple[str | None, str | None]:
    """(filler order number, set id) from the identifier Wardstream writes."""
    for entry in items(resource, "identifier"):
        value = text(entry, "value")
        if entry.get("system") != observation_system(ctx.system_base) or value is None:
            continue
        parts = value.split("^")
        if len(parts) == 3:
            filler = parts[0] if first_code(obj(entry, "type")) == "FILL" else None
            return filler, parts[1] or None
    return None, None


def observation_event(resource: Resource, ctx: Context, path: str) -> ObservationEvent:
    """Observation → one ObservationEvent: the result, or its components when the
    Observation itself has no value (a blood-pressure panel)."""
    status = _STATUS.get(text(resource, "status") or "")
    if status is None:
        raise FhirInputError.single(
            "not-supported", "observations of unknown status are not mapped", f"{path}.status"
        )
    categories = {
        first_code(c, codes.OBSERVATION_CATEGORY, None) for c in items(resource, "category")
    }
    category = next((c for c in _CATEGORIES if c in categories), "other")
    effective = (
        instant(resource.get("effectiveDateTime"))
        or instant(resource.get("effectiveInstant"))
        or instant(obj(resource, "effectivePeriod").get("start"))
    )
    filler, set_id = _report(resource, ctx)
    common = {"category": category, "status": status, "effective_at": effective}
    components = items(resource, "component")
    has_value = any(key.startswith("value") for key in resource) or "dataAbsentReason" in resource
    results = []
    if has_value or not components:
        results.append(_result(resource, {**common, "set_id": set_id}, path))
    results += [
        _result(component, common, f"{path}.component[{index}]")
        for index, component in enumerate(components)
    ]
    return ObservationEvent(
        trigger="Observation",
        message_id=message_id(resource),
        occurred_at=ctx.occurred(resource, instant(resource.get("issued")), effective),
        patient=subject_patient(resource, ctx, path),
        encounter=_encounter(resource, ctx),
        filler_order_number=filler,
        observations=results,
    )
