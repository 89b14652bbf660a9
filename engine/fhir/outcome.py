"""OperationOutcome documents for protocol-level answers of the FHIR API
(not found, unauthorised, unsupported media type, refused searches and writes),
and the error type that carries one to the HTTP layer."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, Literal

Severity = Literal["fatal", "error", "warning", "information"]


def outcome(
    diagnostics: str,
    *,
    code: str = "invalid",
    severity: Severity = "error",
    expression: Sequence[str] = (),
) -> dict[str, Any]:
    """An OperationOutcome with one issue."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = list(expression)
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def status_line(status: int) -> str:
    """``201 Created``: the form of ``Bundle.entry.response.status``."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def diagnostics_of(document: Any) -> str:
    """The diagnostics (or details text) of every issue of an OperationOutcome, joined."""
    if not isinstance(document, dict) or document.get("resourceType") != "OperationOutcome":
        return ""
    texts = []
    for issue in document.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
        where = ", ".join(str(e) for e in issue.get("expression") or [])
        if text:
            texts.append(f"{text} ({where})" if where else str(text))
    return "; ".join(texts)


class FhirHttpError(Exception):
    """An answer other than success: HTTP ``status`` with an OperationOutcome body."""

    def __init__(self, status: int, document: dict[str, Any]) -> None:
        super().__init__(diagnostics_of(document) or status_line(status))
        self.status = status
        self.outcome = document

    @classmethod
    def of(
        cls,
        status: int,
        diagnostics: str,
        *,
        code: str = "invalid",
        expression: Sequence[str] = (),
    ) -> FhirHttpError:
        return cls(status, outcome(diagnostics, code=code, expression=expression))


__all__ = ["FhirHttpError", "Severity", "diagnostics_of", "outcome", "status_line"]
