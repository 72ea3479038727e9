"""The whole demo city in memory: independent random streams per kind of row, and `generate_city`.

`demo.seed` writes what `generate_city` returns (for the same arguments) without holding it all in memory;
the streams are also what `demo.city_scale` shards draw from.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple

from demo.enterprises import EnterpriseSeed, generate_enterprises
from demo.people import PersonSeed, generate_persons
from demo.records import RecordSeed, generate_records


class Streams(NamedTuple):
    """Independent random streams per kind of row, so chunked writing cannot change what is drawn."""

    persons: random.Random
    enterprises: random.Random
    records: random.Random
    partners: random.Random


def streams(seed: int) -> Streams:
    """The random streams of a demo city, all derived from `seed`."""
    return Streams(*(random.Random(f"xinyi-demo:{seed}:{part}") for part in Streams._fields))


@dataclass(frozen=True, slots=True)
class DemoCity:
    persons: list[PersonSeed]
    enterprises: list[EnterpriseSeed]
    records: list[RecordSeed]


def generate_city(*, seed: int, persons: int, enterprises: int) -> DemoCity:
    """The whole demo city in memory (what `seed_demo_city` writes for the same arguments)."""
    rngs = streams(seed)
    people = list(generate_persons(rngs.persons, persons))
    firms = list(generate_enterprises(rngs.enterprises, enterprises,
                                      person_birth_years=[p.birth_date.year for p in people]))
    return DemoCity(people, firms, list(generate_records(rngs.records, people, firms)))
