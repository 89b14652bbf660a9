"""The FHIR REST destination: each ``fhir.out`` transaction Bundle POSTed to a
FHIR server's base URL.

Transient failures (5xx, 429, 408, timeouts, connection errors) are retried
with exponential backoff up to ``max_retries`` times; after that the write
raises :class:`FhirDestinationUnavailable`, nothing is committed, and the
hosting runner retries the batch later, so an outage loses nothing. A Bundle
the server refuses (any other 4xx) is a dead letter: the Bundle goes to
``dlq`` with the server's OperationOutcome, and the stream goes on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import structlog

from engine.fhir.outcome import diagnostics_of
from engine.runner import output_id
from engine.tls import client_context
from engine.types import Emit, Envelope
from pipelines.deadletter import dead_letter
from pipelines.fhir_map import transaction_bundle

log = structlog.get_logger("wardstream.fhir.writer")

FHIR_JSON = "application/fhir+json"
ConditionalMode = Literal["put", "if-none-exist"]
DeadLetters = Callable[[Emit], Awaitable[object]]
_RETRY_STATUSES = frozenset({408, 429})


class FhirDestinationUnavailable(Exception):
    """The server kept failing transiently; the batch is to be retried later."""


@dataclass(slots=True)
class WriterStats:
    """What a writer did since it started."""

    sent: int = 0
    retries: int = 0
    dead_letters: int = 0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FhirRestWriter:
    """A Sink POSTing transaction Bundles to ``base_url``.

    ``conditional`` picks how entries are written: ``put`` (update at the
    deterministic id) or ``if-none-exist`` (conditional create by identifier).
    ``dead_letters`` receives the ``dlq`` record of each refused Bundle.
    ``ca_file`` (PEM) is the only trust anchor for an https server's
    certificate (a private CA); without it the system's trust store is used.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "fhir",
        token: str | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        conditional: ConditionalMode = "put",
        ca_file: str | Path | None = None,
        dead_letters: DeadLetters | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if max_retries < 0 or backoff_s < 0 or timeout_s <= 0:
            raise ValueError("max_retries and backoff_s must be >= 0, timeout_s > 0")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.step_id = f"dest.{name}"
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.conditional = conditional
        self.stats = WriterStats()
        self._dead_letters = dead_letters
        self._clock = clock
        headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        verify = client_context(ca_file=ca_file) if ca_file is not None else True
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout_s, verify=verify)
        # Envelopes of a batch already delivered, so a retried batch does not resend them.
        self._delivered: set[str] = set()

    async def write(self, batch: Sequence[Envelope]) -> None:
        """Deliver every Bundle of ``batch`` in order; raises
        FhirDestinationUnavailable when the server stays unreachable."""
        for envelope in batch:
            if envelope.id in self._delivered:
                continue
            await self._deliver(envelope)
            self._delivered.add(envelope.id)
        self._delivered.difference_update(e.id for e in batch)

    async def _deliver(self, envelope: Envelope) -> None:
        try:
            bundle = self._bundle(envelope.payload)
        except ValueError as exc:
            await self._refuse(envelope, f"not a FHIR Bundle: {exc}", None, None)
            return
        body = json.dumps(bundle, separators=(",", ":")).encode()
        attempt = 0
        while True:
            problem, wait = await self._post(body)
            if problem is None:
                self.stats.sent += 1
                return
            if isinstance(problem, httpx.Response) and not _transient(problem):
                reason, server_outcome = _refusal(problem)
                await self._refuse(envelope, reason, server_outcome, problem.status_code)
                return
            if attempt >= self.max_retries:
                raise FhirDestinationUnavailable(
                    f"{self.base_url}: gave up after {attempt + 1} attempts: {_describe(problem)}"
                )
            delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
            attempt += 1
            self.stats.retries += 1
            log.warning(
                "fhir destination retry",
                destination=self.name,
                attempt=attempt,
                problem=_describe(problem),
                correlation_id=envelope.correlation_id,
            )
            await asyncio.sleep(max(delay, wait))

    async def _post(self, body: bytes) -> tuple[httpx.Response | Exception | None, float]:
        """(None, 0) on success, else the failing response or error and the
        server's Retry-After in seconds (0 when absent)."""
        try:
            response = await self._client.post(self.base_url, content=body)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            return exc, 0.0
        if response.is_success:
            return None, 0.0
        return response, min(self.max_backoff_s, _retry_after(response))

    def _bundle(self, payload: str) -> dict[str, Any]:
        bundle = json.loads(payload)
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise ValueError("payload is not a Bundle")
        if self.conditional == "put":
            return bundle
        resources = [e["resource"] for e in bundle.get("entry") or [] if "resource" in e]
        return transaction_bundle(resources, conditional=self.conditional)

    async def _refuse(
        self,
        envelope: Envelope,
        reason: str,
        server_outcome: dict[str, Any] | None,
        status: int | None,
    ) -> None:
        self.stats.dead_letters += 1
        log.warning(
            "fhir destination refused bundle",
            destination=self.name,
            status=status,
            correlation_id=envelope.correlation_id,
        )
        emit = dead_letter(envelope, step_id=self.step_id, reason=reason, at=self._clock())
        emit.envelope.id = output_id(envelope.id, self.step_id, 0)
        if status is not None:
            emit.envelope.headers["dlq.status"] = str(status)
        if server_outcome is not None:
            emit.envelope.headers["dlq.outcome"] = json.dumps(server_outcome)
        if self._dead_letters is not None:
            await self._dead_letters(emit)

    async def close(self) -> None:
        await self._client.aclose()


def _transient(response: httpx.Response) -> bool:
    return response.status_code >= 500 or response.status_code in _RETRY_STATUSES


def _refusal(response: httpx.Response) -> tuple[str, dict[str, Any] | None]:
    """The dead-letter reason and the server's OperationOutcome, if it sent one."""
    try:
        document = response.json()
    except ValueError:
        document = None
    server_outcome = (
        document
        if isinstance(document, dict) and document.get("resourceType") == "OperationOutcome"
        else None
    )
    text = diagnostics_of(server_outcome) or response.text[:300] or response.reason_phrase
    return f"FHIR server answered {response.status_code}: {text}", server_outcome


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0


def _describe(problem: httpx.Response | Exception) -> str:
    if isinstance(problem, httpx.Response):
        return f"HTTP {problem.status_code}"
    return f"{type(problem).__name__}: {problem}" if str(problem) else type(problem).__name__


__all__ = [
    "ConditionalMode",
    "DeadLetters",
    "FhirDestinationUnavailable",
    "FhirRestWriter",
    "WriterStats",
]
