"""FHIR ingest: resources and Bundles posted to the engine, checked, appended
to ``raw.fhir`` and stored, in that order.

A request is answered only after its input is durable on the bus. The record
on ``raw.fhir`` is the input as received (a batch Bundle without its refused
entries); ``normalize.fhir`` turns it into canonical events, and the result
store keeps the resources with FHIR semantics (PUT upserts at the id, POST
creates with a server id unless ``If-None-Exist`` matches). Input made only of
updates is appended once however often it is resent (a client retrying after
a lost answer); creates are appended every time, as they create every time.

Checks: structure against FHIR R4 (``validate_resource``, when enabled:
failures are 400) and, for the types that become canonical events, the
mapping to them (``from_fhir``: failures are 422, business rules).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from engine.fhir.outcome import FhirHttpError
from engine.fhir.search import STORED_TYPES
from engine.fhir.store import (
    FhirStore,
    FhirStoreError,
    Write,
    WriteResult,
    content_hash,
    instant,
)
from engine.fhir.transaction import (
    create_write,
    error_entry,
    plan_bundle,
    put_write,
    response_bundle,
    response_entry,
    store_error,
)
from engine.types import Bus, Envelope
from pipelines.fhir_in import MAPPED_TYPES
from pipelines.fhir_map import FhirInputError, from_fhir, operation_outcome, validate_resource
from schemas.topics import RAW_FHIR

log = structlog.get_logger("wardstream.fhir.ingest")

FHIR_CONTENT_TYPE = "application/fhir+json"
STEP_ID = "fhir.intake"


@dataclass(frozen=True, slots=True)
class NotificationResult:
    """What a Subscription notification carried: resources stored, entries skipped."""

    stored: list[WriteResult]
    skipped: list[str]
    kind: str


def _at(document: dict[str, Any], where: str | None) -> dict[str, Any]:
    """The OperationOutcome with each issue's FHIRPath rooted at ``where``
    (``Patient.birthDate`` of entry 2 → ``Bundle.entry[2].resource.birthDate``)."""
    if where is None or "." not in where:
        return document
    issues = []
    for issue in document.get("issue") or []:
        issue = dict(issue)
        paths = issue.get("expression") or []
        issue["expression"] = [
            where + ("." + p.split(".", 1)[1] if "." in p else "") for p in paths
        ] or [where]
        issues.append(issue)
    return {**document, "issue": issues}


def partition_key(resource: dict[str, Any]) -> str | None:
    """``Patient/<id>`` of the patient a resource is about, when it says."""
    if resource.get("resourceType") == "Patient" and resource.get("id"):
        return f"Patient/{resource['id']}"
    subject = resource.get("subject") or resource.get("patient")
    ref = subject.get("reference") if isinstance(subject, dict) else None
    if isinstance(ref, str) and "Patient/" in ref:
        return "Patient/" + ref.rsplit("Patient/", 1)[1].split("/")[0]
    return None


class FhirIngest:
    """Checks, appends and stores FHIR input for one channel."""

    def __init__(
        self,
        *,
        bus: Bus,
        store: FhirStore,
        clock: Callable[[], datetime],
        channel: str = "fhir",
        validate: bool = True,
        topic: str = RAW_FHIR,
    ) -> None:
        self.bus = bus
        self.store = store
        self.channel = channel
        self.validate = validate
        self.topic = topic
        self._clock = clock

    def check(self, resource: dict[str, Any], where: str | None = None) -> None:
        """Raise FhirHttpError when ``resource`` (or Bundle) is refused: 400 when
        it is not valid FHIR R4, 422 when it cannot become canonical events.
        ``where`` roots the issues' FHIRPath (a batch entry is checked alone)."""
        try:
            if self.validate:
                validate_resource(resource)
        except FhirInputError as exc:
            raise FhirHttpError(400, _at(operation_outcome(exc.issues), where)) from exc
        if resource.get("resourceType") in MAPPED_TYPES:
            try:
                from_fhir(resource, received_at=self._clock(), validate=False)
            except FhirInputError as exc:
                raise FhirHttpError(422, _at(operation_outcome(exc.issues), where)) from exc

    async def create(
        self, type_: str, resource: dict[str, Any], *, if_none_exist: str | None = None
    ) -> WriteResult:
        """``POST [base]/{type}``."""
        write = create_write(type_, resource, type_, if_none_exist=if_none_exist)
        self.check(resource)
        await self._append(resource, interaction="create", writes=[write])
        return await self._store_one(write)

    async def update(self, type_: str, id_: str, resource: dict[str, Any]) -> WriteResult:
        """``PUT [base]/{type}/{id}``."""
        write = put_write(type_, id_, resource, type_)
        self.check(write.resource)
        await self._append(write.resource, interaction="update", writes=[write])
        return await self._store_one(write)

    async def _store_one(self, write: Write) -> WriteResult:
        try:
            (result,) = await self.store.write([write])
        except FhirStoreError as exc:
            raise store_error(exc) from exc
        return result

    async def bundle(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """``POST [base]`` with a batch or transaction Bundle: the response Bundle.
        A transaction with any refused entry is refused as a whole."""
        plan = plan_bundle(bundle)
        if plan.kind == "batch":
            return await self._batch(bundle, plan.groups)
        (group,) = plan.groups
        assert not isinstance(group, FhirHttpError)  # plan_bundle raises for transactions
        # As a whole, so references between its entries resolve.
        self.check(bundle)
        await self._append(bundle, interaction="transaction", writes=group)
        try:
            results = await self.store.write(group)
        except FhirStoreError as exc:
            raise store_error(exc) from exc
        answers = [response_entry(result) for result in results]
        return response_bundle("transaction", answers, timestamp=instant(self._clock()))

    async def _batch(
        self, bundle: dict[str, Any], groups: Sequence[list[Write] | FhirHttpError]
    ) -> dict[str, Any]:
        slots: list[Write | FhirHttpError] = []
        for group in groups:
            if isinstance(group, FhirHttpError):
                slots.append(group)
                continue
            (write,) = group
            try:
                self.check(write.resource, write.expression)
            except FhirHttpError as exc:
                slots.append(exc)
            else:
                slots.append(write)
        writes = [slot for slot in slots if isinstance(slot, Write)]
        if writes:
            kept = [e for e, s in zip(bundle["entry"], slots, strict=True) if isinstance(s, Write)]
            await self._append({**bundle, "entry": kept}, interaction="batch", writes=writes)
        results = iter(await self.store.write_groups([[w] for w in writes]) if writes else [])
        answers = []
        for slot in slots:
            if isinstance(slot, FhirHttpError):
                answers.append(error_entry(slot))
                continue
            result = next(results)
            if isinstance(result, FhirStoreError):
                answers.append(error_entry(store_error(result)))
            else:
                answers.append(response_entry(result[0]))
        return response_bundle("batch", answers, timestamp=instant(self._clock()))

    async def notification(self, bundle: dict[str, Any]) -> NotificationResult:
        """A Subscription rest-hook notification: an R4 backport
        ``subscription-notification`` Bundle (its status entry says heartbeat,
        handshake or event-notification) or a plain Bundle of resources. Carried
        resources are stored as updates at their id (creates when they have
        none); entries without a resource, or of types the store does not
        keep, are skipped and reported."""
        if bundle.get("resourceType") != "Bundle":
            raise FhirHttpError.of(
                400, "a notification must be a Bundle", expression=["resourceType"]
            )
        entries = bundle.get("entry") or []
        if not isinstance(entries, list):
            raise FhirHttpError.of(400, "Bundle.entry must be a list", expression=["Bundle.entry"])
        kind = "event-notification"
        writes: list[Write] = []
        skipped: list[str] = []
        for i, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            where = f"Bundle.entry[{i}].resource"
            if not isinstance(resource, dict):
                skipped.append(f"Bundle.entry[{i}]: no resource (id-only payload)")
                continue
            type_ = str(resource.get("resourceType"))
            if type_ in STATUS_TYPES:
                kind = notification_type(resource) or kind
                continue
            if type_ not in STORED_TYPES:
                skipped.append(f"{where}: {type_} is not stored")
                continue
            id_ = resource.get("id")
            full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
            write = (
                put_write(type_, id_, resource, where)
                if isinstance(id_, str)
                else create_write(type_, resource, where, full_url=full_url)
            )
            if self.validate:
                try:
                    validate_resource(write.resource)
                except FhirInputError as exc:
                    raise FhirHttpError(400, _at(operation_outcome(exc.issues), where)) from exc
            writes.append(write)
        if kind in ("heartbeat", "handshake") or not writes:
            return NotificationResult([], skipped, kind)
        try:
            from_fhir(bundle, received_at=self._clock(), validate=False)
        except FhirInputError as exc:
            raise FhirHttpError(422, operation_outcome(exc.issues)) from exc
        await self._append(bundle, interaction="notification", writes=writes)
        try:
            stored = await self.store.write(writes)
        except FhirStoreError as exc:
            raise store_error(exc) from exc
        return NotificationResult(stored, skipped, kind)

    async def _append(
        self, document: dict[str, Any], *, interaction: str, writes: Sequence[Write]
    ) -> None:
        """Append ``document`` to ``raw.fhir``; returns once it is durable."""
        envelope_id = uuid.uuid4().hex
        payload = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        envelope = Envelope(
            id=envelope_id,
            correlation_id=_correlation_id(document) or envelope_id,
            channel=self.channel,
            received_at=self._clock(),
            content_type=FHIR_CONTENT_TYPE,
            payload=payload,
            headers={
                "fhir.interaction": interaction,
                "fhir.type": str(document.get("resourceType")),
            },
        )
        dedup = await self._dedup_id(writes)
        key = _document_key(document)
        try:
            await self.bus.append(
                self.topic,
                envelope.to_bytes(),
                key=key.encode() if key is not None else None,
                dedup_id=dedup,
            )
        # Any driver failure means "not durable": the client is told to retry.
        except Exception as exc:
            log.error(
                "fhir.append.failed",
                channel=self.channel,
                correlation_id=envelope.correlation_id,
                error=type(exc).__name__,
            )
            raise FhirHttpError.of(
                503, "the input could not be stored durably; retry later", code="transient"
            ) from exc

    async def _dedup_id(self, writes: Sequence[Write]) -> str | None:
        """For input made only of updates: the resources and the versions they
        will have once stored. A resend of what the store already holds
        names the same versions and is appended once; the same content
        coming back after a change names a new version and is appended."""
        if not writes or any(w.id is None or w.if_none_exist is not None for w in writes):
            return None
        versions = await self.store.versions_after(writes)
        lines = [
            f"{w.resource.get('resourceType')}/{w.id}/{version}/{content_hash(w.resource)}"
            for w, version in zip(writes, versions, strict=True)
        ]
        digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
        return f"fhir|{self.channel}|{digest}"


STATUS_TYPES = frozenset({"Parameters", "SubscriptionStatus"})


def notification_type(status: dict[str, Any]) -> str | None:
    """The notification type of a SubscriptionStatus (R4B) or of the R4
    backport's status Parameters: heartbeat, handshake, event-notification..."""
    if status.get("resourceType") == "SubscriptionStatus":
        value = status.get("type")
        return value if isinstance(value, str) else None
    for parameter in status.get("parameter") or []:
        if isinstance(parameter, dict) and parameter.get("name") == "type":
            value = parameter.get("valueCode")
            return value if isinstance(value, str) else None
    return None


def _resources(document: dict[str, Any]) -> list[dict[str, Any]]:
    if document.get("resourceType") != "Bundle":
        return [document]
    entries = document.get("entry") or []
    return [
        e["resource"]
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]


def _correlation_id(document: dict[str, Any]) -> str | None:
    """The FHIR id naming the input: a resource's or Bundle's id, a Bundle's
    identifier, else its first resource with an id."""
    if isinstance(document.get("id"), str):
        return f"{document['resourceType']}/{document['id']}"
    ident = document.get("identifier")
    is_bundle = document.get("resourceType") == "Bundle"
    if is_bundle and isinstance(ident, dict) and isinstance(ident.get("value"), str):
        return str(ident["value"])
    for resource in _resources(document):
        if isinstance(resource.get("id"), str):
            return f"{resource.get('resourceType')}/{resource['id']}"
    return None


def _document_key(document: dict[str, Any]) -> str | None:
    for resource in _resources(document):
        if (key := partition_key(resource)) is not None:
            return key
    return None


__all__ = [
    "FHIR_CONTENT_TYPE",
    "STATUS_TYPES",
    "STEP_ID",
    "FhirIngest",
    "NotificationResult",
    "notification_type",
    "partition_key",
]
