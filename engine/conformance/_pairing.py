"""Pairing the resources of two bundles by meaning, then comparing each pair.

Ids differ by design, so nothing is paired by id: patients by a shared
identifier value; encounters by visit number, else the one encounter each side
has; observations by code, the n-th of a code with the n-th of the same code
(result order within the message). Within a pair, names pair by family name
then position, addresses by position, identifiers by value, locations by PL.
A resource one side lacks makes all of its fields one-sided.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from engine.conformance._extract import (
    BundleView,
    Json,
    Name,
    PlaceEntry,
    address_fields,
    encounter_fields,
    identifiers,
    names,
    observation_fields,
    patient_fields,
    place_entries,
)
from engine.conformance.scoring import FieldResult, Value, compare_fields

_T = TypeVar("_T")
Fields = dict[str, Value | None]


def _align(
    ours: Sequence[_T],
    theirs: Sequence[_T],
    same: Callable[[_T, _T], bool],
    fallback: Callable[[int, _T, int, _T], bool],
) -> list[tuple[_T | None, _T | None]]:
    """Pairs ``ours`` with ``theirs``: first every one with an unused one of theirs that
    is ``same``, then the rest with the first unused one ``fallback`` accepts (called with
    both positions and items); what is left of theirs comes last, alone."""
    used: set[int] = set()
    matches: dict[int, int] = {}
    for tests in (lambda i, m, j, t: same(m, t), fallback):
        for index, mine in enumerate(ours):
            if index in matches:
                continue
            match = next(
                (j for j, t in enumerate(theirs) if j not in used and tests(index, mine, j, t)),
                None,
            )
            if match is not None:
                used.add(match)
                matches[index] = match
    pairs: list[tuple[_T | None, _T | None]] = [
        (mine, theirs[matches[i]] if i in matches else None) for i, mine in enumerate(ours)
    ]
    pairs += [(None, t) for j, t in enumerate(theirs) if j not in used]
    return pairs


def _name_fields(pairs: list[tuple[Name | None, Name | None]]) -> tuple[Fields, Fields]:
    ours: Fields = {}
    theirs: Fields = {}
    for position, (mine, other) in enumerate(pairs, start=1):
        for side, name in ((ours, mine), (theirs, other)):
            if name is not None:
                side[f"name[{position}].family"] = name.family
                side[f"name[{position}].given"] = name.given or None
    return ours, theirs


def _patient_maps(ours: Json | None, theirs: Json | None) -> tuple[Fields, Fields]:
    mine: Fields = {}
    other: Fields = {}
    for side, patient in ((mine, ours), (other, theirs)):
        for ident in identifiers(patient or {}):
            side[f"identifier[{ident.value}]"] = ident
    name_pairs = _align(
        names(ours or {}),
        names(theirs or {}),
        lambda a, b: a.family is not None and a.family == b.family,
        lambda i, _a, j, _b: i == j,
    )
    name_ours, name_theirs = _name_fields(name_pairs)
    mine |= name_ours
    other |= name_theirs
    for side, patient in ((mine, ours), (other, theirs)):
        if patient is None:
            continue
        side |= patient_fields(patient)
        addresses = [a for a in patient.get("address") or [] if isinstance(a, dict)]
        for position, address in enumerate(addresses, start=1):
            side |= {f"address[{position}].{k}": v for k, v in address_fields(address).items()}
    return mine, other


def _place_fields(
    pairs: list[tuple[PlaceEntry | None, PlaceEntry | None]],
) -> tuple[Fields, Fields]:
    ours: Fields = {}
    theirs: Fields = {}
    for mine, other in pairs:
        either = mine or other
        status = either.status if either is not None else None
        name = f"location({status or 'no status'})"
        suffix = 2
        while name in ours or name in theirs:
            name = f"location({status or 'no status'})#{suffix}"
            suffix += 1
        ours[name] = mine.place if mine else None
        theirs[name] = other.place if other else None
    return ours, theirs


def _encounter_maps(
    ours_view: BundleView, ours: Json | None, theirs_view: BundleView, theirs: Json | None
) -> tuple[Fields, Fields]:
    mine: Fields = encounter_fields(ours) if ours else {}
    other: Fields = encounter_fields(theirs) if theirs else {}
    our_places = place_entries(ours_view, ours) if ours else []
    their_places = place_entries(theirs_view, theirs) if theirs else []
    place_ours, place_theirs = _place_fields(_align_places(our_places, their_places))
    return mine | place_ours, other | place_theirs


def _align_places(
    ours: list[PlaceEntry], theirs: list[PlaceEntry]
) -> list[tuple[PlaceEntry | None, PlaceEntry | None]]:
    """Each of our locations with theirs of the same PL, else with an unpaired one of the
    same status. Their temporary locations (PV1-11, PV1-43) have no counterpart in our
    mapping, so they pair only by identity, and after the others."""
    ordered = sorted(theirs, key=lambda entry: entry.temporary)
    return _align(
        ours,
        ordered,
        lambda a, b: a.place == b.place,
        lambda _i, a, _j, b: not b.temporary and a.status == b.status,
    )


def _pair(
    ours: list[Json], theirs: list[Json], key: Callable[[Json], list[str]]
) -> list[tuple[Json | None, Json | None]]:
    """Resources that share a key value, first come first paired; the rest alone."""
    used: set[int] = set()
    pairs: list[tuple[Json | None, Json | None]] = []
    for mine in ours:
        keys = set(key(mine))
        match = next(
            (j for j, t in enumerate(theirs) if j not in used and keys & set(key(t))), None
        )
        if match is not None:
            used.add(match)
        pairs.append((mine, theirs[match] if match is not None else None))
    pairs += [(None, t) for j, t in enumerate(theirs) if j not in used]
    return pairs


def _identifier_values(resource: Json) -> list[str]:
    return [ident.value for ident in identifiers(resource)]


def _observation_keys(resources: list[Json]) -> dict[int, str]:
    """``code#n`` for the n-th observation of each code, by position in the list."""
    seen: dict[str, int] = {}
    keys: dict[int, str] = {}
    for index, resource in enumerate(resources):
        coded = observation_fields(resource)["code"]
        code = getattr(coded, "code", "?")
        seen[code] = seen.get(code, 0) + 1
        keys[index] = f"{code}#{seen[code]}"
    return keys


def _label(resource: Json | None, fallback: str) -> str:
    values = _identifier_values(resource or {})
    return values[0] if values else fallback


def compare_bundles(ours: Sequence[Json], theirs: Sequence[Json]) -> list[FieldResult]:
    """Every compared field of the Patients, Encounters and Observations of two renderings
    of one message."""
    ours_view, theirs_view = BundleView(ours), BundleView(theirs)
    results: list[FieldResult] = []
    patients = _pair(
        ours_view.of_type("Patient"), theirs_view.of_type("Patient"), _identifier_values
    )
    for mine, other in patients:
        key = f"Patient {_label(mine or other, '?')}"
        results += compare_fields("Patient", key, *_patient_maps(mine, other))
    our_encounters = ours_view.of_type("Encounter")
    their_encounters = theirs_view.of_type("Encounter")
    encounters = _pair(our_encounters, their_encounters, _identifier_values)
    if len(our_encounters) == len(their_encounters) == 1 and encounters[0][1] is None:
        encounters = [(our_encounters[0], their_encounters[0])]
    for mine, other in encounters:
        key = f"Encounter {_label(mine or other, 'without visit number')}"
        maps = _encounter_maps(ours_view, mine, theirs_view, other)
        results += compare_fields("Encounter", key, *maps)
    our_obs, their_obs = ours_view.of_type("Observation"), theirs_view.of_type("Observation")
    our_keys, their_keys = _observation_keys(our_obs), _observation_keys(their_obs)
    by_key = {their_keys[j]: j for j in range(len(their_obs))}
    paired: set[int] = set()
    for index, mine in enumerate(our_obs):
        j = by_key.get(our_keys[index])
        if j is not None:
            paired.add(j)
        other = their_obs[j] if j is not None else None
        theirs_fields = observation_fields(other) if other else {}
        key = f"Observation {our_keys[index]}"
        results += compare_fields("Observation", key, observation_fields(mine), theirs_fields)
    for j, other in enumerate(their_obs):
        if j not in paired:
            key = f"Observation {their_keys[j]}"
            results += compare_fields("Observation", key, {}, observation_fields(other))
    return results
