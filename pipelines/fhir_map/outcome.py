"""FHIR input problems as data: :class:`FhirIssue`, :class:`FhirInputError`, OperationOutcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pipelines.fhir_map._json import Resource, clean

Severity = Literal["fatal", "error", "warning", "information"]
IssueCode = Literal[
    "invalid",
    "structure",
    "required",
    "value",
    "invariant",
    "not-supported",
    "code-invalid",
    "processing",
    "informational",
]


@dataclass(frozen=True, slots=True)
class FhirIssue:
    """One problem with a FHIR input, as an OperationOutcome.issue says it.

    ``code`` is from the FHIR issue-type value set; ``expression`` is the
    FHIRPath of the offending element (``Encounter.status``,
    ``Bundle.entry[2].resource.birthDate``).
    """

    severity: Severity
    code: IssueCode
    diagnostics: str
    expression: str | None = None

    def to_json(self) -> Resource:
        return clean(
            severity=self.severity,
            code=self.code,
            diagnostics=self.diagnostics,
            expression=[self.expression] if self.expression else None,
        )


class FhirInputError(ValueError):
    """A FHIR resource that cannot be accepted; ``issues`` says why and where."""

    def __init__(self, issues: Sequence[FhirIssue]) -> None:
        self.issues: tuple[FhirIssue, ...] = tuple(issues)
        summary = "; ".join(
            f"{i.expression}: {i.diagnostics}" if i.expression else i.diagnostics
            for i in self.issues
        )
        super().__init__(summary or "invalid FHIR input")

    @classmethod
    def single(
        cls, code: IssueCode, diagnostics: str, expression: str | None = None
    ) -> FhirInputError:
        return cls([FhirIssue("error", code, diagnostics, expression)])


def operation_outcome(issues: Sequence[FhirIssue]) -> Resource:
    """The OperationOutcome JSON for ``issues`` (an informational one when there are none,
    since an OperationOutcome needs at least one issue)."""
    entries = [issue.to_json() for issue in issues]
    if not entries:
        entries = [{"severity": "information", "code": "informational", "diagnostics": "OK"}]
    return {"resourceType": "OperationOutcome", "issue": entries}
