"""Canonical results → FHIR Observation (IG OBX[Observation], CWE[Quantity], SN[Quantity])."""

from __future__ import annotations

import math

from pipelines.fhir_map import _codes as codes
from pipelines.fhir_map._json import Resource, clean, coding, concept, date_time, reference
from pipelines.fhir_map.ids import encounter_id, observation_id, observation_key
from pipelines.fhir_map.patient import identifier_json, patient_reference
from schemas.events import Coding, Observation, ObservationEvent

_CATEGORY = {"vital-signs": "Vital Signs", "laboratory": "Laboratory"}
_UCUM_NAMES = {None, "UCUM", codes.UCUM}


def observation_system(system_base: str) -> str:
    return f"{system_base}observation"


def codeable(code: Coding) -> Resource:
    """CWE → CodeableConcept: the HL7 coding system name becomes its URI (LN → LOINC)."""
    system = codes.code_system_uri(code.system) if code.system else None
    return {"coding": [coding(system, code.code, code.display)]}


def _quantity(value: float, observation: Observation, *, simple: bool = False) -> Resource:
    unit = observation.unit
    system = None
    if unit is not None:
        # OBX-6 is UCUM unless OBX-6.3 names another system (CWE[Quantity]).
        ucum = observation.unit_system in _UCUM_NAMES
        system = codes.UCUM if ucum else codes.code_system_uri(observation.unit_system or "")
    return clean(
        value=value,
        comparator=None if simple else observation.comparator,
        unit=unit,
        system=system,
        code=unit if system else None,
    )


def _absent(code: str) -> Resource:
    return {"dataAbsentReason": concept(codes.DATA_ABSENT_REASON, code)}


def _value(observation: Observation) -> Resource:
    if observation.value_code is not None:
        return {"valueCodeableConcept": codeable(observation.value_code)}
    number = observation.value_number
    if number is not None:
        if math.isnan(number):
            return _absent("not-a-number")
        if math.isinf(number):
            return _absent("positive-infinity" if number > 0 else "negative-infinity")
        return {"valueQuantity": _quantity(number, observation)}
    if observation.value_text is not None:
        return {"valueString": observation.value_text}
    return _absent("not-performed" if observation.status == "cancelled" else "unknown")


def _interpretation(flag: str) -> Resource:
    display = codes.INTERPRETATION.get(flag)
    if display is None:
        # Inactive in v3-ObservationInterpretation (AC, HM, QCF, TOX...): keep the v2 code.
        return concept(codes.V2_0078, flag)
    return concept(codes.V3_INTERPRETATION, flag, display)


def _reference_range(observation: Observation) -> list[Resource]:
    rng = observation.reference_range
    if rng is None:
        return []
    entry = clean(
        low=_quantity(rng.low, observation, simple=True) if rng.low is not None else None,
        high=_quantity(rng.high, observation, simple=True) if rng.high is not None else None,
        text=rng.text,
    )
    return [entry] if entry else []


def observation_resources(event: ObservationEvent, *, system_base: str) -> list[Resource]:
    """One Observation per result of ``event``.

    A result message does not carry the visit's state, so it does not write
    the Encounter: it refers to the one the ADT feed writes, by the id that
    feed gives it and by its visit number (PV1-19), and only when there is a
    visit number to tie the two together.
    """
    report = event.filler_order_number or event.message_id
    encounter = None
    if event.encounter is not None and event.encounter.visit_number is not None:
        number = event.encounter.visit_number
        typed = number if number.type else number.model_copy(update={"type": "VN"})
        encounter = reference(
            "Encounter",
            encounter_id(event.patient, event.encounter, event.message_id),
            identifier=identifier_json(typed, system_base),
        )
    subject = patient_reference(event.patient, system_base)
    filler_type = None
    if event.filler_order_number is not None:
        filler_type = concept(codes.V2_0203, "FILL", "Filler Identifier")
    resources: list[Resource] = []
    for index, observation in enumerate(event.observations):
        key = observation_key(report, index, observation)
        category = _CATEGORY.get(observation.category)
        identifier = clean(
            type=filler_type,
            system=observation_system(system_base),
            value=f"{key[0]}^{key[1]}^{observation.code.code}",
        )
        resources.append(
            clean(
                resourceType="Observation",
                id=observation_id(key),
                identifier=[identifier],
                status=observation.status,
                category=[concept(codes.OBSERVATION_CATEGORY, observation.category, category)]
                if category
                else None,
                code=codeable(observation.code),
                subject=subject,
                encounter=encounter,
                effectiveDateTime=date_time(observation.effective_at)
                if observation.effective_at
                else None,
                issued=date_time(event.occurred_at),
                **_value(observation),
                interpretation=[_interpretation(f) for f in observation.abnormal_flags],
                referenceRange=_reference_range(observation),
            )
        )
    return resources
