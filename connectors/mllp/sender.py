"""The MLLP sender: send one message, wait for its ACK, resend on failure."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from ssl import SSLCertVerificationError, SSLContext
from types import TracebackType

import structlog

from connectors.mllp.framing import MllpDecoder, OversizeFrame, encode_frame
from pipelines.hl7v2 import Ack, Hl7ParseError, parse, parse_ack, parse_bytes
from pipelines.hl7v2._encoding import codec_for_charset


class MllpSendError(Exception):
    """No valid ACK after every attempt; ``attempts`` made, ``__cause__`` the last failure."""

    def __init__(self, reason: str, *, attempts: int) -> None:
        super().__init__(reason)
        self.attempts = attempts


class _BadReply(Exception):
    """The peer answered with something that is not the ACK of what was sent."""


class MllpSender:
    """One MLLP client connection, opened on first use.

    ``send`` writes one message and returns its ACK (AA, AE or AR alike). On a
    connection failure, an ACK timeout or a reply that is not the ACK of the
    message sent (MSA-2 must echo its MSH-10), it reconnects and resends the
    same message, up to ``retries`` more times with exponential backoff from
    ``backoff_s``, then raises ``MllpSendError``. Sends on one sender are
    serialised; use several senders for concurrency.

    With ``ssl`` (a client context, e.g. ``engine.tls.client_context``) the
    connection is TLS; the server's certificate must match ``server_hostname``
    (default: ``host``). A certificate that fails verification is not retried.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float = 5.0,
        ack_timeout: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.2,
        max_ack_bytes: int = 1_048_576,
        ssl: SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if server_hostname is not None and ssl is None:
            raise ValueError("server_hostname is only meaningful with ssl")
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.ack_timeout = ack_timeout
        self.retries = retries
        self.backoff_s = backoff_s
        self._max_ack_bytes = max_ack_bytes
        self.ssl = ssl
        self.server_hostname = server_hostname
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._decoder = MllpDecoder(max_ack_bytes)
        self._pending: deque[bytes | OversizeFrame] = deque()
        self._lock = asyncio.Lock()
        self._log = structlog.get_logger(peer=f"{host}:{port}")

    async def __aenter__(self) -> MllpSender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(self, message: str | bytes) -> Ack:
        """Send ``message`` and return its ACK.

        Bytes are sent as they are. Text has its line ends turned into CR and is
        encoded per its MSH-18 (UTF-8 when ASCII or none is declared); a
        character the declared set cannot hold raises ``UnicodeEncodeError``.
        """
        payload = encode_message(message) if isinstance(message, str) else message
        expected = _control_id(payload)
        async with self._lock:
            attempts = 1 + self.retries
            for attempt in range(1, attempts + 1):
                try:
                    return await self._attempt(payload, expected)
                except asyncio.CancelledError:
                    # A reply may still come for the abandoned send: never reuse the socket.
                    self._abandon()
                    raise
                except SSLCertVerificationError as exc:
                    # The same certificate will fail the same way: retrying only delays.
                    await self._disconnect()
                    raise MllpSendError(
                        f"TLS certificate of {self.host}:{self.port} not trusted: "
                        f"{exc.verify_message or exc}",
                        attempts=attempt,
                    ) from exc
                except (OSError, TimeoutError, _BadReply) as exc:
                    await self._disconnect()
                    if attempt == attempts:
                        raise MllpSendError(
                            f"no ACK from {self.host}:{self.port} after {attempts} attempts: "
                            f"{type(exc).__name__}: {exc}",
                            attempts=attempts,
                        ) from exc
                    self._log.info("mllp.send.retry", attempt=attempt, error=type(exc).__name__)
                    await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, payload: bytes, expected: str | None) -> Ack:
        if self._writer is None:
            async with asyncio.timeout(self.connect_timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl, server_hostname=self.server_hostname
                )
            self._decoder = MllpDecoder(self._max_ack_bytes)
        writer = self._writer
        # Anything unsolicited that arrived earlier is not this message's ACK.
        self._pending.clear()
        writer.write(encode_frame(payload))
        async with asyncio.timeout(self.ack_timeout):
            await writer.drain()
            raw = await self._read_frame()
        try:
            ack = parse_ack(raw)
        except Hl7ParseError as exc:
            raise _BadReply(f"reply is not an ACK: {exc.reason}") from None
        if expected is not None and ack.control_id != expected:
            raise _BadReply("ACK MSA-2 does not match the MSH-10 sent")
        return ack

    async def _read_frame(self) -> bytes:
        reader = self._reader
        if reader is None:
            raise ConnectionResetError("not connected")
        while not self._pending:
            data = await reader.read(65536)
            if not data:
                raise ConnectionResetError("connection closed before the ACK arrived")
            self._pending.extend(self._decoder.feed(data))
        frame = self._pending.popleft()
        if isinstance(frame, OversizeFrame):
            raise _BadReply(f"reply of {frame.size} bytes is over the limit")
        return frame

    def _abandon(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        self._pending.clear()
        if writer is not None:
            writer.close()

    async def _disconnect(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        self._pending.clear()
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def close(self) -> None:
        """Close the connection (a later ``send`` reconnects)."""
        async with self._lock:
            await self._disconnect()


def encode_message(text: str) -> bytes:
    """ER7 text to bytes for the wire: CR segment ends, encoded per MSH-18."""
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    try:
        charset = parse(text).header.charset
    except Hl7ParseError:
        charset = ""
    return text.encode(codec_for_charset(charset) or "utf-8")


def _control_id(payload: bytes) -> str | None:
    try:
        return parse_bytes(payload).header.control_id or None
    except Hl7ParseError:
        return None


__all__ = ["MllpSendError", "MllpSender", "encode_message"]
