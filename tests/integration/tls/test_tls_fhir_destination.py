"""The FHIR REST destination against a real HTTPS server whose certificate
comes from a private CA: delivered with ``ca_file``, refused without it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
import uvicorn

from connectors.fhir.writer import FhirDestinationUnavailable, FhirRestWriter
from engine.tls import server_context
from tests.integration.fhir.fhir_test_server import ScriptedServer, bundle_envelope
from tests.integration.tls.tls_certs import TlsFiles

NOW = datetime(2026, 1, 5, 10, 15, tzinfo=UTC)
WAIT_S = 10.0


class _HttpsServer(uvicorn.Server):
    """Leaves the test process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_https(app: ScriptedServer, context: ssl.SSLContext) -> AsyncIterator[str]:
    """Run ``app`` over HTTPS on a free loopback port; yields its https base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_config=None,
        lifespan="off",
        access_log=False,
        ssl_context_factory=lambda _config, _default: context,
    )
    server = _HttpsServer(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(WAIT_S):
        while not server.started:
            if task.done():
                await task
            await asyncio.sleep(0.01)
    port = int(server.servers[0].sockets[0].getsockname()[1])
    try:
        yield f"https://127.0.0.1:{port}/fhir"
    finally:
        server.should_exit = True
        server.force_exit = True
        async with asyncio.timeout(WAIT_S):
            await task


@pytest.fixture
def https_context(tls_files: TlsFiles) -> ssl.SSLContext:
    return server_context(tls_files.server_cert, tls_files.server_key)


async def test_delivers_to_a_server_signed_by_the_configured_ca(
    tls_files: TlsFiles, https_context: ssl.SSLContext
) -> None:
    app = ScriptedServer()
    async with serve_https(app, https_context) as url:
        writer = FhirRestWriter(url, ca_file=tls_files.ca_cert, max_retries=0, clock=lambda: NOW)
        try:
            async with asyncio.timeout(WAIT_S):
                await writer.write([bundle_envelope("p1")])
        finally:
            await writer.close()
    assert writer.stats.sent == 1
    assert [(r.method, r.path) for r in app.received] == [("POST", "/fhir")]


async def test_refuses_a_server_the_trust_store_does_not_know(
    https_context: ssl.SSLContext,
) -> None:
    app = ScriptedServer()
    async with serve_https(app, https_context) as url:
        writer = FhirRestWriter(url, max_retries=0, clock=lambda: NOW)
        try:
            async with asyncio.timeout(WAIT_S):
                with pytest.raises(FhirDestinationUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
                    await writer.write([bundle_envelope("p1")])
        finally:
            await writer.close()
    assert app.received == []
    assert writer.stats.sent == 0
