"""A small, fast HL7v2 ER7 tokenizer for the hot path.

Work is done lazily: ``parse`` only finds the delimiters and splits segments;
a segment splits into fields on first access, and repetitions, components,
subcomponents and escape sequences are resolved only for the value asked for.
The raw text is always kept.

Terser paths address one leaf value: ``SEG[(n)]-F[(r)][.C[.S]]``, e.g.
``"PID-3(2).1"`` (second repetition of PID-3, first component) or
``"OBX(3)-5"`` (third OBX). Every index is 1-based; an omitted repetition,
component or subcomponent means the first, as in HAPI's Terser, so
``msg.get("MSH-9")`` is the message code. Absent values read as ``""``.
MSH is numbered as HL7 defines it: MSH-1 is the field separator, MSH-2 the
encoding characters, MSH-3 the sending application.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from pipelines.hl7v2._batch import split_batch
from pipelines.hl7v2._encoding import (
    Delimiters,
    codec_for_charset,
    decode_text,
    delimiters_from_msh,
    sniff_charset,
    unescape,
)
from pipelines.hl7v2.errors import ErrorCode, Hl7ParseError, Hl7PathError

_BOM = "\ufeff"


class Field:
    """One field of a segment, all repetitions included, as raw text."""

    __slots__ = ("_atomic", "_message", "raw")

    def __init__(self, raw: str, message: Message, *, atomic: bool = False) -> None:
        self.raw = raw
        self._message = message
        # MSH-1 and MSH-2 hold the delimiters themselves and never split.
        self._atomic = atomic

    @property
    def repetitions(self) -> list[Field]:
        """Each repetition as a field of its own (an empty field has one)."""
        if self._atomic:
            return [self]
        msg = self._message
        return [Field(r, msg) for r in self.raw.split(msg.delimiters.repetition)]

    def value(self, component: int = 1, subcomponent: int = 1, *, repetition: int = 1) -> str:
        """One leaf value, escape sequences decoded; ``""`` when absent."""
        if self._atomic:
            return self.raw
        return _leaf(self.raw, self._message, repetition, component, subcomponent)

    def __str__(self) -> str:
        return self.raw

    def __repr__(self) -> str:
        return f"Field({self.raw!r})"

    def __bool__(self) -> bool:
        return bool(self.raw)


class Segment:
    """One segment. Fields are split from ``raw`` on first access."""

    __slots__ = ("_fields", "_is_msh", "_message", "name", "raw")

    def __init__(self, raw: str, name: str, message: Message) -> None:
        self.raw = raw
        self.name = name
        self._message = message
        self._is_msh = name == "MSH"
        self._fields: list[str] | None = None

    def _split(self) -> list[str]:
        fields = self._fields = self.raw.split(self._message.delimiters.field)
        return fields

    def __len__(self) -> int:
        """The number of the last field present (MSH counts MSH-1)."""
        return len(self._fields or self._split()) - (0 if self._is_msh else 1)

    def field(self, n: int) -> Field:
        """Field ``n`` (1-based); an absent field is an empty one."""
        if n < 1:
            raise Hl7PathError(f"field numbers start at 1, got {n}")
        fields = self._fields or self._split()
        msg = self._message
        if self._is_msh:
            if n == 1:
                return Field(msg.delimiters.field, msg, atomic=True)
            if n == 2:
                return Field(fields[1] if len(fields) > 1 else "", msg, atomic=True)
            n -= 1
        return Field(fields[n] if n < len(fields) else "", msg)

    def raw_field(self, n: int) -> str:
        """The text of field ``n`` as received (repetitions, escapes and all);
        ``""`` when absent."""
        if self._is_msh and n <= 2:
            return self.field(n).raw
        if n < 1:
            raise Hl7PathError(f"field numbers start at 1, got {n}")
        fields = self._fields or self._split()
        index = n - 1 if self._is_msh else n
        return fields[index] if index < len(fields) else ""

    def value(
        self, n: int, component: int = 1, subcomponent: int = 1, *, repetition: int = 1
    ) -> str:
        """One leaf value of field ``n``, escape sequences decoded; ``""`` when absent."""
        fields = self._fields or self._split()
        if self._is_msh:
            if n <= 2:
                return self.field(n).raw
            n -= 1
        elif n < 1:
            raise Hl7PathError(f"field numbers start at 1, got {n}")
        if n >= len(fields):
            return ""
        return _leaf(fields[n], self._message, repetition, component, subcomponent)

    def __repr__(self) -> str:
        return f"Segment({self.name!r})"


def _leaf(value: str, message: Message, rep: int, comp: int, sub: int) -> str:
    if rep < 1 or comp < 1 or sub < 1:
        raise Hl7PathError(f"indexes start at 1, got ({rep}, {comp}, {sub})")
    d = message.delimiters
    if rep != 1 or d.repetition in value:
        parts = value.split(d.repetition)
        if rep > len(parts):
            return ""
        value = parts[rep - 1]
    if comp != 1 or d.component in value:
        parts = value.split(d.component)
        if comp > len(parts):
            return ""
        value = parts[comp - 1]
    if sub != 1 or d.subcomponent in value:
        parts = value.split(d.subcomponent)
        if sub > len(parts):
            return ""
        value = parts[sub - 1]
    if d.escape in value:
        return unescape(value, d, message.codec)
    return value


class MessageHeader(NamedTuple):
    """Quick access to MSH. Application/facility fields (HD) are the raw field
    text; the others are decoded leaf values."""

    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    timestamp: str
    message_code: str
    trigger_event: str
    message_structure: str
    control_id: str
    processing_id: str
    version: str
    charset: str

    @property
    def message_type(self) -> str:
        """``"ADT^A01"`` (code and trigger event), or the code alone."""
        if self.trigger_event:
            return f"{self.message_code}^{self.trigger_event}"
        return self.message_code


class Message:
    """A parsed HL7v2 message. Build one with ``parse`` or ``parse_bytes``."""

    __slots__ = ("_codec", "_header", "_index", "_segments", "delimiters", "text")

    def __init__(
        self, text: str, delimiters: Delimiters, raw_segments: list[str], codec: str | None
    ) -> None:
        self.text = text
        self.delimiters = delimiters
        self._codec = codec
        self._header: MessageHeader | None = None
        self._index: dict[str, list[Segment]] | None = None
        fs = delimiters.field
        segments = []
        for raw in raw_segments:
            end = raw.find(fs)
            segments.append(Segment(raw, raw if end < 0 else raw[:end], self))
        self._segments = segments

    @property
    def codec(self) -> str:
        """The Python codec of the message's character set (MSH-18), used for
        \\X..\\ escapes and to encode replies."""
        if self._codec is None:
            charset = self._segments[0].field(18).raw.split(self.delimiters.repetition)[0]
            self._codec = codec_for_charset(charset) or "utf-8"
        return self._codec

    @property
    def encoding_characters(self) -> str:
        """MSH-2 exactly as received."""
        return self._segments[0].field(2).raw

    def _by_name(self) -> dict[str, list[Segment]]:
        index: dict[str, list[Segment]] = {}
        for seg in self._segments:
            index.setdefault(seg.name, []).append(seg)
        self._index = index
        return index

    def segments(self, name: str | None = None) -> list[Segment]:
        """All segments in order, or those named ``name``."""
        if name is None:
            return list(self._segments)
        return list((self._index or self._by_name()).get(name, ()))

    def segment(self, name: str, repetition: int = 1) -> Segment | None:
        """The ``repetition``-th segment named ``name`` (1-based), if present."""
        found = (self._index or self._by_name()).get(name)
        if found is None or not 0 < repetition <= len(found):
            return None
        return found[repetition - 1]

    def get(self, path: str) -> str:
        """The leaf value at a terser path such as ``"PID-3(2).1"``; ``""`` when absent."""
        spec = _PATHS.get(path)
        if spec is None:
            spec = _parse_path(path)
        name, seg_rep, field, rep, comp, sub = spec
        found = (self._index or self._by_name()).get(name)
        if found is None or seg_rep > len(found):
            return ""
        seg = found[seg_rep - 1]
        if seg._is_msh and field <= 2:
            return seg.field(field).raw
        fields = seg._fields or seg._split()
        if seg._is_msh:
            field -= 1
        if field >= len(fields):
            return ""
        return _leaf(fields[field], self, rep, comp, sub)

    @property
    def msh(self) -> Segment:
        """The MSH segment (always the first)."""
        return self._segments[0]

    @property
    def header(self) -> MessageHeader:
        """MSH quick access (computed once)."""
        if self._header is None:
            raw = self._segments[0].raw_field
            kind = raw(9)
            self._header = MessageHeader(
                sending_application=raw(3),
                sending_facility=raw(4),
                receiving_application=raw(5),
                receiving_facility=raw(6),
                timestamp=_leaf(raw(7), self, 1, 1, 1),
                message_code=_leaf(kind, self, 1, 1, 1),
                trigger_event=_leaf(kind, self, 1, 2, 1),
                message_structure=_leaf(kind, self, 1, 3, 1),
                control_id=_leaf(raw(10), self, 1, 1, 1),
                processing_id=_leaf(raw(11), self, 1, 1, 1),
                version=_leaf(raw(12), self, 1, 1, 1),
                charset=_leaf(raw(18), self, 1, 1, 1),
            )
        return self._header

    def __iter__(self) -> Iterator[Segment]:
        return iter(self._segments)

    def __len__(self) -> int:
        return len(self._segments)

    def __repr__(self) -> str:
        return f"Message({len(self._segments)} segments)"


# Terser paths are few and reused: parse each once (bounded, in case of misuse).
_PATHS: dict[str, tuple[str, int, int, int, int, int]] = {}
_PATH_RE = re.compile(
    r"/?([A-Z][A-Z0-9]{2})(?:\((\d+)\))?-(\d+)(?:\((\d+)\))?(?:[.-](\d+)(?:[.-](\d+))?)?"
)


def _parse_path(path: str) -> tuple[str, int, int, int, int, int]:
    match = _PATH_RE.fullmatch(path)
    if match is None:
        raise Hl7PathError(f"not a terser path: {path!r} (expected e.g. 'PID-3(2).1')")
    name, seg_rep, field, rep, comp, sub = match.groups()
    spec = (
        name,
        int(seg_rep or 1),
        int(field),
        int(rep or 1),
        int(comp or 1),
        int(sub or 1),
    )
    if 0 in spec[1:]:
        raise Hl7PathError(f"terser indexes start at 1: {path!r}")
    if len(_PATHS) >= 4096:
        _PATHS.clear()
    _PATHS[path] = spec
    return spec


_DELIMITERS: dict[str, Delimiters] = {}


def parse(text: str) -> Message:
    """Parse ER7 text; segments may end with \\r, \\n or \\r\\n.

    Raises ``Hl7ParseError`` (and nothing else) when there is no MSH segment
    first or its delimiters are unusable. The rest is checked lazily or by
    ``validate_for_intake``.
    """
    return _parse(text, None)


def parse_bytes(data: bytes) -> Message:
    """Parse bytes, decoded per MSH-18: ASCII (the default, decoded defensively as
    UTF-8 or else Latin-1), UNICODE UTF-8, 8859/n, the other table 0211 sets and
    their common aliases ("UTF-8", "ISO-8859-1", ...). A leading byte-order mark
    is ignored. Raises ``Hl7ParseError`` as ``parse`` does, and when the bytes do
    not fit the declared character set."""
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    charset = sniff_charset(data)
    text, codec = decode_text(data, charset)
    return _parse(text, codec)


def _parse(text: str, codec: str | None) -> Message:
    if text[:1] == _BOM:
        text = text[1:]
    normalised = text.replace("\r\n", "\r").replace("\n", "\r") if "\n" in text else text
    if normalised[:3] != "MSH":
        normalised = normalised.lstrip("\r\t ")
        if not normalised:
            raise Hl7ParseError("empty message", code=ErrorCode.SEGMENT_SEQUENCE_ERROR)
        if normalised[:3] != "MSH":
            raise Hl7ParseError(
                "message does not start with an MSH segment",
                code=ErrorCode.SEGMENT_SEQUENCE_ERROR,
                location="MSH",
            )
    fs = normalised[3:4]
    if fs in ("", "\r"):
        raise Hl7ParseError(
            "MSH has no field separator", code=ErrorCode.REQUIRED_FIELD_MISSING, location="MSH-1"
        )
    seg_end = normalised.find("\r")
    if seg_end < 0:
        seg_end = len(normalised)
    enc_end = normalised.find(fs, 4, seg_end)
    encoding = normalised[4 : seg_end if enc_end < 0 else enc_end]
    delimiters = _DELIMITERS.get(fs + encoding)
    if delimiters is None:
        if not encoding:
            raise Hl7ParseError(
                "MSH has no encoding characters",
                code=ErrorCode.REQUIRED_FIELD_MISSING,
                location="MSH-2",
            )
        delimiters = delimiters_from_msh(fs, encoding)
        if len(_DELIMITERS) < 256:
            _DELIMITERS[fs + encoding] = delimiters
    raw_segments = [s for s in normalised.split("\r") if s and not s.isspace()]
    return Message(text, delimiters, raw_segments, codec)


__all__ = [
    "Delimiters",
    "Field",
    "Message",
    "MessageHeader",
    "Segment",
    "parse",
    "parse_bytes",
    "split_batch",
]
