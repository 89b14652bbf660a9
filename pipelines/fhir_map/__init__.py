"""Canonical events ⇄ FHIR R4 resources, following the HL7 v2-to-FHIR IG tables.

Pure functions: :func:`to_fhir` (canonical → resources with deterministic ids),
:func:`transaction_bundle` (idempotent writes), :func:`from_fhir` (FHIR ingest,
validated), :func:`validate_resource` and :func:`operation_outcome`.
"""

from pipelines.fhir_map.bundle import FhirBundleError, transaction_bundle
from pipelines.fhir_map.ids import DEFAULT_SYSTEM_BASE, resource_id
from pipelines.fhir_map.inbound import from_fhir
from pipelines.fhir_map.outbound import to_fhir
from pipelines.fhir_map.outcome import FhirInputError, FhirIssue, operation_outcome
from pipelines.fhir_map.validate import resource_issues, validate_resource

__all__ = [
    "DEFAULT_SYSTEM_BASE",
    "FhirBundleError",
    "FhirInputError",
    "FhirIssue",
    "from_fhir",
    "operation_outcome",
    "resource_id",
    "resource_issues",
    "to_fhir",
    "transaction_bundle",
    "validate_resource",
]
