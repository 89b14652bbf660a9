"""``wardstream up`` with TLS on MLLP and HTTP, as a real child process: ACKs
over TLS only, mutual TLS refusing clients without a certificate from the
configured CA, and the API over HTTPS with its bearer token."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.mllp import MllpSender, MllpSendError
from engine.tls import client_context
from tests.engine_process import EngineProcess
from tests.hl7_factory import adt
from tests.integration.tls.tls_certs import TlsFiles
from tests.ports import free_port

TOKEN = "tls-test-token"
WAIT_S = 15.0


@dataclass
class HttpsEngineProcess(EngineProcess):
    """An engine whose API is served over HTTPS, checked against ``ca_file``."""

    ca_file: Path | None = None
    mtls_port: int = field(default_factory=free_port)
    verify: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        self.verify = client_context(ca_file=self.ca_file)

    @property
    def http(self) -> str:
        return f"https://127.0.0.1:{self.http_port}"

    def get(self, path: str, *, token: str | None = None, timeout: float = 5.0) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.get(f"{self.http}{path}", headers=headers, timeout=timeout, verify=self.verify)


@pytest.fixture(scope="module")
def engine(
    tls_files: TlsFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HttpsEngineProcess]:
    """One engine: channel adt-tls (TLS), adt-mtls (mutual TLS), API over HTTPS with a token."""
    server = {"cert_file": str(tls_files.server_cert), "key_file": str(tls_files.server_key)}
    proc = HttpsEngineProcess(tmp_path_factory.mktemp("engine"), ca_file=tls_files.ca_cert)
    proc.extra = {
        "http": {"host": "127.0.0.1", "port": proc.http_port, "token": TOKEN, "tls": server},
        "channels": [
            {
                "name": "adt-tls",
                "source": {"type": "mllp", "port": proc.mllp_port, "tls": server},
            },
            {
                "name": "adt-mtls",
                "source": {
                    "type": "mllp",
                    "port": proc.mtls_port,
                    "tls": {
                        **server,
                        "ca_file": str(tls_files.ca_cert),
                        "require_client_cert": True,
                    },
                },
            },
        ],
    }
    proc.start()
    try:
        yield proc
    finally:
        assert proc.terminate() == 0, proc.log_tail()


def messages_in(engine: HttpsEngineProcess, channel: str) -> int:
    """Frames the channel's listener has read (a refused handshake reads none)."""
    stats = engine.get("/api/stats", token=TOKEN).json()
    return int(stats["listeners"][channel]["messages"])


def sender(port: int, context: ssl.SSLContext | None, **options: Any) -> MllpSender:
    options.setdefault("retries", 0)
    return MllpSender(
        "127.0.0.1", port, ssl=context, connect_timeout=5.0, ack_timeout=5.0, **options
    )


async def send(port: int, context: ssl.SSLContext | None, message: str) -> str:
    async with sender(port, context) as client:
        async with asyncio.timeout(WAIT_S):
            return (await client.send(message)).code


async def test_tls_sender_gets_aa(engine: HttpsEngineProcess, tls_files: TlsFiles) -> None:
    context = client_context(ca_file=tls_files.ca_cert)
    assert await send(engine.mllp_port, context, adt("A01", "TLS-1", "TLSP1")) == "AA"


async def test_plain_tcp_to_the_tls_port_gets_no_ack(
    engine: HttpsEngineProcess, tls_files: TlsFiles
) -> None:
    before = messages_in(engine, "adt-tls")
    with pytest.raises(MllpSendError):
        await send(engine.mllp_port, None, adt("A01", "PLAIN-1", "PLAINP1"))
    assert messages_in(engine, "adt-tls") == before
    # The refused connection left the listener serving.
    context = client_context(ca_file=tls_files.ca_cert)
    assert await send(engine.mllp_port, context, adt("A01", "TLS-2", "TLSP2")) == "AA"


async def test_sender_refuses_a_server_its_ca_did_not_sign(
    engine: HttpsEngineProcess, tls_files: TlsFiles
) -> None:
    context = client_context(ca_file=tls_files.other_ca_cert)
    async with sender(engine.mllp_port, context, retries=3, backoff_s=5.0) as client:
        async with asyncio.timeout(WAIT_S):
            with pytest.raises(MllpSendError, match="not trusted") as caught:
                await client.send(adt("A01", "UNTRUSTED-1", "UP1"))
    assert caught.value.attempts == 1  # a bad certificate is not retried


async def test_sender_checks_the_server_name(
    engine: HttpsEngineProcess, tls_files: TlsFiles
) -> None:
    context = client_context(ca_file=tls_files.ca_cert)
    client = MllpSender(
        "127.0.0.1", engine.mllp_port, ssl=context, server_hostname="ehr.example", retries=0
    )
    async with client:
        async with asyncio.timeout(WAIT_S):
            with pytest.raises(MllpSendError, match="not trusted"):
                await client.send(adt("A01", "NAME-1", "NP1"))


async def test_mutual_tls_refuses_a_sender_without_a_client_certificate(
    engine: HttpsEngineProcess, tls_files: TlsFiles
) -> None:
    context = client_context(ca_file=tls_files.ca_cert)
    before = messages_in(engine, "adt-mtls")
    with pytest.raises(MllpSendError):
        await send(engine.mtls_port, context, adt("A01", "MTLS-0", "MP0"))
    assert messages_in(engine, "adt-mtls") == before


async def test_mutual_tls_refuses_a_certificate_from_another_ca(
    engine: HttpsEngineProcess, tls_files: TlsFiles
) -> None:
    context = client_context(
        ca_file=tls_files.ca_cert,
        cert_file=tls_files.other_client_cert,
        key_file=tls_files.other_client_key,
    )
    before = messages_in(engine, "adt-mtls")
    with pytest.raises(MllpSendError):
        await send(engine.mtls_port, context, adt("A01", "MTLS-X", "MPX"))
    assert messages_in(engine, "adt-mtls") == before


async def test_mutual_tls_accepts_a_sender_with_a_client_certificate(
    engine: HttpsEngineProcess, tls_files: TlsFiles
) -> None:
    context = client_context(
        ca_file=tls_files.ca_cert, cert_file=tls_files.client_cert, key_file=tls_files.client_key
    )
    before = messages_in(engine, "adt-mtls")
    assert await send(engine.mtls_port, context, adt("A01", "MTLS-1", "MP1")) == "AA"
    assert messages_in(engine, "adt-mtls") == before + 1


def test_api_over_https_requires_the_token(engine: HttpsEngineProcess) -> None:
    assert engine.get("/healthz").json() == {"status": "ok"}
    census = engine.get("/api/census", token=TOKEN)
    assert census.status_code == 200
    assert "wards" in census.json()
    assert engine.get("/api/census").status_code == 401
    assert engine.get("/api/census", token="wrong").status_code == 401


def test_plain_http_to_the_https_port_is_refused(engine: HttpsEngineProcess) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{engine.http_port}/healthz", timeout=5.0)


def test_https_client_without_the_ca_is_refused(engine: HttpsEngineProcess) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{engine.http}/healthz", timeout=5.0)


async def test_admission_over_tls_reaches_the_census_over_https(
    engine: HttpsEngineProcess, tls_files: TlsFiles
) -> None:
    context = client_context(ca_file=tls_files.ca_cert)
    message = adt("A01", "TLS-CENSUS", "TLSCP", ward="TLSWARD", bed="B7")
    assert await send(engine.mllp_port, context, message) == "AA"
    deadline = time.monotonic() + WAIT_S
    wards: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        wards = (await asyncio.to_thread(engine.get, "/api/census", token=TOKEN)).json()["wards"]
        if any(w["ward"] == "TLSWARD" for w in wards):
            break
        await asyncio.sleep(0.1)
    assert [w["occupied"] for w in wards if w["ward"] == "TLSWARD"] == [1]
