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

# Fills in encoding characters a sender left off MSH-2 (some omit the trailing
# subcomponent separator); a default that clashes with a declared one is an error.
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


# MSH-18 values (HL7 table 0211) and the aliases senders use instead, compacted
# (upper case, no spaces, hyphens, underscores or slashes) to Python codecs.
# ``None`` means "ASCII declared": decoded defensively (see decode_text).
_CHARSETS: dict[str, str | None] = {
    "": None,
    "ASCII": None,
    "USASCII": None,
    "ISOIR6": None,
    "UNICODEUTF8": "utf-8",
    "UTF8": "utf-8",
    # Table 0211's bare "UNICODE" (v2.3-2.4): the bytes were found to be
    # ASCII-compatible (MSH read as ASCII), and UTF-8 is the one such Unicode form.
    "UNICODE": "utf-8",
    "LATIN1": "latin-1",
    "ISOIR100": "latin-1",
    "ISOIR101": "iso8859-2",
    "ISOIR109": "iso8859-3",
    "ISOIR110": "iso8859-4",
    "ISOIR144": "iso8859-5",
    "ISOIR127": "iso8859-6",
    "ISOIR126": "iso8859-7",
    "ISOIR138": "iso8859-8",
    "ISOIR148": "iso8859-9",
    "ISOIR203": "iso8859-15",
    "WINDOWS1252": "cp1252",
    "CP1252": "cp1252",
    "GB18030": "gb18030",
    "GB180302000": "gb18030",
    "KSX1001": "euc_kr",
    "BIG5": "big5",
    "ISOIR87": "iso2022_jp",
}
# "8859/1" as table 0211 writes it, and "ISO-8859-1", "ISO_8859-1", "iso8859/1"...
_CHARSETS.update(
    {
        f"{prefix}8859{part}": "latin-1" if part == 1 else f"iso8859-{part}"
        for part in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)
        for prefix in ("", "ISO")
    }
)

_NOT_IN_NAME = str.maketrans("", "", " \t-_/")


def codec_for_charset(charset: str) -> str | None:
    """The Python codec for an MSH-18 value (table 0211 or a common alias such as
    ``"UTF-8"`` or ``"ISO-8859-1"``); ``None`` for ASCII, unknown or empty
    (decode defensively)."""
    return _CHARSETS.get(charset.upper().translate(_NOT_IN_NAME))


def sniff_charset(data: bytes) -> str:
    """MSH-18 read from the raw bytes, before decoding (MSH itself is ASCII);
    ``""`` when there is none. Leading blank lines are skipped."""
    data = data.lstrip(b"\r\n\t ")
    if data[:3] != b"MSH" or len(data) < 5:
        return ""
    end = len(data)
    for terminator in (b"\r", b"\n"):
        found = data.find(terminator)
        if 0 <= found < end:
            end = found
    fields = data[:end].split(data[3:4])
    if len(fields) < 18:
        return ""
    repetition = fields[1][1:2] or b"~"
    return fields[17].split(repetition)[0].decode("latin-1")


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
    "sniff_charset",
    "unescape",
]
