"""FHIR transaction Bundles for idempotent writes: :func:`transaction_bundle`."""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal
from urllib.parse import quote

from pipelines.fhir_map._json import Resource
from pipelines.fhir_map.ids import ID_NAMESPACE

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class FhirBundleError(ValueError):
    """A resource that cannot go into a transaction (no resourceType, or no id)."""


def _search_token(text: str) -> str:
    # FHIR search escapes first, then URL encoding of the query string.
    escaped = text.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,")
    return quote(escaped.replace("$", "\\$"), safe=":/")


def _identifier_query(identifier: object) -> str | None:
    if not isinstance(identifier, dict) or not isinstance(identifier.get("value"), str):
        return None
    system = identifier.get("system")
    # "|value" matches only identifiers without a system, as the resource has.
    prefix = _search_token(system) if isinstance(system, str) else ""
    return f"identifier={prefix}|{_search_token(identifier['value'])}"


def if_none_exist(resource: Resource) -> str | None:
    """``identifier=system|value`` for the resource's first identifier, if it has one."""
    identifiers = resource.get("identifier")
    if not isinstance(identifiers, list) or not identifiers:
        return None
    return _identifier_query(identifiers[0])


def _full_url(resource_type: str, resource_id: str) -> str:
    if _UUID.fullmatch(resource_id):
        return f"urn:uuid:{resource_id}"
    return f"urn:uuid:{uuid.uuid5(ID_NAMESPACE, f'{resource_type}/{resource_id}')}"


def _rewrite(value: Any, urls: dict[str, str]) -> Any:
    """A deep copy of ``value`` whose references to bundled resources use their fullUrl,
    and whose references to other resources that carry an identifier become conditional
    (``Encounter?identifier=system|value``): the server's ids are not ours."""
    if isinstance(value, list):
        return [_rewrite(item, urls) for item in value]
    if not isinstance(value, dict):
        return value
    copy = {key: _rewrite(item, urls) for key, item in value.items()}
    target = value.get("reference")
    if isinstance(target, str) and not target.startswith("#"):
        query = _identifier_query(value.get("identifier"))
        if target in urls:
            copy["reference"] = urls[target]
        elif query is not None and "/" in target:
            copy["reference"] = f"{target.split('/')[0]}?{query}"
    return copy


def _key(resource: Resource) -> tuple[str, str]:
    resource_type = resource.get("resourceType")
    resource_id = resource.get("id")
    if not isinstance(resource_type, str) or not isinstance(resource_id, str):
        raise FhirBundleError("every resource needs a resourceType and an id")
    return resource_type, resource_id


def transaction_bundle(
    resources: list[Resource], *, conditional: Literal["put", "if-none-exist"] = "put"
) -> Resource:
    """A FHIR transaction Bundle writing ``resources`` idempotently.

    ``"put"``: one ``PUT <Type>/<id>`` per resource, an upsert under the
    deterministic id. ``"if-none-exist"``: a conditional ``POST`` per resource,
    ``ifNoneExist`` on its first identifier (resources without one are plain
    POSTs), for servers that assign their own ids; references between the
    bundled resources are rewritten to their ``urn:uuid`` fullUrls, and
    references to resources outside the bundle to conditional references on
    their identifier, so the server can resolve them.
    """
    if conditional == "put":
        entries: list[Resource] = []
        for resource in resources:
            resource_type, resource_id = _key(resource)
            request = {"method": "PUT", "url": f"{resource_type}/{resource_id}"}
            entries.append({"resource": resource, "request": request})
        return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    if conditional != "if-none-exist":
        raise FhirBundleError(f"unknown conditional mode {conditional!r}")
    urls = {"/".join(_key(r)): _full_url(*_key(r)) for r in resources}
    entries = []
    for resource in resources:
        resource_type, resource_id = _key(resource)
        body = {k: v for k, v in _rewrite(resource, urls).items() if k != "id"}
        request = {"method": "POST", "url": resource_type}
        condition = if_none_exist(resource)
        if condition is not None:
            request["ifNoneExist"] = condition
        entries.append(
            {
                "fullUrl": urls[f"{resource_type}/{resource_id}"],
                "resource": body,
                "request": request,
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
