"""Deterministic demo city: a 嘉兴 registry (with migrants from 汉中), its credit records, partners, operators.

It sits beside `api` in the layers (`core` <- domains <- `api` / `demo` / `loadtests`): it writes through the
domains' services and tables, and nothing but the CLI, the load tests and the tests imports it.

The generators (`demo.people`, `demo.enterprises`, `demo.records`, `demo.city.generate_city`) are pure: for one
seed they always yield the same people, enterprises and records, including public ids, so two seeded databases
can be compared row by row. Only credentials (partner secrets, the operators' passwords) and ciphertexts
(AES-GCM nonces) differ between runs.

`seed_demo_city` (`demo.seed`) writes the rows in bulk (`demo.bulk`): `COPY` on PostgreSQL, batched
`executemany` on SQLite, inside one transaction, so a failed seed leaves nothing behind and a re-run only ever
sees an empty or a fully seeded registry; then the demo partners (`demo.partners`), the demo bank's products
(`demo.lending`) and the demo operators (`demo.operators`). `seed_city` (`demo.city_scale`) loads millions of
persons with several processes on PostgreSQL. Identity numbers and phones never reach a log or the printed
report; `demo_citizen` (`demo.citizen`) gives `xinyi up` one synthetic person to print for the README tour,
outside production only.
"""

from demo.citizen import DemoCitizen, demo_citizen
from demo.seed import SeedReport, seed_demo_city

__all__ = ["DemoCitizen", "SeedReport", "demo_citizen", "seed_demo_city"]
