"""`seed_demo_city`: the demo city written into an empty registry, then the demo partners, products and
operators (see the package docstring)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from array import array
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from credit.checks import LISTING_RECORD_STATUSES, RECORD_LISTS, seed_default_measures, sync_record_lists
from credit.identity import FieldCipher
from credit.tables import CreditRecord, Enterprise, Person
from demo.bulk import (
    CHUNK_SIZE,
    ENTERPRISE_COLUMNS,
    PERSON_COLUMNS,
    RECORD_COLUMNS,
    SEEDED_TABLES,
    BulkWriter,
    Row,
    batched,
    open_writer,
    record_row,
)
from demo.city import Streams, streams
from demo.enterprises import generate_enterprises
from demo.lending import seed_demo_products
from demo.operators import ensure_operators
from demo.partners import PlannedPartner, create_partners, plan_partners
from demo.people import PersonSeed, generate_persons
from demo.records import RecordGenerator, RecordSeed
from demo.reference import REGISTRY_LOADED_AT
from scenarios.catalog import seed_default_scenarios

logger = logging.getLogger(__name__)


async def _registry_is_empty() -> bool:
    for table in (Person, Enterprise, CreditRecord):
        if await table.exists():
            return False
    return True

class _PersonBatch(NamedTuple):
    persons: list[PersonSeed]
    rows: list[Row]  # persons rows, encrypted, ready to insert
    records: list[RecordSeed]


async def _load_registry(
    writer: BulkWriter, rngs: Streams, *, persons: int, enterprises: int, cipher: FieldCipher,
    sources: dict[str, str],
) -> tuple[int, int, int]:
    """Generate and write persons (with their records), then enterprises (with theirs)."""
    loaded_at = writer.moment(REGISTRY_LOADED_AT)
    records = RecordGenerator(rngs.records)
    people = generate_persons(rngs.persons, persons)

    def produce(start: int) -> _PersonBatch | None:
        # With `writer.prefetch` this runs in a worker thread while the database writes the previous
        # batch; calls never overlap and come in order, so the streams are drawn exactly as inline.
        chunk = list(itertools.islice(people, CHUNK_SIZE))
        if not chunk:
            return None
        rows: list[Row] = []
        for p in chunk:
            phone_hash = cipher.lookup_hash("phone", p.phone) if p.phone else None
            phone_enc = cipher.encrypt("phone", p.phone) if p.phone else None
            rows.append((p.public_id, p.name, cipher.encrypt("id_number", p.id_number),
                         cipher.lookup_hash("id_number", p.id_number), p.gender, writer.day(p.birth_date),
                         p.region_code, phone_hash, phone_enc, loaded_at))
        seeds = [r for i, p in enumerate(chunk, start=start) for r in records.for_person(i, p)]
        return _PersonBatch(chunk, rows, seeds)

    person_ids: array[int] = array("q")
    birth_years: array[int] = array("H")
    n_records = 0
    pending: asyncio.Future[_PersonBatch | None] | None = None
    batch = produce(0)
    try:
        while batch is not None:
            start = len(person_ids) + len(batch.persons)
            if writer.prefetch:
                pending = asyncio.ensure_future(asyncio.to_thread(produce, start))
            ids = await writer.insert_returning_ids("persons", PERSON_COLUMNS, batch.rows)
            person_ids.extend(ids[p.public_id] for p in batch.persons)
            birth_years.extend(p.birth_date.year for p in batch.persons)
            record_rows = [record_row(writer, r, person_ids[r.subject], None, sources) for r in batch.records]
            await writer.insert("credit_records", RECORD_COLUMNS, record_rows)
            n_records += len(record_rows)
            logger.info("demo seed: %d persons, %d records written", len(person_ids), n_records)
            batch = await pending if pending is not None else produce(start)
            pending = None
    finally:
        # A worker thread cannot be cancelled: let a batch in progress finish before unwinding.
        if pending is not None and not pending.done():
            await asyncio.wait([pending])

    n_enterprises = 0
    firms = generate_enterprises(rngs.enterprises, enterprises, person_birth_years=birth_years)
    for firm_batch in batched(firms, CHUNK_SIZE):
        rows = [
            (e.public_id, e.name, cipher.encrypt("uscc", e.uscc), cipher.lookup_hash("uscc", e.uscc), e.industry,
             e.region_code, writer.day(e.registered_on), e.registered_capital_fen,
             None if e.representative is None else person_ids[e.representative], "active", loaded_at)
            for e in firm_batch
        ]
        ids = await writer.insert_returning_ids("enterprises", ENTERPRISE_COLUMNS, rows)
        record_rows = [
            record_row(writer, r, None, ids[e.public_id], sources)
            for i, e in enumerate(firm_batch, start=n_enterprises)
            for r in records.for_enterprise(i, e)
        ]
        await writer.insert("credit_records", RECORD_COLUMNS, record_rows)
        n_enterprises += len(firm_batch)
        n_records += len(record_rows)
        logger.info("demo seed: %d enterprises, %d records written", n_enterprises, n_records)
    return len(person_ids), n_enterprises, n_records


@dataclass
class SeedReport:
    """What a seed run did, with the credentials it issued (shown once, never stored in clear)."""

    persons: int
    enterprises: int
    records: int
    seconds: float
    partners: list[dict[str, str | None]]  # name, kind, client_id, client_secret, scenario
    operators: list[dict[str, str | None]]  # username, password (None if it already existed), role
    seed: int | None = None
    skipped: str | None = None  # why the registry was left as it was
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        """Human-readable summary for the CLI. Prints secrets created by this run, nothing else sensitive."""
        lines: list[str] = []
        if self.skipped:
            lines.append(f"demo city: registry left unchanged ({self.skipped})")
        else:
            lines.append(
                f"demo city (seed {self.seed}): {self.persons:,} persons, {self.enterprises:,} enterprises, "
                f"{self.records:,} credit records in {self.seconds:.1f} s"
            )
        if self.partners:
            lines += ["", "partners:"]
            width = max(len(p["name"] or "") for p in self.partners)
            for p in self.partners:
                kind = p["kind"] or ""
                if p["scenario"]:
                    kind += f"/{p['scenario']}"
                secret = p["client_secret"] or "(existing partner, secret not shown)"
                # Pad by display width: CJK characters take two columns.
                name = p["name"] or ""
                lines.append(f"  {name}{' ' * 2 * (width - len(name))}  {kind:<20} {p['client_id'] or '':<26} {secret}")
        if self.operators:
            lines += ["", "operators:"]
            for op in self.operators:
                password = op.get("password") or "(existing account, password not shown)"
                lines.append(f"  {op['username']:<14} {op['role']:<14} {password}")
        if any(p["client_secret"] for p in self.partners) or any(op.get("password") for op in self.operators):
            lines += ["", "secrets and passwords are shown only once: store them now."]
        lines += self.notes
        return "\n".join(lines)


async def _sync_lists() -> None:
    """Put subjects whose seeded records call for it (e.g. 失信被执行人) on the matching credit lists."""
    rows = await CreditRecord.select(CreditRecord.subject_kind, CreditRecord.person, CreditRecord.enterprise,
                                     CreditRecord.source).where(
        CreditRecord.category.is_in(list(RECORD_LISTS)) & CreditRecord.status.is_in(list(LISTING_RECORD_STATUSES)))
    for row in rows:
        subject = row["person"] if row["subject_kind"] == "person" else row["enterprise"]
        await sync_record_lists(subjects=[(row["subject_kind"], subject)], list_codes=RECORD_LISTS.values(),
                                source=row["source"])


async def finish_seed(planned: list[PlannedPartner], *, with_accounts: bool
                      ) -> tuple[list[dict[str, str | None]], list[dict[str, str | None]]]:
    """What every seed ends with: catalogs (measures, scenarios), the demo partners and their products,
    the demo operators. Idempotent."""
    await seed_default_measures()
    await seed_default_scenarios()
    partners = await create_partners(planned, create=with_accounts)
    for bank in (p for p in partners if p["kind"] == "bank"):  # the demo bank's products (金融超市)
        await seed_demo_products(bank_client_id=str(bank["client_id"]), bank_name=str(bank["name"]))
    operators = await ensure_operators() if with_accounts else []
    return partners, operators


async def seed_demo_city(
    *, persons: int, enterprises: int, seed: int, cipher: FieldCipher, engine: Engine[Any],
    with_accounts: bool = True,
) -> SeedReport:
    """Fill an empty registry with a deterministic demo city and create the demo partners and operator.

    Args:
        persons: citizens to generate (each with about seven credit records).
        enterprises: enterprises to generate (each with about eight credit records).
        seed: the same seed always gives the same persons, enterprises and records (public ids included).
        cipher: encrypts id numbers, USCCs and phones and computes their lookup hashes.
        engine: the Piccolo engine the tables are bound to (PostgreSQL or SQLite), already migrated.
        with_accounts: also create the demo partners and the operator (after the registry load, so a
            failed load issues no secret). Partners and the operator that already exist (same name and
            kind / same username) are kept and reported without secrets. Records always name the data
            sources' client ids: the existing partners', or the ids the seed gives them.

    Returns:
        Counts, duration and the credentials issued by this run. If the registry already holds persons,
        enterprises or records, nothing is generated and `skipped` says so.
    """
    started = time.perf_counter()
    rngs = streams(seed)
    planned = await plan_partners(seed)
    sources = {p.spec.source: p.client_id for p in planned if p.spec.source}
    counts: tuple[int, int, int] | None = None
    if await _registry_is_empty():
        async with open_writer(engine) as writer:
            counts = await _load_registry(writer, rngs, persons=persons, enterprises=enterprises,
                                          cipher=cipher, sources=sources)
        if isinstance(engine, PostgresEngine):
            # Fresh statistics so the planner uses the new indexes right away, not after autovacuum.
            await engine.run_ddl(f"ANALYZE {', '.join(SEEDED_TABLES)}")
        await _sync_lists()
    partners, operators = await finish_seed(planned, with_accounts=with_accounts)
    if counts is None:
        logger.info("demo seed skipped: the registry is not empty")
        return SeedReport(0, 0, 0, time.perf_counter() - started, partners, operators, seed=seed,
                          skipped="the registry already holds data; the demo city is only seeded into an "
                                  "empty database")
    seconds = time.perf_counter() - started
    logger.info("demo seed done: %d persons, %d enterprises, %d records in %.1f s", *counts, seconds)
    return SeedReport(*counts, seconds, partners, operators, seed=seed)

