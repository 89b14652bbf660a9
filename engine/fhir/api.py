"""The FHIR R4 REST API at ``/fhir``: CapabilityStatement, read, search,
create, update, batch/transaction Bundles and a Subscription rest-hook.

Every answer is ``application/fhir+json``; every refusal an OperationOutcome.
With a token configured, every route but ``/fhir/metadata`` requires
``Authorization: Bearer <token>`` (clients discover the server unauthenticated,
as SMART on FHIR expects).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response

from connectors.fhir.ingest import FhirIngest
from engine.fhir.capability import FHIR_JSON, capability_statement
from engine.fhir.outcome import FhirHttpError, outcome
from engine.fhir.search import SearchError, SearchQuery, parse_search
from engine.fhir.store import FhirStore, StoredResource, WriteResult
from engine.fhir.transaction import check_type

ACCEPTED_MEDIA_TYPES = frozenset({FHIR_JSON, "application/json", "application/json+fhir"})
# A bound on what one request may make the engine hold in memory.
MAX_BODY_BYTES = 16 * 1024 * 1024


def fhir_response(
    document: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, headers=headers, media_type=FHIR_JSON)


def _version_headers(stored: StoredResource) -> dict[str, str]:
    modified = datetime.fromisoformat(stored.last_updated)
    return {"ETag": stored.etag, "Last-Modified": format_datetime(modified, usegmt=True)}


def _written(result: WriteResult, base: str) -> Response:
    stored = result.stored
    headers = {**_version_headers(stored), "Location": f"{base}/{stored.location}"}
    return fhir_response(stored.resource, result.http_status, headers)


async def _body(request: Request) -> dict[str, Any]:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise FhirHttpError.of(
            415,
            f"unsupported content type {media_type or '(none)'!r}: send {FHIR_JSON}",
            code="not-supported",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise FhirHttpError.of(
                413, f"the body is larger than {MAX_BODY_BYTES} bytes", code="too-costly"
            )
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FhirHttpError.of(400, f"the body is not JSON: {exc}", code="structure") from exc
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise FhirHttpError.of(
            400, "the body is not a FHIR resource", code="structure", expression=["resourceType"]
        )
    return document


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _searchset(
    query: SearchQuery, total: int, found: list[StoredResource], base: str
) -> dict[str, Any]:
    def link(offset: int) -> str:
        params = [(k, v) for k, v in query.echo if k != "_offset"]
        if offset:
            params.append(("_offset", str(offset)))
        return f"{base}/{query.type}" + (f"?{urlencode(params)}" if params else "")

    links = [{"relation": "self", "url": link(query.offset)}]
    if query.count and query.offset + len(found) < total:
        links.append({"relation": "next", "url": link(query.offset + len(found))})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/{r.type}/{r.id}",
                "resource": r.resource,
                "search": {"mode": "match"},
            }
            for r in found
        ],
    }


def mount_fhir(
    app: FastAPI,
    *,
    store: FhirStore,
    ingest: FhirIngest,
    token: str | None,
    software_version: str,
    clock: Callable[[], datetime],
) -> None:
    """Add the ``/fhir`` routes and their OperationOutcome error answers to ``app``."""

    async def fhir_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FhirHttpError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return fhir_response(exc.outcome, exc.status, headers)

    app.add_exception_handler(FhirHttpError, fhir_error)

    def require_token(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise FhirHttpError.of(401, "missing or wrong bearer token", code="login")

    public = APIRouter(prefix="/fhir")
    router = APIRouter(prefix="/fhir", dependencies=[Depends(require_token)])

    @public.get("/metadata")
    async def metadata(request: Request) -> Response:
        return fhir_response(
            capability_statement(
                base_url=_base(request),
                software_version=software_version,
                date=clock(),
                token_required=token is not None,
            )
        )

    @router.post("")
    @router.post("/", include_in_schema=False)
    async def post_bundle(request: Request) -> Response:
        document = await _body(request)
        if document["resourceType"] != "Bundle":
            raise FhirHttpError.of(
                400, "POST [base] takes a batch or transaction Bundle", expression=["resourceType"]
            )
        return fhir_response(await ingest.bundle(document))

    @router.post("/$subscription-hook")
    async def subscription_hook(request: Request) -> Response:
        result = await ingest.notification(await _body(request))
        text = f"{result.kind}: {len(result.stored)} resources stored"
        document = outcome(text, code="informational", severity="information")
        for reason in result.skipped:
            document["issue"].append(
                {"severity": "warning", "code": "not-supported", "diagnostics": reason}
            )
        return fhir_response(document)

    @router.get("/{type_}")
    async def search(type_: str, request: Request) -> Response:
        check_type(type_, status=404)
        try:
            query = parse_search(type_, request.query_params.multi_items())
        except SearchError as exc:
            raise FhirHttpError.of(400, str(exc), code="not-supported") from exc
        total, found = await store.search(query)
        return fhir_response(_searchset(query, total, found, _base(request)))

    @router.post("/{type_}")
    async def create(type_: str, request: Request) -> Response:
        check_type(type_, status=404)
        document = await _body(request)
        condition = request.headers.get("if-none-exist")
        result = await ingest.create(type_, document, if_none_exist=condition)
        return _written(result, _base(request))

    @router.get("/{type_}/{id_}")
    async def read(type_: str, id_: str) -> Response:
        check_type(type_, status=404)
        stored = await store.read(type_, id_)
        if stored is None:
            raise FhirHttpError.of(404, f"{type_}/{id_} is not known", code="not-found")
        return fhir_response(stored.resource, headers=_version_headers(stored))

    @router.put("/{type_}/{id_}")
    async def update(type_: str, id_: str, request: Request) -> Response:
        check_type(type_, status=404)
        result = await ingest.update(type_, id_, await _body(request))
        return _written(result, _base(request))

    app.include_router(public)
    app.include_router(router)


__all__ = ["ACCEPTED_MEDIA_TYPES", "MAX_BODY_BYTES", "fhir_response", "mount_fhir"]
