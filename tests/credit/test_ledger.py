"""The access ledger: one durable, chained entry per read; `xinyi ledger verify` catches any tampering."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess

import jwt

from credit.ledger import CHECKPOINT_TYP, AccessEvent, LedgerWriter, create_checkpoint
from credit.tables import LedgerEntry
from tests.factories import authorization_for, bound_citizen, partner_session
from tests.servers import XINYI


def _verify() -> subprocess.CompletedProcess[str]:
    return subprocess.run([XINYI, "ledger", "verify"], env=dict(os.environ), capture_output=True, text=True,
                          timeout=120, check=False)


async def _queries(client, ctx, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    citizen = await bound_citizen(client, ctx, name="蒋八")
    _, _, bank = await partner_session(client, kind="bank")
    authorization_id = await authorization_for(client, bank, citizen, purpose="deposit_waiver", scopes=["tier"])
    results = await asyncio.gather(*(client.post("/v1/scores/query", headers=bank.headers,
                                                 json={"authorization_id": authorization_id}) for _ in range(n)))
    assert all(r.status_code == 200 for r in results), [r.text for r in results if r.status_code != 200]
    return sorted(r.json()["ledger_seq"] for r in results)


async def test_concurrent_reads_get_contiguous_sequence_numbers(client, ctx) -> None:
    seqs = await _queries(client, ctx, 40)  # cap 50/day for deposit_waiver
    assert seqs == list(range(seqs[0], seqs[0] + 40))
    rows = await LedgerEntry.select(LedgerEntry.seq, LedgerEntry.prev_hash, LedgerEntry.hash).where(
        LedgerEntry.seq.is_in(seqs)).order_by(LedgerEntry.seq)
    for before, after in itertools.pairwise(rows):
        assert after["prev_hash"] == before["hash"]


async def test_signed_checkpoint_is_published_and_verifiable(client, ctx) -> None:
    await _queries(client, ctx, 2)
    await create_checkpoint(sign=lambda c: ctx.tokens.sign_document(c, typ=CHECKPOINT_TYP))
    latest = (await client.get("/v1/ledger/checkpoints/latest")).json()
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    claims = jwt.decode(latest["signature"], jwt.PyJWK(keys[0]).key, algorithms=["EdDSA"])
    assert claims["seq"] == latest["seq"]
    assert claims["hash"] == latest["hash"]
    head = await LedgerEntry.select(LedgerEntry.seq).order_by(LedgerEntry.seq, ascending=False).first()
    assert latest["seq"] == head["seq"]
    assert _verify().returncode == 0


async def test_verify_names_the_first_edited_entry(client, ctx) -> None:
    seqs = await _queries(client, ctx, 3)
    target = seqs[1]
    original = await LedgerEntry.select(LedgerEntry.actor_name).where(LedgerEntry.seq == target).first()
    await LedgerEntry.update({LedgerEntry.actor_name: "someone else"}).where(LedgerEntry.seq == target)
    try:
        done = _verify()
        assert done.returncode == 1
        assert f"seq {target}:" in done.stdout
    finally:
        await LedgerEntry.update({LedgerEntry.actor_name: original["actor_name"]}).where(LedgerEntry.seq == target)
    assert _verify().returncode == 0


async def test_verify_names_a_deleted_entry(client, ctx) -> None:
    seqs = await _queries(client, ctx, 3)
    target = seqs[1]
    columns = [c for c in LedgerEntry._meta.columns if c._meta.name != "id"]
    row = await LedgerEntry.select(*columns).where(LedgerEntry.seq == target).first()
    await LedgerEntry.delete().where(LedgerEntry.seq == target)
    try:
        done = _verify()
        assert done.returncode == 1
        assert f"seq {target}:" in done.stdout
    finally:
        await LedgerEntry.insert(LedgerEntry(**row))
    assert _verify().returncode == 0


async def test_verify_names_reordered_entries(client, ctx) -> None:
    seqs = await _queries(client, ctx, 3)
    a, b = seqs[0], seqs[1]

    async def swap() -> None:
        await LedgerEntry.update({LedgerEntry.seq: -1}).where(LedgerEntry.seq == a)
        await LedgerEntry.update({LedgerEntry.seq: a}).where(LedgerEntry.seq == b)
        await LedgerEntry.update({LedgerEntry.seq: b}).where(LedgerEntry.seq == -1)

    await swap()
    try:
        done = _verify()
        assert done.returncode == 1
        assert f"seq {a}:" in done.stdout
    finally:
        await swap()
    assert _verify().returncode == 0


async def test_verify_catches_a_truncated_tail_through_the_checkpoint(client, ctx) -> None:
    seqs = await _queries(client, ctx, 2)
    await create_checkpoint(sign=lambda c: ctx.tokens.sign_document(c, typ=CHECKPOINT_TYP))
    last = seqs[-1]
    columns = [c for c in LedgerEntry._meta.columns if c._meta.name != "id"]
    row = await LedgerEntry.select(*columns).where(LedgerEntry.seq == last).first()
    await LedgerEntry.delete().where(LedgerEntry.seq == last)
    try:
        done = _verify()
        assert done.returncode == 1
        assert f"seq {last}:" in done.stdout
    finally:
        await LedgerEntry.insert(LedgerEntry(**row))
    assert _verify().returncode == 0


async def test_a_writer_first_used_inside_a_transaction_keeps_appending_after_it(ctx) -> None:  # type: ignore[no-untyped-def]
    """The writer's task must not inherit its first caller's transaction: every later append would join that
    finished transaction (seen on SQLite as every ledger write failing once one had been made inside a
    transaction)."""
    writer = LedgerWriter(ctx.engine)
    event = AccessEvent(actor_kind="operator", actor_id="op_ledger_test", actor_name="测试", actor_type="auditor",
                        subject_kind="person", subject_id="psn_ledger_test", action="test.append", outcome="allowed")
    try:
        async with ctx.engine.transaction():
            first = await writer.append(event)
        later = [await writer.append(event) for _ in range(3)]
    finally:
        await writer.close()
    assert [r.seq for r in later] == sorted(r.seq for r in later)
    assert all(r.seq > first.seq for r in later)
    stored = await LedgerEntry.count().where(LedgerEntry.actor_id == "op_ledger_test")
    assert stored == 4
