"""Synthetic patient demographics drawn from small built-in lists with a seeded RNG."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

FAMILY_NAMES = (
    "SMITH", "JONES", "TAYLOR", "BROWN", "WILLIAMS", "WILSON", "JOHNSON", "DAVIES", "PATEL",
    "ROBINSON", "WRIGHT", "THOMPSON", "EVANS", "WALKER", "WHITE", "ROBERTS", "GREEN", "HALL",
    "THOMAS", "CLARKE", "JACKSON", "WOOD", "HARRIS", "EDWARDS", "TURNER", "MARTIN", "COOPER",
    "HILL", "WARD", "HUGHES", "MOORE", "CLARK", "KING", "HARRISON", "LEWIS", "BAKER", "LEE",
    "ALLEN", "MORRIS", "KHAN", "SCOTT", "WATSON", "DAVIS", "PARKER", "JAMES", "BENNETT",
    "YOUNG", "PHILLIPS", "RICHARDSON", "MITCHELL", "BAILEY", "CARTER", "COOK", "SINGH",
    "SHAW", "BELL", "COLLINS", "MORGAN", "KELLY", "BEGUM", "MILLER", "COX", "HUSSAIN",
    "O'BRIEN", "OKAFOR", "NOWAK", "MURPHY", "ALI", "CHEN", "MENSAH",
)  # fmt: skip
FEMALE_NAMES = (
    "OLIVIA", "AMELIA", "ISLA", "AVA", "EMILY", "SOPHIA", "GRACE", "MIA", "POPPY", "ELLA",
    "MARGARET", "PATRICIA", "SUSAN", "LINDA", "BARBARA", "ELIZABETH", "JEAN", "MARY", "JOAN",
    "SARAH", "HANNAH", "FATIMA", "AISHA", "PRIYA", "ZARA", "CHLOE", "JESSICA", "LUCY",
    "DOROTHY", "IRENE", "SHEILA", "ANNA", "RUTH", "HELEN", "KAREN",
)  # fmt: skip
MALE_NAMES = (
    "OLIVER", "GEORGE", "HARRY", "NOAH", "JACK", "LEO", "ARTHUR", "MUHAMMAD", "OSCAR",
    "CHARLIE", "JOHN", "DAVID", "MICHAEL", "PETER", "ROBERT", "JAMES", "WILLIAM", "RICHARD",
    "THOMAS", "BRIAN", "KEITH", "ALAN", "COLIN", "DEREK", "RAJ", "AHMED", "DANIEL", "SAMUEL",
    "JOSEPH", "KWAME", "TOMASZ", "LIAM", "RYAN", "ADAM", "FRANK",
)  # fmt: skip
STREETS = (
    "OAK STREET", "MILL LANE", "CHURCH ROAD", "STATION ROAD", "VICTORIA AVENUE", "HIGH STREET",
    "PARK VIEW", "MANOR WAY", "QUEEN STREET", "ALBERT TERRACE", "ELM GROVE", "KINGS ROAD",
    "MEADOW CLOSE", "BRIDGE STREET", "WILLOW CRESCENT", "HAWTHORN DRIVE",
)  # fmt: skip
# Fictional town names with the outward-code letters used for their postcodes.
TOWNS = (
    ("ASHFORD BRIDGE", "AB"), ("MILLBROOK", "MB"), ("KINGSWELL", "KW"), ("EASTHAVEN", "EH"),
    ("NORTHLEIGH", "NL"), ("WESTMERE", "WM"), ("SOUTHCOTE", "SC"), ("LONGDALE", "LD"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Person:
    """A synthetic patient's identity."""

    mrn: str
    family: str
    given: str
    sex: str
    birth_date: date
    street: str
    town: str
    postcode: str
    phone: str


# Multiplier coprime with 10**7, so index -> number is a permutation: MRNs never collide.
_MRN_MULTIPLIER = 7_368_787
_MRN_SPACE = 10_000_000


def mrn_for(index: int, offset: int) -> str:
    """A unique, scrambled 8-digit medical record number for the ``index``-th patient."""
    return f"9{(index * _MRN_MULTIPLIER + offset) % _MRN_SPACE:07d}"


def make_person(
    rng: random.Random,
    *,
    index: int,
    mrn_offset: int,
    on: date,
    min_age: int,
    max_age: int,
    female_fraction: float,
) -> Person:
    """Draw one patient: names, sex, an age within ``[min_age, max_age]`` on date ``on``."""
    sex = "F" if rng.random() < female_fraction else "M"
    given = rng.choice(FEMALE_NAMES if sex == "F" else MALE_NAMES)
    # Skew adult ages towards the old: inpatient populations are elderly.
    span = max_age - min_age
    age_years = min_age + span * (rng.random() ** 0.7 if min_age >= 18 else rng.random())
    birth_date = on - timedelta(days=int(age_years * 365.25) + rng.randrange(0, 365))
    town, outward = rng.choice(TOWNS)
    return Person(
        mrn=mrn_for(index, mrn_offset),
        family=rng.choice(FAMILY_NAMES),
        given=given,
        sex=sex,
        birth_date=birth_date,
        street=f"{rng.randrange(1, 200)} {rng.choice(STREETS)}",
        town=town,
        postcode=f"{outward}{rng.randrange(1, 20)} {rng.randrange(1, 10)}{_letters(rng)}",
        # Ofcom reserves 07700 900000-900999 for drama: never a real number.
        phone=f"07700900{rng.randrange(0, 1000):03d}",
    )


def _letters(rng: random.Random) -> str:
    alphabet = "ABDEFGHJLNPQRSTUWXYZ"
    return rng.choice(alphabet) + rng.choice(alphabet)
