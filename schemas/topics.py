"""The topic catalogue. Topic names are part of Wardstream's public contract."""

from __future__ import annotations

from engine.types import TopicSpec

RAW_HL7V2 = "raw.hl7v2"
RAW_FHIR = "raw.fhir"
EVENTS_ADT = "events.adt"
EVENTS_OBS = "events.obs"
CENSUS_WARDS = "census.wards"
FORECASTS_WARDS = "forecasts.wards"
PREDICTIONS_PATIENTS = "predictions.patients"
ALERTS = "alerts"
FHIR_OUT = "fhir.out"
DLQ = "dlq"

# Partition keys: the patient for patient streams, the ward for census/forecast streams.
CATALOGUE: dict[str, str] = {
    RAW_HL7V2: "Raw HL7v2 messages as received, keyed by sending application/facility.",
    RAW_FHIR: "Raw FHIR R4 resources and Bundles as received.",
    EVENTS_ADT: "Canonical admission/discharge/transfer events, keyed by patient.",
    EVENTS_OBS: "Canonical observations (vital signs, labs), keyed by patient.",
    CENSUS_WARDS: "Bed census per ward after each change, keyed by ward.",
    FORECASTS_WARDS: "Occupancy forecasts per ward and horizon, keyed by ward.",
    PREDICTIONS_PATIENTS: "Per-patient discharge probabilities, keyed by patient.",
    ALERTS: "NEWS2 deterioration and capacity alerts.",
    FHIR_OUT: "FHIR R4 resources produced by the engine.",
    DLQ: "Dead letters: the envelope, the failing step and the reason.",
}


def default_topics(partitions: int = 4) -> list[TopicSpec]:
    """Every catalogued topic with ``partitions`` partitions."""
    return [TopicSpec(name=name, partitions=partitions) for name in CATALOGUE]
