"""The engine's FHIR R4 side: the result store, search, the CapabilityStatement
and the ``/fhir`` API (``engine.fhir.api``, imported where it is mounted)."""

from engine.fhir.capability import capability_statement
from engine.fhir.outcome import FhirHttpError, outcome
from engine.fhir.search import SEARCH_PARAMS, STORED_TYPES, SearchError, parse_search
from engine.fhir.store import FhirStore, FhirStoreError, StoredResource, Write, WriteResult

__all__ = [
    "SEARCH_PARAMS",
    "STORED_TYPES",
    "FhirHttpError",
    "FhirStore",
    "FhirStoreError",
    "SearchError",
    "StoredResource",
    "Write",
    "WriteResult",
    "capability_statement",
    "outcome",
    "parse_search",
]
