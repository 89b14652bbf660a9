"""FHIR R4 over HTTP: ingest of resources, Bundles and Subscription
notifications (served at ``/fhir`` by ``engine.fhir.api``), and the REST
destination that writes ``fhir.out`` to a FHIR server."""

from connectors.fhir.ingest import FHIR_CONTENT_TYPE, FhirIngest, NotificationResult
from connectors.fhir.writer import (
    ConditionalMode,
    FhirDestinationUnavailable,
    FhirRestWriter,
    WriterStats,
)

__all__ = [
    "FHIR_CONTENT_TYPE",
    "ConditionalMode",
    "FhirDestinationUnavailable",
    "FhirIngest",
    "FhirRestWriter",
    "NotificationResult",
    "WriterStats",
]
