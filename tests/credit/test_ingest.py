"""Data-source ingest through HTTP: JSON and NDJSON batches, idempotency, corrections, per-row rejections,
concurrency, and that a source only ever writes its own records."""

from __future__ import annotations

import asyncio

from credit.tables import CreditRecord, ScoreSnapshot
from tests.factories import (
    bound_citizen,
    id_number,
    partner_session,
    push_records,
    record_row,
    registry_enterprise,
    registry_person,
)

PROBLEM = "application/problem+json"


async def _my_records(client, citizen) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    r = await client.get("/v1/me/records", headers=citizen.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_json_array_and_ndjson_batches_land(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="韩一")
    enterprise = await registry_enterprise(ctx)
    source_id, _, source = await partner_session(client, kind="data_source", name="嘉兴市市场监督管理局")

    r = await push_records(client, source, [
        record_row(citizen.person, category="administrative_penalty", title="无照经营被处以罚款"),
        record_row(enterprise, category="tax_grade_a", title="2025年度纳税信用A级"),
    ])
    assert r.status_code == 200, r.text
    assert r.json() == {"summary": {"accepted": 2, "updated": 0, "duplicate": 0, "rejected": 0},
                        "rejected_rows": [], "rescored_persons": 1}

    r = await push_records(client, source, [record_row(citizen.person, category="volunteer_service",
                                                       title="社区志愿服务8小时", days_ago=3)], ndjson=True)
    assert r.status_code == 200, r.text
    assert r.json()["summary"] == {"accepted": 1, "updated": 0, "duplicate": 0, "rejected": 0}

    records = await _my_records(client, citizen)
    assert {(rec["category"], rec["source"]) for rec in records} == {
        ("administrative_penalty", source_id), ("volunteer_service", source_id)}
    stored = await CreditRecord.select(CreditRecord.subject_kind, CreditRecord.enterprise).where(
        (CreditRecord.source == source_id) & (CreditRecord.category == "tax_grade_a")).first()
    assert stored is not None
    assert stored["subject_kind"] == "enterprise"
    assert stored["enterprise"] is not None
    history = (await client.get("/v1/me/score/history", headers=citizen.headers)).json()["items"]
    assert history
    assert history[0]["trigger"] == "record_change"


async def test_same_batch_twice_is_all_duplicate(client, ctx) -> None:
    people = [await registry_person(ctx, name=n) for n in ("赵二", "钱三", "孙四")]
    _, _, source = await partner_session(client, kind="data_source")
    rows = [record_row(p, category="utility_arrears", title="水费欠缴") for p in people]
    first = await push_records(client, source, rows)
    assert first.json()["summary"] == {"accepted": 3, "updated": 0, "duplicate": 0, "rejected": 0}
    again = await push_records(client, source, rows)
    assert again.json()["summary"] == {"accepted": 0, "updated": 0, "duplicate": 3, "rejected": 0}
    assert again.json()["rescored_persons"] == 0
    as_ndjson = await push_records(client, source, rows, ndjson=True)
    assert as_ndjson.json()["summary"]["duplicate"] == 3


async def test_corrections_update_the_record_and_rescore(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="李五")
    _, _, source = await partner_session(client, kind="data_source")
    row = record_row(citizen.person, category="contract_default", title="租赁合同违约", severity="minor")
    assert (await push_records(client, source, [row])).json()["summary"]["accepted"] == 1
    before = (await client.get("/v1/me/score", headers=citizen.headers)).json()["total"]

    corrected = {**row, "severity": "serious", "title": "租赁合同严重违约"}
    r = await push_records(client, source, [corrected])
    assert r.json()["summary"] == {"accepted": 0, "updated": 1, "duplicate": 0, "rejected": 0}
    assert r.json()["rescored_persons"] == 1
    after = (await client.get("/v1/me/score", headers=citizen.headers)).json()["total"]
    assert after < before
    (record,) = await _my_records(client, citizen)
    assert (record["title"], record["severity"], record["status"]) == ("租赁合同严重违约", "serious", "active")

    withdrawn = await push_records(client, source, [{**corrected, "status": "withdrawn"}])
    assert withdrawn.json()["summary"]["updated"] == 1
    (record,) = await _my_records(client, citizen)
    assert record["status"] == "withdrawn"
    assert (await client.get("/v1/me/score", headers=citizen.headers)).json()["total"] >= before


async def test_bad_rows_are_rejected_with_line_numbers_and_good_rows_land(client, ctx) -> None:
    person = await registry_person(ctx, name="周六")
    enterprise = await registry_enterprise(ctx)
    _, _, source = await partner_session(client, kind="data_source")
    bad_id = person.id_number[:-1] + ("0" if person.id_number[-1] != "0" else "1")
    unknown = id_number(birth="19900404")
    no_tz = record_row(person)
    no_tz["occurred_at"] = "2024-03-01T10:00:00"
    rows = [
        record_row(person, source_ref="good-1"),
        {**record_row(person), "subject": {"kind": "person", "id_number": bad_id, "name": person.name}},
        record_row(person, category="jaywalking"),
        record_row(person, days_ago=-3),
        record_row(enterprise, category="volunteer_service"),
        no_tz,
        {**record_row(person), "subject": {"kind": "person", "id_number": unknown}},
        {**record_row(person), "subject": {"kind": "person", "id_number": person.id_number, "name": "别人"}},
        {**record_row(person), "severity": "catastrophic"},
        {**record_row(person), "extra": 1},
        record_row(person, source_ref="good-1", title="again in one batch"),
        record_row(enterprise, source_ref="good-2", category="administrative_penalty"),
    ]
    r = await push_records(client, source, rows)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["summary"] == {"accepted": 2, "updated": 0, "duplicate": 0, "rejected": 10}
    codes = {row["line"]: row["code"] for row in body["rejected_rows"]}
    assert codes == {2: "invalid_id_number", 3: "unknown_category", 4: "occurred_at_in_future",
                     5: "category_not_for_subject", 6: "occurred_at_without_timezone", 7: "subject_not_found",
                     8: "subject_not_found", 9: "invalid_row", 10: "invalid_row", 11: "duplicate_in_batch"}
    by_line = {row["line"]: row for row in body["rejected_rows"]}
    assert "checksum" in by_line[2]["reason"]
    assert by_line[3]["source_ref"] == rows[2]["source_ref"]
    assert "extra" in by_line[10]["reason"]
    assert all(row["reason"] for row in body["rejected_rows"])
    # Identity numbers never come back, not even the invalid one the source sent.
    for number in (person.id_number, bad_id, unknown, enterprise.uscc):
        assert number not in r.text


async def test_malformed_ndjson_lines_are_rejected_per_line(client, ctx) -> None:
    person = await registry_person(ctx, name="吴七")
    _, _, source = await partner_session(client, kind="data_source")
    lines = [record_row(person), '{"source_ref": "broken", ', "", record_row(person), "[1, 2]",
             record_row(person, category="honour", title="市级文明家庭")]
    r = await push_records(client, source, lines, ndjson=True)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["summary"] == {"accepted": 3, "updated": 0, "duplicate": 0, "rejected": 2}
    assert [(row["line"], row["code"]) for row in body["rejected_rows"]] == [(2, "malformed_line"),
                                                                            (5, "invalid_row")]
    assert "source_ref" not in body["rejected_rows"][0]


async def test_concurrent_identical_batches_create_no_duplicates(client, ctx) -> None:
    people = [await registry_person(ctx, name=f"郑{n}") for n in "一二三四五"]
    source_id, _, source = await partner_session(client, kind="data_source")
    rows = [record_row(p, source_ref=f"concurrent-{i}-{j}", category="tax_arrears", title="欠缴税款")
            for i, p in enumerate(people) for j in range(4)]
    answers = await asyncio.gather(*(push_records(client, source, rows) for _ in range(4)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    summaries = [a.json()["summary"] for a in answers]
    assert sum(s["accepted"] for s in summaries) == len(rows)
    assert sum(s["duplicate"] for s in summaries) == 3 * len(rows)
    assert all(s["rejected"] == 0 and s["updated"] == 0 for s in summaries)
    assert await CreditRecord.count().where(CreditRecord.source == source_id) == len(rows)
    # Each person was rescored once after the batch that wrote their records.
    assert await ScoreSnapshot.count().where(ScoreSnapshot.trigger == "record_change") >= len(people)


async def test_a_source_only_writes_its_own_records(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="王八")
    source_a, _, court = await partner_session(client, kind="data_source", name="嘉兴市中级人民法院")
    source_b, _, other = await partner_session(client, kind="data_source", name="另一数据源")
    row = record_row(citizen.person, source_ref="(2025)浙0402民初1号", category="court_judgment", title="判决未履行")
    assert (await push_records(client, court, [row])).json()["summary"]["accepted"] == 1

    # Naming another source is not a field a row may carry.
    spoofed = await push_records(client, other, [{**row, "status": "withdrawn", "source": source_a}])
    assert spoofed.json()["rejected_rows"][0]["code"] == "invalid_row"
    # The same reference from another source is that source's own, separate record.
    own = await push_records(client, other, [{**row, "status": "withdrawn"}])
    assert own.json()["summary"]["accepted"] == 1
    stored = {r["source"]: r["status"] for r in await CreditRecord.select(CreditRecord.source, CreditRecord.status)
              .where(CreditRecord.source_ref == row["source_ref"])}
    assert stored == {source_a: "active", source_b: "withdrawn"}

    _, _, bank = await partner_session(client, kind="bank")
    refused = await push_records(client, bank, [row])
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"


async def test_records_in_the_subjects_process_are_not_changed(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="冯九")
    _, _, source = await partner_session(client, kind="data_source")
    row = record_row(citizen.person, category="administrative_penalty", title="销售过期食品被处以罚款")
    await push_records(client, source, [row])
    (record,) = await _my_records(client, citizen)
    filed = await client.post("/v1/me/objections", headers=citizen.headers,
                              json={"record_id": record["id"], "reason": "该处罚已被撤销"})
    assert filed.status_code == 201, filed.text

    changed = await push_records(client, source, [{**row, "severity": "serious"}])
    assert changed.json()["summary"]["rejected"] == 1
    assert changed.json()["rejected_rows"][0]["code"] == "record_under_objection"
    same = await push_records(client, source, [row])
    assert same.json()["summary"]["duplicate"] == 1
    (record,) = await _my_records(client, citizen)
    assert (record["status"], record["severity"]) == ("objected", "general")


async def test_moving_a_record_to_another_subject_is_refused(client, ctx) -> None:
    first, second = await registry_person(ctx, name="陈十"), await registry_person(ctx, name="褚十一")
    _, _, source = await partner_session(client, kind="data_source")
    row = record_row(first, source_ref="move-me")
    await push_records(client, source, [row])
    moved = await push_records(client, source, [record_row(second, source_ref="move-me")])
    assert moved.json()["rejected_rows"][0]["code"] == "subject_changed"


async def test_batch_level_problems(client, ctx, override_settings) -> None:
    person = await registry_person(ctx, name="卫十二")
    _, _, source = await partner_session(client, kind="data_source")

    def problem(r, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["code"] == code

    with override_settings(ingest_max_rows=3):
        problem(await push_records(client, source, [record_row(person) for _ in range(4)]), 422, "too_many_rows")
        problem(await push_records(client, source, [record_row(person) for _ in range(4)], ndjson=True),
                422, "too_many_rows")
    problem(await push_records(client, source, []), 422, "empty_batch")
    problem(await push_records(client, source, [], ndjson=True), 422, "empty_batch")
    problem(await client.post("/v1/records/batch", headers=source.headers, json={"rows": []}), 422,
            "batch_not_array")
    problem(await client.post("/v1/records/batch", headers={**source.headers, "content-type": "application/json"},
                              content=b'[{"source_ref": '), 400, "malformed_json")
    problem(await client.post("/v1/records/batch", headers={**source.headers, "content-type": "text/csv"},
                              content=b"a,b\n1,2\n"), 415, "unsupported_media_type")
    big = b"[" + b",".join([b'{"source_ref": "' + b"x" * 100 + b'"}'] * 11000) + b"]"
    problem(await client.post("/v1/records/batch", headers={**source.headers, "content-type": "application/json"},
                              content=big), 413, "payload_too_large")
    problem(await client.post("/v1/records/batch", json=[record_row(person)]), 401, "missing_token")
