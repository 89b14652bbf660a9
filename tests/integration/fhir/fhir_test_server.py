"""A small real FHIR-ish HTTP server for destination tests: uvicorn on
127.0.0.1 with an OS-assigned port, answering requests from a script
(fail N times, hang past the client's timeout, refuse with an
OperationOutcome...) and recording every request it got."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn

from engine.types import Envelope

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - counters have no event to await
            await asyncio.sleep(0.02)


@dataclass
class Reply:
    """One scripted answer: wait ``delay_s`` (to outlast a client timeout), then answer."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


OK = Reply(200, {"resourceType": "Bundle", "type": "transaction-response", "entry": []})


@dataclass
class ScriptedServer:
    """Answers with ``script`` in order, then with ``default`` forever."""

    script: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=lambda: OK)
    received: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append(Received(scope["method"], scope["path"], headers, body))
        reply = self.script.pop(0) if self.script else self.default
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        payload = json.dumps(reply.body).encode() if reply.body is not None else b""
        out_headers = [(b"content-type", b"application/fhir+json")]
        out_headers += [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": out_headers})
        await send({"type": "http.response.body", "body": payload})


class _QuietServer(uvicorn.Server):
    """Leaves the test process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve(app: ScriptedServer) -> AsyncIterator[ScriptedServer]:
    """Run ``app`` on a free loopback port for the duration of the block."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, lifespan="off", access_log=False
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                await task
            await asyncio.sleep(0.01)
    app.port = int(server.servers[0].sockets[0].getsockname()[1])
    try:
        yield app
    finally:
        server.should_exit = True
        server.force_exit = True
        async with asyncio.timeout(10):
            await task


BUNDLE_TIME = datetime(2026, 1, 5, 10, 15, tzinfo=UTC)


def bundle_envelope(patient: str) -> Envelope:
    """A ``fhir.out`` envelope: a one-Patient transaction Bundle."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "id": patient, "active": True},
                "request": {"method": "PUT", "url": f"Patient/{patient}"},
            }
        ],
    }
    return Envelope(
        correlation_id=f"MSG-{patient}",
        channel="adt-in",
        received_at=BUNDLE_TIME,
        content_type="application/fhir+json",
        payload=json.dumps(bundle),
    )
