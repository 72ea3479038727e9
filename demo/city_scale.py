"""City-scale seeding on PostgreSQL: millions of persons loaded by several processes through COPY.

`xinyi seed --scale city` (4 million persons, 250 thousand enterprises and their records) is what the
city-scale figures in DESIGN §6 are measured on. The demo seeder writes everything in one process and
one transaction, with every index and foreign key maintained row by row: fine for a demo, about 20
minutes at this size. Here instead:

- secondary indexes, unique and foreign-key constraints of the three registry tables are dropped
  before the load and rebuilt after it (a sorted build, in parallel workers, is far cheaper than
  maintaining them per row);
- persons are generated and written by `jobs` processes, each owning a contiguous range of person ids
  (given explicitly, so nothing has to be looked up after a COPY) and its own share of the id-number,
  phone and source-reference spaces, so shards never collide;
- enterprises and their records are written by the parent while the shards run.

If anything fails, the three tables are truncated and their indexes and constraints restored, so the
database is left as empty as it was found. The same seed and job count always give the same city.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from array import array
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import asyncpg

from credit.identity import FieldCipher
from demo.bulk import CHUNK_SIZE, ENTERPRISE_COLUMNS, PERSON_COLUMNS, RECORD_COLUMNS, PostgresWriter, record_row
from demo.city import streams
from demo.enterprises import generate_enterprises
from demo.partners import plan_partners
from demo.people import generate_persons
from demo.records import RecordGenerator
from demo.reference import REGISTRY_LOADED_AT
from demo.seed import SeedReport, finish_seed

logger = logging.getLogger(__name__)

CITY_PERSONS = 4_000_000
CITY_ENTERPRISES = 250_000
_TABLES = ("persons", "enterprises", "credit_records")
_REFERENCE_SPAN = 100_000_000  # source references per shard (a source issues far fewer than this)


@dataclass(frozen=True, slots=True)
class _Shard:
    dsn: str
    seed: int
    index: int
    of: int
    first_id: int  # persons get ids first_id, first_id + 1, ...
    count: int
    data_key: bytes
    hash_key: bytes
    sources: dict[str, str]


@dataclass(frozen=True, slots=True)
class _ShardResult:
    birth_years: bytes  # array("H") of the shard's persons, in id order
    records: int


async def _copy(connection: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    await connection.copy_records_to_table(table, records=rows, columns=list(columns))


async def _load_shard(shard: _Shard) -> _ShardResult:
    cipher = FieldCipher(data_key=shard.data_key, hash_key=shard.hash_key)
    rngs = streams(shard.seed * 1000 + shard.index)
    records = RecordGenerator(rngs.records, reference_base=(shard.index + 1) * _REFERENCE_SPAN)
    people = generate_persons(rngs.persons, shard.count, shard=(shard.index, shard.of))
    loaded_at = REGISTRY_LOADED_AT
    birth_years: array[int] = array("H")
    written = 0
    connection = await asyncpg.connect(shard.dsn)
    try:
        async with connection.transaction():
            writer = PostgresWriter(connection)
            next_id = shard.first_id
            while chunk := [p for _, p in zip(range(CHUNK_SIZE), people, strict=False)]:
                person_rows: list[tuple[Any, ...]] = []
                record_rows: list[tuple[Any, ...]] = []
                for person in chunk:
                    person_rows.append((next_id, person.public_id, person.name,
                                        cipher.encrypt("id_number", person.id_number),
                                        cipher.lookup_hash("id_number", person.id_number), person.gender,
                                        person.birth_date, person.region_code,
                                        cipher.lookup_hash("phone", person.phone) if person.phone else None,
                                        cipher.encrypt("phone", person.phone) if person.phone else None, loaded_at))
                    record_rows.extend(record_row(writer, r, next_id, None, shard.sources)
                                       for r in records.for_person(next_id, person))
                    birth_years.append(person.birth_date.year)
                    next_id += 1
                await _copy(connection, "persons", ("id", *PERSON_COLUMNS), person_rows)
                await _copy(connection, "credit_records", RECORD_COLUMNS, record_rows)
                written += len(record_rows)
                logger.info("city seed shard %d: %d persons, %d records", shard.index, len(birth_years), written)
    finally:
        await connection.close()
    return _ShardResult(birth_years=birth_years.tobytes(), records=written)


def _run_shard(shard: _Shard) -> _ShardResult:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return asyncio.run(_load_shard(shard))


async def _constraints_and_indexes(connection: Any) -> list[tuple[str, str, str]]:
    """(table, name, statement to recreate it) for every unique / foreign-key constraint and secondary
    index of the registry tables: what the bulk load drops and rebuilds."""
    found: list[tuple[str, str, str]] = []
    for table in _TABLES:
        for row in await connection.fetch(
                "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint"
                " WHERE conrelid = $1::regclass AND contype IN ('u', 'f') ORDER BY contype DESC, conname", table):
            found.append((table, row["conname"],
                          f'ALTER TABLE {table} ADD CONSTRAINT "{row["conname"]}" {row["def"]}'))
        for row in await connection.fetch(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = $1"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname"
                " AND c.conrelid = $1::regclass)", table):
            found.append((table, row["indexname"], row["indexdef"]))
    return found


async def _drop(connection: Any, items: list[tuple[str, str, str]]) -> None:
    # Foreign keys first (they depend on the unique keys), then unique constraints, then plain indexes.
    for table, name, statement in sorted(items, key=lambda i: (" FOREIGN KEY" not in i[2], "UNIQUE" not in i[2])):
        if statement.startswith("ALTER TABLE"):
            await connection.execute(f'ALTER TABLE {table} DROP CONSTRAINT IF EXISTS "{name}"')
        else:
            await connection.execute(f'DROP INDEX IF EXISTS "{name}"')


async def _restore(connection: Any, items: list[tuple[str, str, str]]) -> None:
    await connection.execute("SET maintenance_work_mem = '512MB'")
    # Plain and unique indexes first, foreign keys last (they need the referenced keys).
    for _table, _name, statement in sorted(items, key=lambda i: " FOREIGN KEY" in i[2]):
        await connection.execute(statement)


@dataclass(frozen=True, slots=True)
class CityLoad:
    persons: int
    enterprises: int
    records: int
    seconds: float


async def load_city(*, dsn: str, cipher: FieldCipher, data_key: bytes, hash_key: bytes, persons: int,
                    enterprises: int, seed: int, jobs: int, sources: dict[str, str]) -> CityLoad:
    """Load persons (in `jobs` processes), enterprises and their records into empty registry tables."""
    started = time.perf_counter()
    connection = await asyncpg.connect(dsn)
    try:
        for table in _TABLES:
            if await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):  # noqa: S608 - fixed names
                raise RuntimeError(f"{table} is not empty: the city is only seeded into an empty registry")
        dropped = await _constraints_and_indexes(connection)
        await _drop(connection, dropped)
        try:
            per_shard = -(-persons // jobs)
            shards = [_Shard(dsn=dsn, seed=seed, index=i, of=jobs, first_id=1 + i * per_shard,
                             count=min(per_shard, persons - i * per_shard), data_key=data_key, hash_key=hash_key,
                             sources=sources) for i in range(jobs) if persons - i * per_shard > 0]
            context = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited event loop
            with ProcessPoolExecutor(max_workers=len(shards), mp_context=context) as pool:
                futures = [asyncio.wrap_future(pool.submit(_run_shard, shard)) for shard in shards]
                results = await asyncio.gather(*futures)
            birth_years: array[int] = array("H")
            for result in results:
                birth_years.frombytes(result.birth_years)
            records = sum(r.records for r in results)
            logger.info("city seed: %d persons and %d records in %.0f s; enterprises next", len(birth_years),
                        records, time.perf_counter() - started)
            records += await _load_enterprises(connection, cipher=cipher, seed=seed, count=enterprises,
                                               birth_years=birth_years, sources=sources, jobs=jobs)
            logger.info("city seed: rebuilding indexes and constraints")
            await _restore(connection, dropped)
        except BaseException:
            logger.warning("city seed failed: emptying the registry tables and restoring their indexes")
            await connection.execute(f"TRUNCATE {', '.join(_TABLES)} CASCADE")
            await _restore(connection, dropped)
            raise
        for table in _TABLES:
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM {table}))")  # noqa: S608 - fixed names
        await connection.execute(f"ANALYZE {', '.join(_TABLES)}")
    finally:
        await connection.close()
    return CityLoad(persons=len(birth_years), enterprises=enterprises, records=records,
                    seconds=time.perf_counter() - started)


async def _load_enterprises(connection: Any, *, cipher: FieldCipher, seed: int, count: int, birth_years: array[int],
                            sources: dict[str, str], jobs: int) -> int:
    rngs = streams(seed)
    records = RecordGenerator(rngs.records, reference_base=(jobs + 1) * _REFERENCE_SPAN)
    writer = PostgresWriter(connection)
    loaded_at = REGISTRY_LOADED_AT
    written = 0
    next_id = 1
    async with connection.transaction():
        firms = generate_enterprises(rngs.enterprises, count, person_birth_years=birth_years)
        while chunk := [e for _, e in zip(range(CHUNK_SIZE), firms, strict=False)]:
            rows: list[tuple[Any, ...]] = []
            record_rows: list[tuple[Any, ...]] = []
            for firm in chunk:
                rows.append((next_id, firm.public_id, firm.name, cipher.encrypt("uscc", firm.uscc),
                             cipher.lookup_hash("uscc", firm.uscc), firm.industry, firm.region_code,
                             firm.registered_on, firm.registered_capital_fen,
                             None if firm.representative is None else firm.representative + 1, "active", loaded_at))
                record_rows.extend(record_row(writer, r, None, next_id, sources)
                                   for r in records.for_enterprise(next_id, firm))
                next_id += 1
            await _copy(connection, "enterprises", ("id", *ENTERPRISE_COLUMNS), rows)
            await _copy(connection, "credit_records", RECORD_COLUMNS, record_rows)
            written += len(record_rows)
    return written


_LIST_FROM_RECORDS_SQL = (
    "INSERT INTO credit_list_entries (public_id, list_kind, list_code, list_name, subject_kind, person, enterprise,"
    " reason, source, listed_at)"
    " SELECT 'lst_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 20), $1, $2, $3, r.subject_kind,"
    " r.person, r.enterprise, '由数据源信用记录列入', r.source, now()"
    " FROM (SELECT DISTINCT ON (subject_kind, person, enterprise) subject_kind, person, enterprise, source"
    "       FROM credit_records WHERE category = ANY($4::varchar[]) AND status = ANY($5::varchar[])"
    "       ORDER BY subject_kind, person, enterprise, occurred_at) r")


async def list_from_records(dsn: str) -> int:
    """Set-based form of `credit.checks.sync_record_lists` for a freshly loaded registry (no entries yet):
    every subject with a counting record of a listing category goes on that list, in one statement per list."""
    from credit.checks import LISTING_RECORD_STATUSES, LISTS, RECORD_LISTS  # noqa: PLC0415

    categories_for: dict[str, list[str]] = {}
    for category, code in RECORD_LISTS.items():
        categories_for.setdefault(code, []).append(category)
    connection = await asyncpg.connect(dsn)
    try:
        listed = 0
        for code, categories in categories_for.items():
            spec = LISTS[code]
            status = await connection.execute(_LIST_FROM_RECORDS_SQL, spec.kind, spec.code, spec.name, categories,
                                              list(LISTING_RECORD_STATUSES))
            listed += int(status.split()[-1])
        return listed
    finally:
        await connection.close()


async def seed_city(*, dsn: str, cipher: FieldCipher, data_key: bytes, hash_key: bytes, persons: int,
                    enterprises: int, seed: int, jobs: int, with_accounts: bool = True) -> SeedReport:
    """`xinyi seed --scale city`: the registry through `load_city`, then what every seed ends with."""
    started = time.perf_counter()
    planned = await plan_partners(seed)
    sources = {p.spec.source: p.client_id for p in planned if p.spec.source}
    load = await load_city(dsn=dsn, cipher=cipher, data_key=data_key, hash_key=hash_key, persons=persons,
                           enterprises=enterprises, seed=seed, jobs=jobs, sources=sources)
    listed = await list_from_records(dsn)
    partners, operators = await finish_seed(planned, with_accounts=with_accounts)
    seconds = time.perf_counter() - started
    report = SeedReport(load.persons, load.enterprises, load.records, seconds, partners, operators, seed=seed)
    report.notes.append(f"city scale: {jobs} loader processes; registry load {load.seconds:.0f} s; "
                        f"{listed:,} list entries from records")
    return report
