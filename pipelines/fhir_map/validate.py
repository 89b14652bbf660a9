"""FHIR R4 input validation with fhir.resources' R4B models: :func:`validate_resource`.

R4B is wire-compatible with R4 for the resources Wardstream reads and
writes. The models check structure, cardinality, datatypes and choice types
but not code bindings, so the required bindings of the elements the mapping
reads (statuses, gender, Bundle.type...) are checked here as well. About
2,600 validations/s: callers decide whether to pay for it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource as ResourceModel
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from pipelines.fhir_map.outcome import FhirInputError, FhirIssue, IssueCode

_RESOURCE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}")
_CHOICE = re.compile(r"\[([^\]]*)\]")
_SPACES = re.compile(r"\s+")

# Required bindings of top-level code elements, per resource type.
BINDINGS: dict[str, dict[str, frozenset[str]]] = {
    "Patient": {"gender": frozenset({"male", "female", "other", "unknown"})},
    "Encounter": {
        "status": frozenset(
            {
                "planned",
                "arrived",
                "triaged",
                "in-progress",
                "onleave",
                "finished",
                "cancelled",
                "entered-in-error",
                "unknown",
            }
        )
    },
    "Observation": {
        "status": frozenset(
            {
                "registered",
                "preliminary",
                "final",
                "amended",
                "corrected",
                "cancelled",
                "entered-in-error",
                "unknown",
            }
        )
    },
    "Location": {
        "status": frozenset({"active", "suspended", "inactive"}),
        "mode": frozenset({"instance", "kind"}),
    },
    "Bundle": {
        "type": frozenset(
            {
                "document",
                "message",
                "transaction",
                "transaction-response",
                "batch",
                "batch-response",
                "history",
                "searchset",
                "collection",
                "subscription-notification",
            }
        )
    },
}
# Required bindings inside repeating backbone elements: (resource, array, element).
NESTED_BINDINGS: dict[tuple[str, str, str], frozenset[str]] = {
    ("Encounter", "location", "status"): frozenset({"planned", "active", "reserved", "completed"}),
    ("Patient", "link", "type"): frozenset({"replaced-by", "replaces", "refer", "seealso"}),
}


def _model(resource_type: str) -> type[ResourceModel] | None:
    if not _RESOURCE_NAME.fullmatch(resource_type):
        return None
    try:
        model = get_fhir_model_class(resource_type)
    except ValueError:
        return None
    if isinstance(model, type) and issubclass(model, ResourceModel):
        return model
    return None


def _path(root: str, loc: tuple[int | str, ...]) -> str:
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "resource_type":
            path += ".resourceType"
        else:
            path += "." + part.removeprefix("_").removesuffix("__ext")
    return path


def _code(error: ErrorDetails) -> IssueCode:
    kind = error["type"]
    if "missing" in kind:
        return "required"
    if kind == "extra_forbidden" or kind.endswith("_type") or "resource-type" in kind:
        return "structure"
    return "value"


def _diagnostics(error: ErrorDetails) -> str:
    message = _SPACES.sub(" ", error["msg"]).strip()
    value = error.get("input")
    # Keep the sender's values (a birth date, an identifier) out of diagnostics and logs.
    if isinstance(value, str) and value and value in message:
        message = message.replace(f"'{value}'", "").replace(value, "").strip()
    return message


def _issue(root: str, error: ErrorDetails) -> FhirIssue:
    loc = tuple(error["loc"])
    diagnostics = _diagnostics(error)
    if not loc and "field value is expected" in diagnostics:
        # Choice types are checked on the whole resource: name the element[x].
        names = _CHOICE.search(diagnostics)
        if names is not None:
            options = [n.strip(" '\"") for n in names.group(1).split(",")]
            stem = os.path.commonprefix(options)  # noqa: RUF071 - names, not paths
            if stem:
                return FhirIssue("error", "structure", diagnostics, f"{root}.{stem}[x]")
    return FhirIssue("error", _code(error), diagnostics, _path(root, loc))


def _unbound(element: str, where: str) -> FhirIssue:
    return FhirIssue(
        "error", "value", f"unknown {element} code (not in the required binding)", where
    )


def _codes_in(resource: dict[str, Any], path: str) -> Iterator[FhirIssue]:
    """Required-binding issues of ``resource`` and of the resources it contains."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return
    for element, allowed in BINDINGS.get(resource_type, {}).items():
        value = resource.get(element)
        if isinstance(value, str) and value not in allowed:
            yield _unbound(element, f"{path}.{element}")
    for (owner, array, element), allowed in NESTED_BINDINGS.items():
        items = resource.get(array) if owner == resource_type else None
        for index, item in enumerate(items if isinstance(items, list) else []):
            value = item.get(element) if isinstance(item, dict) else None
            if isinstance(value, str) and value not in allowed:
                yield _unbound(element, f"{path}.{array}[{index}].{element}")
    yield from _children(resource, path)


def _children(resource: dict[str, Any], path: str) -> Iterator[FhirIssue]:
    contained = resource.get("contained")
    for index, child in enumerate(contained if isinstance(contained, list) else []):
        if isinstance(child, dict):
            yield from _codes_in(child, f"{path}.contained[{index}]")
    entries = resource.get("entry") if resource.get("resourceType") == "Bundle" else None
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        child = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(child, dict):
            yield from _codes_in(child, f"{path}.entry[{index}].resource")


def resource_issues(resource: object) -> list[FhirIssue]:
    """Every problem found with ``resource``; empty when it is a valid R4 resource."""
    if not isinstance(resource, dict):
        return [FhirIssue("error", "structure", "a FHIR resource must be a JSON object")]
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return [FhirIssue("error", "required", "resourceType is missing", "resourceType")]
    model = _model(resource_type)
    if model is None:
        return [
            FhirIssue(
                "error",
                "not-supported",
                f"unknown resource type {resource_type[:64]!r}",
                "resourceType",
            )
        ]
    issues: list[FhirIssue] = []
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        issues += [_issue(resource_type, error) for error in exc.errors()]
    issues += _codes_in(resource, resource_type)
    return issues


def validate_resource(resource: dict[str, Any]) -> None:
    """Raise :class:`FhirInputError` unless ``resource`` is a valid FHIR R4 resource."""
    issues = resource_issues(resource)
    if issues:
        raise FhirInputError(issues)
