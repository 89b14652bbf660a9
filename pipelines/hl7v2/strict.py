"""Strict validation of an HL7v2 message against the structures of its declared
version, with hl7apy's reference definitions (HL7 2.1 to 2.8.2).

This is the opt-in ``channels[].strict`` check. It is slow (hl7apy parses each
segment into a tree: milliseconds a message), so it never runs on the default
ingest path; the MLLP listener runs it in a worker thread.

What is checked, each problem reported with a table 0357 code and a location:

- the segment sequence against the message structure (MSH-9.3, or the one the
  trigger event implies): required segments and groups present, nothing out of
  place, unknown or repeated too often (100); Z-segments are allowed anywhere;
- in every segment, required fields present (101), fields and components
  defined, repeated within bounds and of the declared data type (102), and
  every primitive value valid for its type (102) and within its length (104),
  as hl7apy's ``VALIDATION_LEVEL.STRICT`` parser would have it.

hl7apy's own ``Validator`` stops at the first problem and reports it as free
text, and its tolerant parser drops segments it does not know; the walk here
follows the same rules over the same reference structures but collects every
problem with its place. Texts name places and types, never values: they end up
in ACKs and dead letters, and a value can be a patient's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hl7apy import SUPPORTED_LIBRARIES, load_library, load_reference
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import is_base_datatype
from hl7apy.exceptions import ChildNotFound, HL7apyException, InvalidDataType, MaxLengthReached
from hl7apy.factories import datatype_factory
from hl7apy.parser import parse_segment

from pipelines.hl7v2.ack import AckError
from pipelines.hl7v2.errors import ErrorCode, Hl7ParseError
from pipelines.hl7v2.tokenizer import Delimiters, Message, parse

MAX_ERRORS = 25
"""Problems reported at most; a badly broken message would otherwise flood the ACK."""

# HL7 table 0354 for ADT (v2.3 on): trigger events that share another event's
# message structure. hl7apy knows the structures, not this mapping.
_ADT_STRUCTURES: dict[str, str] = {
    **dict.fromkeys(("A01", "A04", "A08", "A13"), "ADT_A01"),
    **dict.fromkeys(("A05", "A14", "A28", "A31"), "ADT_A05"),
    **dict.fromkeys(("A06", "A07"), "ADT_A06"),
    **dict.fromkeys(("A09", "A10", "A11", "A15"), "ADT_A09"),
    **dict.fromkeys(("A21", "A22", "A23", "A25", "A26", "A27", "A29", "A32", "A33"), "ADT_A21"),
    **dict.fromkeys(("A30", "A34", "A35", "A36", "A46", "A47", "A48", "A49"), "ADT_A30"),
    **dict.fromkeys(("A39", "A40", "A41", "A42"), "ADT_A39"),
    **dict.fromkeys(("A43", "A44"), "ADT_A43"),
    **dict.fromkeys(("A50", "A51"), "ADT_A50"),
    **dict.fromkeys(("A52", "A53"), "ADT_A52"),
    **dict.fromkeys(("A54", "A55"), "ADT_A54"),
    **dict.fromkeys(("A61", "A62"), "ADT_A61"),
}

Reference = Any
"""An hl7apy reference structure: ``('sequence', children, ...)`` or ``('leaf', ...)``."""


@dataclass(frozen=True, slots=True)
class StrictError:
    """One problem found by strict validation: a table 0357 ``code``, where it
    is (terser ``location`` such as ``"PID-7.1"``, ``None`` for the message as
    a whole) and a ``text`` that names no value."""

    code: ErrorCode
    location: str | None
    text: str

    def ack_error(self) -> AckError:
        """The same problem as an ACK error (one ERR segment)."""
        return AckError(self.code, self.text, self.location)


def strict_errors(message_text: str, version: str) -> list[StrictError]:
    """Every problem (up to ``MAX_ERRORS``) of ``message_text`` against HL7
    ``version`` (normally its MSH-12); empty when the message is valid.

    A version hl7apy has no definitions for, or a message whose structure
    cannot be told from MSH-9, is one problem (203, 200): strict mode does not
    wave through what it cannot check.
    """
    if version not in SUPPORTED_LIBRARIES:
        return [
            StrictError(
                ErrorCode.UNSUPPORTED_VERSION_ID,
                "MSH-12",
                f"no HL7 {version or '(empty)'} structure definitions to validate against",
            )
        ]
    try:
        message = parse(message_text)
    except Hl7ParseError as exc:
        return [StrictError(exc.code, exc.location, exc.reason)]
    checker = _Checker(version, message.delimiters)
    checker.check(message)
    return checker.errors[:MAX_ERRORS]


def strict_summary(errors: Sequence[StrictError], version: str) -> str:
    """MSA-3 text for a strict refusal: how many problems and the first ones."""
    count = len(errors)
    listed = "; ".join(e.text for e in errors[:3])
    more = f"; and {count - 3} more" if count > 3 else ""
    noun = "problem" if count == 1 else "problems"
    return f"{count} {noun} against HL7 {version}: {listed}{more}"


class _Checker:
    """One validation run: the version's definitions and the problems so far."""

    def __init__(self, version: str, delimiters: Delimiters) -> None:
        self.version = version
        self.library = load_library(version)
        self.errors: list[StrictError] = []
        encoding = {
            "FIELD": delimiters.field,
            "COMPONENT": delimiters.component,
            "REPETITION": delimiters.repetition,
            "ESCAPE": delimiters.escape,
            "SUBCOMPONENT": delimiters.subcomponent,
            "GROUP": "\r",
            "SEGMENT": "\r",
        }
        if delimiters.truncation:
            encoding["TRUNCATION"] = delimiters.truncation
        self.encoding = encoding
        self.field_separator = delimiters.field

    def add(self, code: ErrorCode, location: str | None, text: str) -> None:
        self.errors.append(StrictError(code, location, text))

    def check(self, message: Message) -> None:
        names: list[str] = []
        seen: dict[str, int] = {}
        for segment in message:
            occurrence = seen[segment.name] = seen.get(segment.name, 0) + 1
            place = _segment_place(segment.name, occurrence)
            if segment.name.startswith("Z"):
                continue
            try:
                reference = load_reference(segment.name, "Segment", self.version)
            except ChildNotFound:
                self.add(
                    ErrorCode.SEGMENT_SEQUENCE_ERROR,
                    place,
                    f"segment {segment.name} is not defined in HL7 {self.version}",
                )
                continue
            names.append(segment.name)
            self._check_segment(segment.raw, reference, place)
        self._check_sequence(message, names)

    def _check_sequence(self, message: Message, names: list[str]) -> None:
        header = message.header
        structure = self._structure(
            header.message_structure, header.message_code, header.trigger_event
        )
        if structure is None:
            kind = header.message_type or "(empty)"
            self.add(
                ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
                "MSH-9",
                f"no HL7 {self.version} message structure for {kind}",
            )
            return
        reference = self.library.get(structure, "Message")
        end = self._match(reference[1], names, 0, structure)
        if end < len(names):
            name = names[end]
            occurrence = names[: end + 1].count(name)
            self.add(
                ErrorCode.SEGMENT_SEQUENCE_ERROR,
                _segment_place(name, occurrence),
                f"segment {name} is not expected here in {structure}",
            )

    def _structure(self, declared: str, code: str, event: str) -> str | None:
        candidates = [declared] if declared else []
        candidates += [f"{code}_{event}" if event else code]
        if code == "ADT" and event in _ADT_STRUCTURES:
            candidates.append(_ADT_STRUCTURES[event])
        for name in candidates:
            try:
                self.library.get(name, "Message")
            except ChildNotFound:
                continue
            return name
        return None

    def _match(self, children: Sequence[Reference], names: list[str], pos: int, owner: str) -> int:
        """Greedy match of ``names[pos:]`` against a message or group definition;
        returns the position after what matched."""
        for name, reference, (least, most), kind in children:
            count = 0
            while pos < len(names) and (most == -1 or count < most):
                if kind == "SEG":
                    if names[pos] != name:
                        break
                    pos += 1
                else:
                    if names[pos] not in _first_segments(reference):
                        break
                    start, pos = pos, self._match(reference[1], names, pos, name)
                    if pos == start:
                        break
                count += 1
            if count < least:
                what = "segment" if kind == "SEG" else "group"
                first = name if kind == "SEG" else _first_required(reference)
                self.add(
                    ErrorCode.SEGMENT_SEQUENCE_ERROR,
                    first,
                    f"required {what} {name} is missing from {owner}",
                )
        return pos

    def _check_segment(self, raw: str, reference: Reference, place: str) -> None:
        try:
            segment = parse_segment(
                raw,
                version=self.version,
                encoding_chars=self.encoding,
                validation_level=VALIDATION_LEVEL.TOLERANT,
                reference=None,
            )
        except (HL7apyException, ValueError, KeyError, IndexError):
            self.add(ErrorCode.SEGMENT_SEQUENCE_ERROR, place, f"segment {place} could not be read")
            return
        # Fields the version does not define (withdrawn, or past the last one),
        # numbered from the text: hl7apy keeps them as nameless children.
        name = raw[:3]
        defined = {int(child[0].rsplit("_", 1)[-1]) for child in reference[1]}
        shift = 1 if name == "MSH" else 0  # MSH-1 is the separator itself
        for index, value in enumerate(raw.split(self.field_separator)[1:], start=1):
            if value and index + shift not in defined:
                where = f"{place}-{index + shift}"
                self.add(
                    ErrorCode.DATA_TYPE_ERROR,
                    where,
                    f"{where} is not a field of {name} in HL7 {self.version}",
                )
        self._check_children(segment, reference[1], place, field_level=True)

    def _check_children(
        self, element: Any, children: Sequence[Reference], place: str, *, field_level: bool
    ) -> None:
        defined = {child[0] for child in children}
        if not field_level and any(child.name not in defined for child in element.children):
            self.add(
                ErrorCode.DATA_TYPE_ERROR,
                place,
                f"{place} has more components than HL7 {self.version} defines",
            )
        for name, reference, (least, most), _ in children:
            number = name.rsplit("_", 1)[-1]
            if field_level:
                where = f"{place}-{number}"
            elif "." in place:
                where = place  # a subcomponent: ERR-2 locates down to the component
            else:
                where = f"{place}.{number}"
            try:
                found = element.children.get(name)
            except (ChildNotFound, KeyError):
                found = []
            if len(found) < least:
                what = "field" if field_level else "component"
                self.add(
                    ErrorCode.REQUIRED_FIELD_MISSING, where, f"required {what} {where} is missing"
                )
            if most == 0 and found:
                self.add(
                    ErrorCode.DATA_TYPE_ERROR,
                    where,
                    f"{where} is withdrawn in HL7 {self.version} and must be empty",
                )
                continue
            if most != -1 and len(found) > most:
                self.add(
                    ErrorCode.DATA_TYPE_ERROR,
                    where,
                    f"{where} repeats {len(found)} times, at most {most} allowed",
                )
            for repetition, child in enumerate(found, start=1):
                at = f"{where}({repetition})" if field_level and repetition > 1 else where
                self._check_element(child, reference, at)

    def _check_element(self, element: Any, reference: Reference, where: str) -> None:
        if reference[0] in ("sequence", "choice"):
            self._check_children(element, reference[1], where, field_level=False)
            return
        datatype = reference[2]
        if datatype == "varies" or element.datatype == "varies":
            return
        if element.datatype != datatype:
            self.add(ErrorCode.DATA_TYPE_ERROR, where, f"{where} must be of type {datatype}")
            return
        if datatype is not None and not is_base_datatype(datatype, self.version):
            struct = load_reference(datatype, "Datatypes_Structs", self.version)
            self._check_children(element, struct[1], where, field_level=False)
            return
        self._check_value(element.to_er7(), datatype, where)

    def _check_value(self, value: str, datatype: str | None, where: str) -> None:
        if not value or datatype is None:
            return
        try:
            datatype_factory(datatype, value, self.version, VALIDATION_LEVEL.STRICT)
        except MaxLengthReached:
            self.add(ErrorCode.VALUE_TOO_LONG, where, f"{where} is longer than {datatype} allows")
        except InvalidDataType:
            return
        except (HL7apyException, ValueError, TypeError):
            self.add(ErrorCode.DATA_TYPE_ERROR, where, f"{where} is not a valid {datatype} value")


def _segment_place(name: str, occurrence: int) -> str:
    return name if occurrence == 1 else f"{name}({occurrence})"


def _first_segments(group: Reference) -> frozenset[str]:
    """Segment names a group can start with."""
    first: set[str] = set()
    for name, reference, (least, _), kind in group[1]:
        if kind == "SEG":
            first.add(name)
        else:
            first |= _first_segments(reference)
        if least >= 1:
            break
    return frozenset(first)


def _first_required(group: Reference) -> str | None:
    """The first required segment of a group, as the place of its absence."""
    for name, reference, (least, _), kind in group[1]:
        if least >= 1:
            return name if kind == "SEG" else _first_required(reference)
    return None


__all__ = ["MAX_ERRORS", "StrictError", "strict_errors", "strict_summary"]
