"""Delimiters, escape sequences and character sets of HL7v2 ER7 text."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.hl7v2.errors import ErrorCode, Hl7ParseError


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The separators a message declares in MSH-1 and MSH-2.

    ``truncation`` is the optional fifth encoding character of v2.7+ (``#``).
    """

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str | None = None

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as it is written: component, repetition, escape, subcomponent
        and, when declared, truncation."""
        chars = self.component + self.repetition + self.escape + self.subcomponent
        return chars + (self.truncation or "")


DEFAULT_DELIMITERS = Delimiters()

# Used for a missing encoding character only when it clashes with no declared one.
_DEFAULT_ENCODING = "^~\\&"


def delimiters_from_msh(field: str, encoding: str) -> Delimiters:
    """Build and check the delimiters from MSH-1 and the raw MSH-2 text.

    Raises ``Hl7ParseError`` when they are missing, repeated, alphanumeric,
    whitespace, or when MSH-2 is longer than the five characters HL7 defines.
    """
    if len(encoding) > 5:
        raise Hl7ParseError(
            f"MSH-2 has {len(encoding)} encoding characters, at most 5 are defined",
            code=ErrorCode.DATA_TYPE_ERROR,
            location="MSH-2",
        )
    chars = list(encoding[:4])
    for i in range(len(chars), 4):
        # Some senders omit the trailing subcomponent (or more) characters.
        chars.append(_DEFAULT_ENCODING[i])
    truncation = encoding[4] if len(encoding) == 5 else None
    every = [field, *chars] + ([truncation] if truncation else [])
    for i, char in enumerate(every):
        location = "MSH-1" if i == 0 else "MSH-2"
        if char.isalnum() or char.isspace() or not char.isprintable():
            raise Hl7ParseError(
                f"delimiter {char!r} is not allowed (alphanumeric, whitespace or control)",
                code=ErrorCode.DATA_TYPE_ERROR,
                location=location,
            )
    if len(set(every)) != len(every):
        raise Hl7ParseError(
            "delimiters are not distinct", code=ErrorCode.DATA_TYPE_ERROR, location="MSH-2"
        )
    return Delimiters(field, chars[0], chars[1], chars[2], chars[3], truncation)


def unescape(value: str, delimiters: Delimiters, codec: str) -> str:
    """Decode the escape sequences of one leaf value.

    Known sequences are \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\ (truncation), \\Xhh..\\
    (bytes in the message's character set), \\.br\\ (a line break) and the
    highlighting marks \\H\\ \\N\\ (dropped). Anything else, including an
    unterminated sequence, is kept verbatim.
    """
    esc = delimiters.escape
    parts = value.split(esc)
    count = len(parts)
    if count < 3:
        return value
    out = [parts[0]]
    i = 1
    while i + 1 < count:
        out.append(_decode_sequence(parts[i], delimiters, codec))
        out.append(parts[i + 1])
        i += 2
    if i < count:
        out.append(esc + parts[i])
    return "".join(out)


def _decode_sequence(seq: str, d: Delimiters, codec: str) -> str:
    if len(seq) == 1:
        found = {
            "F": d.field,
            "S": d.component,
            "T": d.subcomponent,
            "R": d.repetition,
            "E": d.escape,
            "H": "",
            "N": "",
        }.get(seq)
        if found is not None:
            return found
        if seq == "P" and d.truncation:
            return d.truncation
    elif seq == ".br":
        return "\n"
    elif seq[:1] == "X" and len(seq) % 2 == 1:
        hexdigits = seq[1:]
        if all(c in "0123456789abcdefABCDEF" for c in hexdigits):
            return bytes.fromhex(hexdigits).decode(codec, errors="replace")
    return d.escape + seq + d.escape


def escape(text: str, delimiters: Delimiters) -> str:
    """Escape ``text`` so it can stand as one leaf value; line breaks become \\.br\\."""
    esc = delimiters.escape
    if text.isalnum():
        return text  # the common case: ids and codes need no escaping
    out = text.replace(esc, f"{esc}E{esc}")
    for char, name in (
        (delimiters.field, "F"),
        (delimiters.component, "S"),
        (delimiters.subcomponent, "T"),
        (delimiters.repetition, "R"),
    ):
        out = out.replace(char, f"{esc}{name}{esc}")
    if delimiters.truncation:
        out = out.replace(delimiters.truncation, f"{esc}P{esc}")
    return out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", f"{esc}.br{esc}")


# MSH-18 values (HL7 table 0211, plus the common non-standard "UTF-8") to Python
# codecs. ``None`` means "ASCII declared": decoded defensively (see decode_text).
_CHARSETS: dict[str, str | None] = {
    "": None,
    "ASCII": None,
    "ISO IR6": None,
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "8859/1": "latin-1",
    "ISO IR100": "latin-1",
    "8859/2": "iso8859-2",
    "ISO IR101": "iso8859-2",
    "8859/3": "iso8859-3",
    "ISO IR109": "iso8859-3",
    "8859/4": "iso8859-4",
    "ISO IR110": "iso8859-4",
    "8859/5": "iso8859-5",
    "ISO IR144": "iso8859-5",
    "8859/6": "iso8859-6",
    "ISO IR127": "iso8859-6",
    "8859/7": "iso8859-7",
    "ISO IR126": "iso8859-7",
    "8859/8": "iso8859-8",
    "ISO IR138": "iso8859-8",
    "8859/9": "iso8859-9",
    "ISO IR148": "iso8859-9",
    "8859/15": "iso8859-15",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "BIG-5": "big5",
    "ISO IR87": "iso2022_jp",
}


def codec_for_charset(charset: str) -> str | None:
    """The Python codec for an MSH-18 value; ``None`` for ASCII, unknown or empty
    (decode defensively)."""
    return _CHARSETS.get(charset.strip().upper())


def decode_text(data: bytes, charset: str) -> tuple[str, str]:
    """Decode a message body per its MSH-18 value; returns (text, codec used).

    ASCII, empty or unknown character sets are decoded defensively: UTF-8 when
    the bytes are valid UTF-8 (ASCII is a subset), else Latin-1, which accepts
    any byte. A declared character set the bytes do not fit is an error.
    """
    codec = codec_for_charset(charset)
    if codec is None:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            return data.decode("latin-1"), "latin-1"
    try:
        return data.decode(codec), codec
    except UnicodeDecodeError as exc:
        raise Hl7ParseError(
            f"bytes are not valid {charset.strip()} (offset {exc.start})",
            code=ErrorCode.DATA_TYPE_ERROR,
            location="MSH-18",
        ) from None


__all__ = [
    "DEFAULT_DELIMITERS",
    "Delimiters",
    "codec_for_charset",
    "decode_text",
    "delimiters_from_msh",
    "escape",
    "unescape",
]
