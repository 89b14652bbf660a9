"""MLLP framing: <VT> payload <FS><CR>.

The decoder is incremental: feed it whatever a read returned and it hands back
the frames completed so far, however the bytes were split across reads.
"""

from __future__ import annotations

from dataclasses import dataclass

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
_VT = 0x0B
_FS = 0x1C
_CR = 0x0D


@dataclass(frozen=True, slots=True)
class OversizeFrame:
    """A frame refused for exceeding ``max_frame_bytes``: its full payload size
    and its first bytes (enough to read MSH and answer with its MSH-10)."""

    size: int
    head: bytes


def encode_frame(payload: bytes) -> bytes:
    """Wrap ``payload`` in an MLLP block."""
    return START_BLOCK + payload + END_BLOCK


class MllpDecoder:
    """Incremental MLLP decoder.

    Bytes outside a block are discarded (and counted). A start byte inside an
    unfinished block abandons it and starts over, which resynchronises after a
    sender restarts mid-message. A block larger than ``max_frame_bytes`` is not
    buffered: the decoder keeps its first ``head_bytes``, skips the rest and
    reports an ``OversizeFrame`` when the block ends. An FS not followed by CR
    is payload, as MLLP requires both end bytes.
    """

    __slots__ = (
        "_buf",
        "_discarded",
        "_fs_pending",
        "_head",
        "_head_bytes",
        "_in_frame",
        "_max",
        "_oversize",
        "_size",
    )

    def __init__(self, max_frame_bytes: int = 1_048_576, *, head_bytes: int = 4096) -> None:
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be positive")
        self._max = max_frame_bytes
        self._head_bytes = min(head_bytes, max_frame_bytes)
        self._buf = bytearray()
        self._head = b""
        self._in_frame = False
        self._fs_pending = False
        self._oversize = False
        self._size = 0
        self._discarded = 0

    @property
    def discarded_bytes(self) -> int:
        """Bytes dropped so far: outside any block, or in abandoned blocks."""
        return self._discarded

    @property
    def in_frame(self) -> bool:
        """True while a block has started and not yet ended."""
        return self._in_frame

    def feed(self, data: bytes) -> list[bytes | OversizeFrame]:
        """Consume ``data``; return the frames (payloads) it completed, in order."""
        out: list[bytes | OversizeFrame] = []
        view = memoryview(data)
        pos = 0
        end = len(data)
        while pos < end:
            if not self._in_frame:
                start = data.find(START_BLOCK, pos)
                if start < 0:
                    self._discarded += end - pos
                    break
                self._discarded += start - pos
                self._begin()
                pos = start + 1
                continue
            if self._fs_pending:
                self._fs_pending = False
                if data[pos] == _CR:
                    pos += 1
                    out.append(self._finish())
                else:
                    self._take(b"\x1c")
                continue
            fs = data.find(b"\x1c", pos)
            restart = data.find(START_BLOCK, pos, end if fs < 0 else fs)
            if restart >= 0:
                self._discarded += self._size + restart - pos
                self._begin()
                pos = restart + 1
                continue
            if fs < 0:
                self._take(view[pos:])
                break
            if not self._size and fs + 1 < end and data[fs + 1] == _CR and fs - pos <= self._max:
                # A whole block inside one read: slice it, skip the buffer.
                self._in_frame = False
                out.append(data[pos:fs])
                pos = fs + 2
                continue
            self._take(view[pos:fs])
            if fs + 1 == end:
                self._fs_pending = True
                break
            if data[fs + 1] == _CR:
                pos = fs + 2
                out.append(self._finish())
            else:
                self._take(b"\x1c")
                pos = fs + 1
        return out

    def _begin(self) -> None:
        self._in_frame = True
        self._fs_pending = False
        self._oversize = False
        self._size = 0
        self._head = b""
        self._buf = bytearray()

    def _take(self, chunk: bytes | memoryview) -> None:
        self._size += len(chunk)
        if self._oversize:
            missing = self._head_bytes - len(self._head)
            if missing > 0:
                self._head += bytes(chunk[:missing])
            return
        if self._size > self._max:
            # Refuse before buffering: a huge block must not cost huge memory.
            self._oversize = True
            self._head = bytes(self._buf[: self._head_bytes])
            missing = self._head_bytes - len(self._head)
            if missing > 0:
                self._head += bytes(chunk[:missing])
            self._buf = bytearray()
            return
        self._buf += chunk

    def _finish(self) -> bytes | OversizeFrame:
        self._in_frame = False
        if self._oversize:
            self._oversize = False
            head, self._head = self._head, b""
            return OversizeFrame(size=self._size, head=head)
        payload = bytes(self._buf)
        self._buf = bytearray()
        return payload


__all__ = ["END_BLOCK", "START_BLOCK", "MllpDecoder", "OversizeFrame", "encode_frame"]
