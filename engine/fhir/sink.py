"""The ``fhir.store`` sink: ``fhir.out`` Bundles written into the result store.

Every Bundle of a polled batch is applied in one SQLite transaction (each
Bundle all-or-nothing on its own). Ids are deterministic and unchanged
content makes no new version, so a redelivered batch changes nothing. A Bundle
the store refuses becomes a dead letter with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import structlog

from engine.fhir.outcome import FhirHttpError, diagnostics_of
from engine.fhir.store import FhirStore, FhirStoreError, Write
from engine.fhir.transaction import plan_bundle
from engine.runner import output_id
from engine.types import Emit, Envelope
from pipelines.deadletter import dead_letter

log = structlog.get_logger("wardstream.fhir.store")

STEP_ID = "fhir.store"


class FhirStoreSink:
    """A Sink applying transaction (or batch) Bundles to a :class:`FhirStore`."""

    name = STEP_ID

    def __init__(
        self,
        store: FhirStore,
        *,
        dead_letters: Callable[[Emit], Awaitable[object]],
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.written = 0
        self._dead_letters = dead_letters
        self._clock = clock

    async def write(self, batch: Sequence[Envelope]) -> None:
        groups: list[Sequence[Write]] = []
        owners: list[Envelope] = []
        refused: dict[str, list[str]] = {}
        for envelope in batch:
            try:
                document = json.loads(envelope.payload)
                if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
                    raise FhirHttpError.of(400, "payload is not a Bundle")
                plan = plan_bundle(document)
            except (ValueError, FhirHttpError) as exc:
                refused.setdefault(envelope.id, []).append(_reason(exc))
                continue
            for group in plan.groups:
                if isinstance(group, FhirHttpError):
                    refused.setdefault(envelope.id, []).append(_reason(group))
                else:
                    groups.append(group)
                    owners.append(envelope)
        results = await self.store.write_groups(groups) if groups else []
        for envelope, result in zip(owners, results, strict=True):
            if isinstance(result, FhirStoreError):
                refused.setdefault(envelope.id, []).append(str(result))
            else:
                self.written += len(result)
        for envelope in batch:
            if envelope.id in refused:
                await self._refuse(envelope, "; ".join(refused[envelope.id]))

    async def _refuse(self, envelope: Envelope, reason: str) -> None:
        log.warning("fhir store refused bundle", correlation_id=envelope.correlation_id)
        emit = dead_letter(envelope, step_id=STEP_ID, reason=reason, at=self._clock())
        emit.envelope.id = output_id(envelope.id, STEP_ID, 0)
        await self._dead_letters(emit)

    async def close(self) -> None:
        """Nothing to release: the engine owns the store."""


def _reason(exc: Exception) -> str:
    if isinstance(exc, FhirHttpError):
        return diagnostics_of(exc.outcome) or str(exc)
    return f"not a FHIR Bundle: {exc}"


__all__ = ["STEP_ID", "FhirStoreSink"]
