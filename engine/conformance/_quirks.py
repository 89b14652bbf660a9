"""Naming the cause of a disagreement where it is plain from the two values.

A classification explains a disagreement; it never turns it into an
agreement: the field still counts as disagreeing and is still listed. Each
rule says which side departs from the HL7 v2-to-FHIR IG where the IG decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from engine.conformance._times import parse_fhir_time, same_wall_clock
from engine.conformance.scoring import PART_SEPARATOR, FieldResult, SystemName

LOCAL_TIME = "local-time"
SAME_WALL_CLOCK = "offset-dropped"
SPACES = "spaces-kept"
AUTHORITY = "authority-component"
CALLED_BY = "called-by-name"
STREET_LINES = "street-lines"
REGISTER_STATUS = "a04-status"
UNKNOWN_CLASS = "unknown-class"
NAME_SPACES = "name-in-uri"

QUIRKS: dict[str, str] = {
    LOCAL_TIME: "FHIR-Converter keeps a local time without its offset; we keep the offset",
    SAME_WALL_CLOCK: "same wall-clock time; FHIR-Converter dropped the offset",
    SPACES: "FHIR-Converter keeps the spaces around the value as sent; we trim them",
    AUTHORITY: "assigning authority: FHIR-Converter names the system after another HD"
    " component (CX.4.2 universal id, CX.4.3 its type); the IG's HD[uri] takes CX.4.1"
    " (namespace id) when it is valued, as we do",
    CALLED_BY: "FHIR-Converter appends XPN.15 (called by) to the given names; the IG puts it"
    " in a second HumanName, and we do not map it",
    STREET_LINES: "FHIR-Converter also writes XAD.19 as an address line; we do not map XAD.19",
    REGISTER_STATUS: "A04: the IG's Event[EncounterStatus] says planned; we write arrived"
    " (in-progress for PV1-2 E), FHIR-Converter in-progress",
    UNKNOWN_CLASS: "patient class absent or not in table 0004: we write v3-NullFlavor UNK or"
    " the v2-0004 code, FHIR-Converter a class of its own",
    NAME_SPACES: "the same HL7 name (assigning authority or coding system) in the system URI:"
    " we percent-encode it, FHIR-Converter writes '-' for spaces",
}
"""What each classification means, by its short name (``FieldResult.quirk``)."""

_TIME_FIELDS = ("birthDate", "period.start", "period.end", "effective")


def _time(result: FieldResult, _kind: str) -> str | None:
    if not result.field.endswith(_TIME_FIELDS) or result.ours is None or result.theirs is None:
        return None
    ours, theirs = parse_fhir_time(result.ours), parse_fhir_time(result.theirs)
    if ours is None or theirs is None or not theirs.has_time or theirs.offset is not None:
        return None
    return SAME_WALL_CLOCK if same_wall_clock(ours, theirs) else LOCAL_TIME


def _spaces(result: FieldResult, _kind: str) -> str | None:
    ours, theirs = result.ours or "", result.theirs or ""
    if ours != theirs and " ".join(ours.split()) == " ".join(theirs.split()):
        return SPACES
    return None


def _split_system(shown: str) -> tuple[str, str]:
    system, _, value = shown.rpartition("|")
    return system, value


def _system_name(result: FieldResult, _kind: str) -> str | None:
    """Identifier and code systems: the same HL7 name written two ways, or another
    component of the assigning authority."""
    identifier = result.field.startswith("identifier[")
    if not (identifier or result.field == "code") or not result.ours or not result.theirs:
        return None
    (ours, our_value), (theirs, their_value) = map(_split_system, (result.ours, result.theirs))
    if our_value != their_value or not ours or not theirs:
        return None
    if " ".join(SystemName(ours).name.split()).replace(" ", "-") == SystemName(theirs).name:
        return NAME_SPACES
    return AUTHORITY if identifier else None


def _extra_words(field: str, rule: str) -> Callable[[FieldResult, str], str | None]:
    def check(result: FieldResult, _kind: str) -> str | None:
        if not result.field.endswith(field) or not result.ours or not result.theirs:
            return None
        ours, theirs = result.ours.split(PART_SEPARATOR), result.theirs.split(PART_SEPARATOR)
        remaining = iter(theirs)
        # Ours in theirs, in order, and theirs longer: they wrote more parts than we did.
        contained = all(part in remaining for part in ours)
        return rule if contained and len(theirs) > len(ours) else None

    return check


def _register(result: FieldResult, kind: str) -> str | None:
    if result.field == "status" and kind == "ADT^A04" and result.ours in ("arrived", "in-progress"):
        return REGISTER_STATUS
    return None


def _unknown_class(result: FieldResult, _kind: str) -> str | None:
    if result.field == "class" and result.resource == "Encounter":
        return UNKNOWN_CLASS if result.ours in ("UNK", "U") else None
    return None


_RULES: tuple[Callable[[FieldResult, str], str | None], ...] = (
    _time,
    _spaces,
    _system_name,
    _extra_words(".given", CALLED_BY),
    _extra_words(".line", STREET_LINES),
    _register,
    _unknown_class,
)


def classify(result: FieldResult, message_type: str) -> FieldResult:
    """``result`` with ``quirk`` set when a rule recognises its disagreement."""
    if result.status != "disagree":
        return result
    for rule in _RULES:
        quirk = rule(result, message_type)
        if quirk is not None:
            return replace(result, quirk=quirk)
    return result
