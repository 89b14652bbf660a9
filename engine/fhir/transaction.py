"""Batch and transaction Bundles: their entries as store writes, and the
``batch-response`` / ``transaction-response`` Bundle of what the store did.

Entries supported: ``PUT Type/id`` (upsert at id) and ``POST Type`` (create
with a server id; ``request.ifNoneExist`` makes it conditional). Other
methods are refused: a transaction as a whole, a batch entry by entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from engine.fhir.outcome import FhirHttpError, outcome, status_line
from engine.fhir.search import STORED_TYPES, SearchError, parse_conditional
from engine.fhir.store import ID_PATTERN, FhirStoreError, Write, WriteResult

BundleKind = Literal["batch", "transaction"]


@dataclass(frozen=True, slots=True)
class BundlePlan:
    """The writes of a Bundle: one all-or-nothing group for a transaction,
    one group per entry for a batch (a refused batch entry holds its error)."""

    kind: BundleKind
    groups: list[list[Write] | FhirHttpError]


def check_type(type_: str, *, status: int = 400, expression: str | None = None) -> None:
    """Refuse resource types the store does not keep."""
    if type_ not in STORED_TYPES:
        raise FhirHttpError.of(
            status,
            f"resource type {type_!r} is not supported; supported: {', '.join(STORED_TYPES)}",
            code="not-supported",
            expression=[expression] if expression else [],
        )


def _check_body_type(type_: str, resource: dict[str, Any], where: str) -> None:
    """Refuse a body whose ``resourceType`` is not ``type_``, a type the store keeps."""
    check_type(type_, expression=f"{where}.resourceType")
    if resource.get("resourceType") != type_:
        raise FhirHttpError.of(
            400,
            f"resource type {resource.get('resourceType')!r} does not match {type_!r}",
            expression=[f"{where}.resourceType"],
        )


def put_write(type_: str, id_: str, resource: dict[str, Any], where: str) -> Write:
    """An update at ``type_/id_``: the body must be that type and carry that id."""
    _check_body_type(type_, resource, where)
    if not ID_PATTERN.match(id_):
        raise FhirHttpError.of(400, f"invalid resource id {id_!r}", expression=[f"{where}.id"])
    if resource.get("id") not in (None, id_):
        raise FhirHttpError.of(
            400,
            f"resource id {resource.get('id')!r} does not match the URL id {id_!r}",
            expression=[f"{where}.id"],
        )
    return Write({**resource, "id": id_}, id_, expression=where)


def create_write(
    type_: str,
    resource: dict[str, Any],
    where: str,
    *,
    if_none_exist: str | None = None,
    full_url: str | None = None,
) -> Write:
    """A create: the server assigns the id (a client id is ignored, as FHIR says)."""
    _check_body_type(type_, resource, where)
    query = None
    if if_none_exist:
        try:
            query = parse_conditional(type_, if_none_exist)
        except SearchError as exc:
            raise FhirHttpError.of(400, f"If-None-Exist: {exc}", code="invalid") from exc
    body = {k: v for k, v in resource.items() if k != "id"}
    return Write(body, None, if_none_exist=query, full_url=full_url, expression=where)


def _entry_write(entry: Any, index: int) -> Write:
    where = f"Bundle.entry[{index}]"
    if not isinstance(entry, dict):
        raise FhirHttpError.of(400, "entry is not an object", expression=[where])
    request, resource = entry.get("request"), entry.get("resource")
    if not isinstance(request, dict):
        raise FhirHttpError.of(400, "entry has no request", expression=[f"{where}.request"])
    if not isinstance(resource, dict):
        raise FhirHttpError.of(400, "entry has no resource", expression=[f"{where}.resource"])
    method, url = str(request.get("method", "")).upper(), str(request.get("url", ""))
    path = url.split("?", 1)[0].strip("/")
    parts = path.split("/")
    full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
    if method == "PUT" and len(parts) == 2 and "?" not in url:
        return put_write(parts[0], parts[1], resource, f"{where}.resource")
    if method == "POST" and len(parts) == 1 and "?" not in url:
        if_none_exist = request.get("ifNoneExist")
        return create_write(
            parts[0],
            resource,
            f"{where}.resource",
            if_none_exist=if_none_exist if isinstance(if_none_exist, str) else None,
            full_url=full_url,
        )
    raise FhirHttpError.of(
        400,
        f"{method or '?'} {url or '?'} is not supported in a Bundle: use PUT Type/id or POST Type",
        code="not-supported",
        expression=[f"{where}.request"],
    )


def plan_bundle(bundle: dict[str, Any]) -> BundlePlan:
    """The writes of a batch or transaction Bundle; raises FhirHttpError (400)
    for a Bundle of another type, or for a transaction with a bad entry."""
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise FhirHttpError.of(
            400,
            f"Bundle.type must be batch or transaction, got {kind!r}",
            expression=["Bundle.type"],
        )
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise FhirHttpError.of(400, "Bundle.entry must be a list", expression=["Bundle.entry"])
    if kind == "transaction":
        return BundlePlan("transaction", [[_entry_write(e, i) for i, e in enumerate(entries)]])
    groups: list[list[Write] | FhirHttpError] = []
    for i, entry in enumerate(entries):
        try:
            groups.append([_entry_write(entry, i)])
        except FhirHttpError as exc:
            groups.append(exc)
    return BundlePlan("batch", groups)


def store_error(exc: FhirStoreError) -> FhirHttpError:
    """The HTTP form of a refused store write."""
    return FhirHttpError(exc.status, outcome(str(exc), code=exc.code, expression=exc.expression))


def response_entry(result: WriteResult) -> dict[str, Any]:
    stored = result.stored
    return {
        "fullUrl": f"{stored.type}/{stored.id}",
        "response": {
            "status": status_line(result.http_status),
            "location": stored.location,
            "etag": stored.etag,
            "lastModified": stored.last_updated,
        },
    }


def error_entry(error: FhirHttpError) -> dict[str, Any]:
    return {"response": {"status": status_line(error.status), "outcome": error.outcome}}


def response_bundle(
    kind: BundleKind, entries: list[dict[str, Any]], *, timestamp: str
) -> dict[str, Any]:
    """The ``batch-response`` or ``transaction-response`` Bundle."""
    return {
        "resourceType": "Bundle",
        "type": f"{kind}-response",
        "timestamp": timestamp,
        "entry": entries,
    }


__all__ = [
    "BundleKind",
    "BundlePlan",
    "check_type",
    "create_write",
    "error_entry",
    "plan_bundle",
    "put_write",
    "response_bundle",
    "response_entry",
    "store_error",
]
