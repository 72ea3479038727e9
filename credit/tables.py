"""Storage for the credit core: the citizen and enterprise registries and credit records.

Identity numbers (公民身份号码, 统一社会信用代码) and phones are stored encrypted (AES-GCM, see
`credit.identity.FieldCipher`) and found through a keyed hash; they never appear in plain text.
"""

from __future__ import annotations

from piccolo.columns import JSON, BigInt, Date, ForeignKey, Integer, SmallInt, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Person(Table, tablename="persons"):
    """A natural person in the city's citizen registry (fed by the identity data source)."""

    public_id = Varchar(length=32, unique=True, index=True)
    name = Varchar(length=64)
    id_number_hash = Varchar(length=64, unique=True, index=True)
    id_number_enc = Text()
    gender = Varchar(length=1)
    birth_date = Date()
    region_code = Varchar(length=6, index=True)
    phone_hash = Varchar(length=64, null=True, index=True)
    phone_enc = Text(null=True)
    created_at = Timestamptz(default=TimestamptzNow())


class Enterprise(Table, tablename="enterprises"):
    """A market entity in the registry, identified by its 统一社会信用代码 (USCC)."""

    public_id = Varchar(length=32, unique=True, index=True)
    name = Varchar(length=128)
    uscc_hash = Varchar(length=64, unique=True, index=True)
    uscc_enc = Text()
    industry = Varchar(length=1)  # GB/T 4754 section letter
    region_code = Varchar(length=6, index=True)
    registered_on = Date()
    registered_capital_fen = BigInt(default=0)
    legal_representative = ForeignKey(references=Person, null=True, index=True)
    status = Varchar(length=16, default="active")
    created_at = Timestamptz(default=TimestamptzNow())


class CreditRecord(Table, tablename="credit_records"):
    """One credit fact about a person or an enterprise, pushed by a data source.

    `source` is the data source's partner client id (the credit core does not depend on the
    partner registry); (`source`, `source_ref`) is unique so that re-sending corrects, never duplicates.
    """

    public_id = Varchar(length=32, unique=True, index=True)
    subject_kind = Varchar(length=10)  # "person" | "enterprise"
    person = ForeignKey(references=Person, null=True, index=True)
    enterprise = ForeignKey(references=Enterprise, null=True, index=True)
    category = Varchar(length=40)
    polarity = SmallInt()  # +1 positive, -1 negative
    severity = Varchar(length=10)  # minor | general | serious
    dimension = Varchar(length=16)
    title = Varchar(length=200)
    source = Varchar(length=64)
    source_ref = Varchar(length=128)
    occurred_at = Timestamptz()
    status = Varchar(length=12, default="active")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class CurrentScore(Table, tablename="current_scores"):
    """The latest score of each person (one row per person), kept in step with their records."""

    person = ForeignKey(references=Person, unique=True, index=True)
    total = SmallInt()
    tier = Varchar(length=3)
    dimensions = JSON()
    reasons = JSON()
    objected_records = SmallInt(default=0)
    model_version = Varchar(length=24)
    as_of = Timestamptz()


class ScoreSnapshot(Table, tablename="score_snapshots"):
    """Score history: a row whenever a person's total or tier changes (and the first score)."""

    person = ForeignKey(references=Person, index=True)
    total = SmallInt()
    tier = Varchar(length=3)
    dimensions = JSON()
    reasons = JSON()
    model_version = Varchar(length=24)
    trigger = Varchar(length=24)  # record_change | recompute | objection | repair
    as_of = Timestamptz(index=True)


class PendingRescore(Table, tablename="pending_rescores"):
    """A person whose records changed and whose score has not been recomputed since.

    Written in the same transaction as the change, so a crash between the commit and the re-scoring
    cannot lose it; deleted once the score is recomputed. `token` changes at every new mark, so a
    re-scoring that read an older mark never deletes a newer one. Until `due_at` the request that wrote
    the mark re-scores itself; from then on the background job may take it.
    """

    person = ForeignKey(references=Person, unique=True, index=True)
    token = Varchar(length=32)
    trigger = Varchar(length=24)
    marked_at = Timestamptz()
    due_at = Timestamptz(index=True)


class Authorization(Table, tablename="authorizations"):
    """A subject's consent for one partner, one purpose and a set of scopes (DESIGN §3).

    Created by the partner as `awaiting_authorization`; decided by the subject. A request naming a
    subject that does not exist is stored all the same (unmatched) so the partner cannot tell.
    """

    public_id = Varchar(length=32, unique=True, index=True)
    partner_client_id = Varchar(length=40, index=True)
    partner_name = Varchar(length=128)
    partner_kind = Varchar(length=16)
    subject_kind = Varchar(length=10)
    person = ForeignKey(references=Person, null=True, index=True)
    enterprise = ForeignKey(references=Enterprise, null=True, index=True)
    purpose = Varchar(length=40)
    scopes = Text()
    status = Varchar(length=24, index=True)
    daily_cap = Integer()
    validity_days = Integer()
    request_expires_at = Timestamptz()
    valid_until = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    decided_at = Timestamptz(null=True, default=None)
    ended_at = Timestamptz(null=True, default=None)
    ended_reason = Varchar(length=200, null=True, default=None)


class OutboxEvent(Table, tablename="outbox_events"):
    """Transactional outbox: events written with the change that caused them, delivered later."""

    public_id = Varchar(length=32, unique=True, index=True)
    topic = Varchar(length=48)
    aggregate_id = Varchar(length=40, index=True)  # e.g. the authorization the event is about
    recipient = Varchar(length=40, index=True)  # partner client id, or "citizen:<account>" for notices
    payload = JSON()
    status = Varchar(length=12, default="pending", index=True)
    attempts = SmallInt(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow())
    created_at = Timestamptz(default=TimestamptzNow())
    delivered_at = Timestamptz(null=True, default=None)


class LedgerEntry(Table, tablename="access_ledger"):
    """One read of a subject's credit data by someone other than the subject. Append-only, hash-chained.

    `hash = SHA-256(canonical entry including prev_hash)`; no code path updates or deletes rows.
    """

    seq = BigInt(unique=True, index=True)
    at = Timestamptz()
    actor_kind = Varchar(length=16)
    actor_id = Varchar(length=40)
    actor_name = Varchar(length=128)
    actor_type = Varchar(length=16)
    subject_kind = Varchar(length=10)
    subject_id = Varchar(length=32, index=True)
    action = Varchar(length=32)
    purpose = Varchar(length=40, null=True, default=None)
    authorization_id = Varchar(length=32, null=True, default=None)
    outcome = Varchar(length=40)
    fields = Text(default="")
    result_digest = Varchar(length=64)
    prev_hash = Varchar(length=64)
    hash = Varchar(length=64)


class LedgerCheckpoint(Table, tablename="ledger_checkpoints"):
    """A signed statement (EdDSA JWS) of the chain head at `seq`."""

    seq = BigInt(index=True)
    hash = Varchar(length=64)
    signature = Text()
    created_at = Timestamptz(default=TimestamptzNow())


class Objection(Table, tablename="objections"):
    """A subject's dispute (异议) of one of their records; the record is flagged while it is open."""

    public_id = Varchar(length=32, unique=True, index=True)
    record = ForeignKey(references=CreditRecord, index=True)
    person = ForeignKey(references=Person, index=True)
    reason = Text()
    status = Varchar(length=12, default="open", index=True)  # open | upheld | rejected
    record_status_before = Varchar(length=12)
    due_at = Timestamptz()
    created_at = Timestamptz(default=TimestamptzNow())
    decided_at = Timestamptz(null=True, default=None)
    decided_by = Varchar(length=32, null=True, default=None)
    decision_note = Text(null=True, default=None)


class Repair(Table, tablename="repairs"):
    """A subject's application for credit repair (信用修复) of a negative record."""

    public_id = Varchar(length=32, unique=True, index=True)
    record = ForeignKey(references=CreditRecord, index=True)
    person = ForeignKey(references=Person, index=True)
    statement = Text()
    status = Varchar(length=12, default="pending", index=True)  # pending | approved | rejected
    created_at = Timestamptz(default=TimestamptzNow())
    decided_at = Timestamptz(null=True, default=None)
    decided_by = Varchar(length=32, null=True, default=None)
    decision_note = Text(null=True, default=None)


class CreditListEntry(Table, tablename="credit_list_entries"):
    """Membership of a red list (守信激励) or black list (失信惩戒), e.g. 失信被执行人名单."""

    public_id = Varchar(length=32, unique=True, index=True)
    list_kind = Varchar(length=8)  # red | black
    list_code = Varchar(length=40)  # e.g. dishonest_executee, tax_a_grade
    list_name = Varchar(length=64)
    subject_kind = Varchar(length=10)
    person = ForeignKey(references=Person, null=True, index=True)
    enterprise = ForeignKey(references=Enterprise, null=True, index=True)
    reason = Text(default="")
    source = Varchar(length=64)
    listed_at = Timestamptz()
    delisted_at = Timestamptz(null=True, default=None)


class Measure(Table, tablename="measures"):
    """A joint reward or punishment measure (联合奖惩措施) from the operator-managed catalog."""

    code = Varchar(length=40, unique=True, index=True)
    name = Varchar(length=128)
    kind = Varchar(length=12)  # reward | punishment
    mandatory = Varchar(length=1, default="N")  # Y mandatory, N advisory
    list_code = Varchar(length=40, index=True)  # which list membership triggers it
    business_types = Text(default="")  # space-separated business types it applies to; empty = all
    basis = Text(default="")  # legal or policy basis
    status = Varchar(length=12, default="active")
    created_at = Timestamptz(default=TimestamptzNow())


class CreditCheck(Table, tablename="credit_checks"):
    """A department's credit check (联合奖惩核查) before a business step, and the measure it applied."""

    public_id = Varchar(length=32, unique=True, index=True)
    department_client_id = Varchar(length=40, index=True)
    subject_kind = Varchar(length=10)
    person = ForeignKey(references=Person, null=True, index=True)
    enterprise = ForeignKey(references=Enterprise, null=True, index=True)
    business_type = Varchar(length=40)
    result = JSON()
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    applied_measure = Varchar(length=40, null=True, default=None)
    feedback_note = Text(null=True, default=None)
    feedback_at = Timestamptz(null=True, default=None)


class DailyStat(Table, tablename="daily_stats"):
    """Policy indicators per day, kept up to date by the background job so reads stay cheap."""

    day = Date(index=True)
    metric = Varchar(length=40)
    value = BigInt(default=0)
    updated_at = Timestamptz(default=TimestamptzNow())
