"""The one settings object, read from the environment when the app (or a CLI command) starts.

Nothing here runs at import time: `Settings.from_env()` is called by the app factory and the CLI.
Development defaults are safe to run on a laptop; in production every secret must be supplied and
none may be a development placeholder.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import sys
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Annotated, Any, Literal, NamedTuple, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

import msgspec

from core.calendar import WorkingCalendar, working_calendar
from core.errors import ConfigurationError

Environment = Literal["dev", "test", "production"]

# Development placeholders are derived from these labels so every dev worker agrees on them;
# production refuses any value derived from them.
_DEV_LABELS = {
    "jwt_private_key": b"xinyi dev-only jwt signing key",
    "data_key": b"xinyi dev-only data encryption key",
    "hash_key": b"xinyi dev-only lookup hash key",
    "consent_key": b"xinyi dev-only partner open-id key",
}


def dev_secret(name: str) -> bytes:
    """The 32-byte development placeholder for the secret `name` (never valid in production)."""
    return hashlib.sha256(_DEV_LABELS[name]).digest()


def _env(var: str, description: str, **extra: Any) -> msgspec.Meta:
    """The declaration of one setting: the environment variable it is read from and what it means.

    `extra` tells the reader (`_read_environment`) and the reference (`configuration_markdown`) what they cannot
    see in the type: `parse` names a syntax of the variable (see `_PARSERS`), `production` the default when
    XINYI_ENV=production, `at_most` a cap applied silently, `scale` a unit the variable is given in (the field
    holds the value divided by it), `shown` the default as the reference prints it.
    """
    return msgspec.Meta(description=description, extra={"env": var, **extra})


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Typed runtime configuration, declared once: each field carries its default, its environment variable and
    its meaning. `from_env` reads it, docs/configuration.md is generated from it (`python -m core.settings
    --markdown`)."""

    env: Annotated[Environment, _env(
        "XINYI_ENV", "`dev`, `test` or `production` (production refuses placeholders and missing secrets)")] = "dev"
    database_url: Annotated[str | None, _env(
        "DATABASE_URL", "PostgreSQL DSN; without it, SQLite at `XINYI_SQLITE_PATH`")] = None
    sqlite_path: Annotated[str, _env("XINYI_SQLITE_PATH", "embedded database file")] = "xinyi.sqlite"
    redis_url: Annotated[str | None, _env(
        "REDIS_URL", "Redis for caches, limits, single-use codes, revocations; without it an in-process store "
        "(one process only)")] = None
    redis_namespace: Annotated[str, _env(
        "XINYI_REDIS_NAMESPACE", "prefix of every Redis key (`<ns>:<domain>:<key>`)")] = "xinyi"

    jwt_issuer: Annotated[str, _env("XINYI_JWT_ISSUER", "required `iss` of access tokens")] = "https://xinyi.local"
    # Where partners reach this service: the absolute URLs of the OAuth metadata document are built from it,
    # never from a request's Host header.
    public_url: Annotated[str, _env(
        "XINYI_PUBLIC_URL", "the base URL partners reach; the OAuth metadata's endpoint URLs are built from it "
        "(never from the Host header). Production: https and equal to the issuer (RFC 8414 §3.3)",
        shown="`http://127.0.0.1:8000` (production: `XINYI_JWT_ISSUER`)")] = "http://127.0.0.1:8000"
    jwt_audience: Annotated[str, _env("XINYI_JWT_AUDIENCE", "required `aud` of access tokens")] = "xinyi-api"
    jwt_private_key: Annotated[bytes, _env(
        "XINYI_JWT_PRIVATE_KEY", "base64 32-byte Ed25519 seed signing access tokens (EdDSA)",
        parse="secret")] = b""
    jwt_key_id: Annotated[str, _env(
        "XINYI_JWT_KEY_ID", "`kid` of the signing key in `/.well-known/jwks.json`")] = "xinyi-1"
    jwt_leeway_seconds: Annotated[int, _env(
        "XINYI_JWT_LEEWAY_SECONDS", "clock leeway (capped at 60)", at_most=60)] = 30
    access_token_ttl_seconds: Annotated[int, _env(
        "XINYI_ACCESS_TOKEN_TTL_SECONDS", "citizen and operator access tokens")] = 900
    partner_token_ttl_seconds: Annotated[int, _env(
        "XINYI_PARTNER_TOKEN_TTL_SECONDS", "partner access tokens")] = 3600
    refresh_token_ttl_seconds: Annotated[int, _env(
        "XINYI_REFRESH_TOKEN_TTL_SECONDS", "refresh tokens (rotating; reuse revokes the family)")] = 30 * 24 * 3600

    data_key: Annotated[bytes, _env(
        "XINYI_DATA_KEY", "base64 32-byte AES-256-GCM key for id numbers, USCCs and phones at rest",
        parse="secret")] = b""
    hash_key: Annotated[bytes, _env(
        "XINYI_HASH_KEY", "base64 32-byte HMAC key for look-ups of those values", parse="secret")] = b""
    consent_key: Annotated[bytes, _env(
        "XINYI_CONSENT_KEY", "base64 32-byte key deriving partner-scoped open ids", parse="secret")] = b""

    otp_ttl_seconds: Annotated[int, _env("XINYI_OTP_TTL_SECONDS", "how long an SMS code lives")] = 300
    otp_max_attempts: Annotated[int, _env("XINYI_OTP_MAX_ATTEMPTS", "guesses one SMS code allows")] = 5
    otp_resend_seconds: Annotated[int, _env(
        "XINYI_OTP_RESEND_SECONDS", "a phone gets a new SMS code at most this often")] = 60
    otp_per_address_per_hour: Annotated[int, _env(
        "XINYI_OTP_PER_ADDRESS_PER_HOUR", "codes one client address may request per hour")] = 30
    otp_per_phone_per_day: Annotated[int, _env(
        "XINYI_OTP_PER_PHONE_PER_DAY", "codes one phone may receive per day")] = 10
    identity_bind_attempts_per_day: Annotated[int, _env(
        "XINYI_IDENTITY_BIND_ATTEMPTS_PER_DAY", "identity binding attempts per account")] = 10
    operator_login_attempts_per_hour: Annotated[int, _env(
        "XINYI_OPERATOR_LOGIN_ATTEMPTS_PER_HOUR", "operator password attempts per username")] = 10

    sms_adapter: Annotated[Literal["dev", "http"], _env(
        "XINYI_SMS_ADAPTER", "`dev` keeps messages in memory; `http` posts to the gateway",
        production="http")] = "dev"
    sms_gateway_url: Annotated[str | None, _env(
        "XINYI_SMS_GATEWAY_URL", "SMS gateway endpoint (required by the http adapter)")] = None
    sms_gateway_token: Annotated[str | None, _env("XINYI_SMS_GATEWAY_TOKEN", "SMS gateway bearer token")] = None
    wechat_api_base_url: Annotated[str | None, _env(
        "XINYI_WECHAT_API_BASE_URL", "WeChat API base (`https://api.weixin.qq.com`, or the simulated WeChat of the "
        "demo); without it notices are not sent as mini-program subscribe messages")] = None
    wechat_appid: Annotated[str | None, _env("XINYI_WECHAT_APPID", "the mini-program's appid")] = None
    wechat_secret: Annotated[str | None, _env(
        "XINYI_WECHAT_SECRET", "the mini-program's app secret (fetches the access token)")] = None
    wechat_notice_template_id: Annotated[str | None, _env(
        "XINYI_WECHAT_NOTICE_TEMPLATE_ID", "subscribe-message template of notices (fields thing1 title, "
        "thing2 summary, time3 time)")] = None
    notice_max_attempts: Annotated[int, _env(
        "XINYI_NOTICE_MAX_ATTEMPTS", "pushes of one notice (SMS / WeChat) before it stays in the app only")] = 6
    notice_base_delay_seconds: Annotated[int, _env(
        "XINYI_NOTICE_BASE_DELAY_SECONDS", "delay after the first failed push of a notice, doubled after each "
        "failure")] = 60
    identity_verifier_url: Annotated[str | None, _env(
        "XINYI_IDENTITY_VERIFIER_URL",
        "external identity verification service (default: the city registry is trusted)")] = None
    identity_verifier_token: Annotated[str | None, _env(
        "XINYI_IDENTITY_VERIFIER_TOKEN", "bearer token of the identity verification service")] = None
    peer_cities: Annotated[str, _env(
        "XINYI_PEER_CITIES", "peer cities whose credit passports we accept: `issuer=jwks-url` pairs separated "
        "by `;` (JWKS fetched through the SSRF guard, cached 5 min)")] = ""

    max_body_bytes: Annotated[int, _env("XINYI_MAX_BODY_BYTES", "larger bodies get 413")] = 1024 * 1024
    cors_origins: Annotated[tuple[str, ...], _env(
        "XINYI_CORS_ORIGINS", "comma-separated origins (mini-program / H5) allowed by CORS; in production https "
        "origins named one by one (no `*`)", parse="list")] = ()
    trust_forwarded_for: Annotated[bool, _env(
        "XINYI_TRUST_FORWARDED_FOR", "honour `X-Forwarded-For` (only behind a trusted proxy)")] = False
    db_pool_max: Annotated[int, _env("XINYI_DB_POOL_MAX", "PostgreSQL pool size per worker")] = 20
    # Single-process mode runs background work in the app; production runs `xinyi worker`.
    background_in_app: Annotated[bool, _env(
        "XINYI_BACKGROUND_IN_APP", "run background jobs (expiry sweeps, ledger checkpoints, webhooks) inside the "
        "app (single-process mode); production runs `xinyi worker`", production=False)] = True
    background_interval_seconds: Annotated[int, _env(
        "XINYI_BACKGROUND_INTERVAL_SECONDS", "how often background jobs run")] = 30
    webhook_allow_loopback: Annotated[bool, _env(
        "XINYI_WEBHOOK_ALLOW_LOOPBACK",
        "allow webhook endpoints on 127.0.0.1 / ::1 (local testing and the demo only)")] = False
    webhook_max_attempts: Annotated[int, _env(
        "XINYI_WEBHOOK_MAX_ATTEMPTS", "deliveries of one webhook before it becomes a dead letter")] = 8
    webhook_base_delay_seconds: Annotated[int, _env(
        "XINYI_WEBHOOK_BASE_DELAY_SECONDS",
        "delay after the first failed delivery, doubled after each failure: 8 attempts span about a day")] = 680
    webhook_timeout_seconds: Annotated[float, _env(
        "XINYI_WEBHOOK_TIMEOUT_MS", "per-delivery deadline, in milliseconds", scale=1000)] = 5.0
    webhook_max_response_bytes: Annotated[int, _env(
        "XINYI_WEBHOOK_MAX_RESPONSE_BYTES", "response size cap of a webhook delivery")] = 64 * 1024
    ingest_max_rows: Annotated[int, _env("XINYI_INGEST_MAX_ROWS", "rows per `POST /v1/records/batch`")] = 10_000
    default_rate_limit_per_second: Annotated[int, _env(
        "XINYI_DEFAULT_RATE_LIMIT_PER_SECOND", "partner rate limit unless the registry sets their own")] = 200
    default_daily_quota: Annotated[int, _env(
        "XINYI_DEFAULT_DAILY_QUOTA", "partner daily quota unless the registry sets their own")] = 1_000_000
    # 信易+ (scenarios)
    benefit_code_ttl_seconds: Annotated[int, _env(
        "XINYI_BENEFIT_CODE_TTL_SECONDS", "how long a benefit code shown as a QR lives (capped at 60)",
        at_most=60)] = 60
    verification_ttl_seconds: Annotated[int, _env(
        "XINYI_VERIFICATION_TTL_SECONDS", "a merchant redeems within this long after verifying")] = 600
    benefit_codes_per_hour: Annotated[int, _env(
        "XINYI_BENEFIT_CODES_PER_HOUR",
        "benefit codes one citizen account may ask for per hour (an app refreshes its QR)")] = 120
    credit_lines_fen: Annotated[tuple[tuple[str, int], ...], _env(
        "XINYI_CREDIT_LINES_FEN", "credit line per tier in fen, which pay-later and deposit-free orders reserve "
        "against", parse="pairs")] = (("AAA", 1_000_000), ("AA", 500_000), ("A", 200_000), ("B", 0), ("C", 0))
    credit_order_grace_days: Annotated[int, _env(
        "XINYI_CREDIT_ORDER_GRACE_DAYS",  # the bound is scenarios.orders.MAX_GRACE_DAYS
        "days a citizen has to settle a defaulted credit order before it becomes a negative record"),
        msgspec.Meta(ge=0, le=365)] = 7
    passport_ttl_seconds: Annotated[int, _env(
        "XINYI_PASSPORT_TTL_SECONDS", "how long a credit passport stays valid")] = 24 * 3600
    peer_tier_maps: Annotated[tuple[tuple[str, tuple[tuple[str, str], ...]], ...], _env(
        "XINYI_PEER_TIER_MAPS", "a peer city's tier → ours, per issuer (`issuer|AAA=AA,AA=A;*|AAA=A`); `*` "
        "applies to issuers without their own table", parse="tier_maps")] = (
        ("*", (("AAA", "AA"), ("AA", "A"), ("A", "A"), ("B", "B"), ("C", "C"))),)
    # 信易贷 (lending)
    lending_response_working_days: Annotated[int, _env(
        "XINYI_LENDING_RESPONSE_WORKING_DAYS",
        "working days (the service's working-day calendar, China time) a bank has to answer a loan application"),
        msgspec.Meta(ge=1, le=30)] = 3
    # Working-day calendar overrides (core/calendar.py): days off and make-up working days (调休) for years
    # the chinese-calendar package does not know yet, or corrections of days it does know.
    calendar_holidays: Annotated[tuple[date, ...], _env(
        "XINYI_CALENDAR_HOLIDAYS", "extra days off for the working-day calendar, e.g. "
        "`2027-01-01,2027-02-06..2027-02-12` (days and inclusive ranges, comma-separated); for years the "
        "`chinesecalendar` package does not know yet, enter the whole State Council notice of the year (any day "
        "listed makes its year known), or correct a day it does know", parse="dates")] = ()
    calendar_workdays: Annotated[tuple[date, ...], _env(
        "XINYI_CALENDAR_WORKDAYS", "make-up working days (调休 Saturdays and Sundays), same format; a day may not "
        "be in both lists", parse="dates")] = ()
    log_level: Annotated[str, _env(
        "XINYI_LOG_LEVEL", "log level (logs never carry id numbers or phones)", parse="upper")] = "INFO"

    @property
    def calendar(self) -> WorkingCalendar:
        """The service's working-day calendar: the package's holidays with these overrides."""
        return working_calendar(holidays=self.calendar_holidays, workdays=self.calendar_workdays)

    def credit_line_fen(self, tier: str) -> int:
        return dict(self.credit_lines_fen).get(tier, 0)

    def peer_tier(self, issuer: str, tier: str) -> str | None:
        """Our tier for a peer city's `tier`, through that city's table (or the default one)."""
        tables = dict(self.peer_tier_maps)
        table = dict(tables.get(issuer) or tables.get("*") or ())
        return table.get(tier)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def uses_postgres(self) -> bool:
        return bool(self.database_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from `environ` (default: the process environment) and check them.

        Raises:
            ConfigurationError: when a value is malformed, or production is asked to run on
                placeholders or without a required secret.
        """
        env = os.environ if environ is None else environ
        environment = env.get("XINYI_ENV") or "dev"
        if environment not in ("dev", "test", "production"):
            raise ConfigurationError(f"XINYI_ENV must be dev, test or production, not {environment!r}")
        production = environment == "production"
        settings = _read_environment(env, production=production)

        if production and settings.sms_adapter == "dev":
            raise ConfigurationError("the dev SMS adapter cannot run in production")
        if settings.sms_adapter == "http" and not settings.sms_gateway_url:
            raise ConfigurationError("XINYI_SMS_GATEWAY_URL is required for the http SMS adapter")
        if settings.wechat_api_base_url and not (settings.wechat_appid and settings.wechat_secret
                                                 and settings.wechat_notice_template_id):
            raise ConfigurationError("XINYI_WECHAT_API_BASE_URL needs XINYI_WECHAT_APPID, XINYI_WECHAT_SECRET and "
                                     "XINYI_WECHAT_NOTICE_TEMPLATE_ID")
        if production and not settings.database_url:
            raise ConfigurationError("DATABASE_URL is required when XINYI_ENV=production")
        if production and not settings.redis_url:
            raise ConfigurationError("REDIS_URL is required when XINYI_ENV=production")
        if both := set(settings.calendar_holidays) & set(settings.calendar_workdays):
            raise ConfigurationError(f"{min(both).isoformat()} is in both XINYI_CALENDAR_HOLIDAYS and "
                                     "XINYI_CALENDAR_WORKDAYS")
        # CORS is for the city's own mini-program and H5 origins, named one by one: a wildcard (or the
        # `null` origin of sandboxed pages and local files) would let any page call the API from a browser.
        # Litestar reads a `*` anywhere in an origin as "any characters": `https://*` admits every https page.
        if production and any(not o.startswith("https://") or "*" in o for o in settings.cors_origins):
            raise ConfigurationError("XINYI_CORS_ORIGINS must list https origins one by one in production")
        public_url = _public_url(env.get("XINYI_PUBLIC_URL"), issuer=settings.jwt_issuer, production=production)
        return msgspec.structs.replace(settings, public_url=public_url)


class _Declared(NamedTuple):
    """One field of `Settings` as declared: its name, type, default and `_env` metadata."""

    name: str
    type: Any
    default: Any
    var: str
    description: str
    extra: Mapping[str, Any]
    bounds: tuple[int | float | None, int | float | None]


def _declarations() -> list[_Declared]:
    hints = get_type_hints(Settings, include_extras=True)
    declared = []
    for field in msgspec.structs.fields(Settings):
        hint = hints[field.name]
        metas = [m for m in hint.__metadata__ if isinstance(m, msgspec.Meta)]
        meta = next(m for m in metas if m.extra and "env" in m.extra)
        ge = next((m.ge for m in metas if m.ge is not None), None)
        le = next((m.le for m in metas if m.le is not None), None)
        assert meta.extra is not None
        assert meta.description is not None
        declared.append(_Declared(field.name, hint.__origin__, field.default, meta.extra["env"], meta.description,
                                  meta.extra, (ge, le)))
    return declared


def _secret(name: str, var: str, raw: str | None, *, production: bool) -> bytes:
    if raw is None:
        if production:
            raise ConfigurationError(f"{var} is required when XINYI_ENV=production")
        return dev_secret(name)
    try:
        value = base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise ConfigurationError(f"{var} must be base64") from exc
    if len(value) != 32:
        raise ConfigurationError(f"{var} must decode to exactly 32 bytes")
    if production and value == dev_secret(name):
        raise ConfigurationError(f"{var} is the development placeholder; refusing to start")
    return value


def _read_environment(env: Mapping[str, str], *, production: bool) -> Settings:
    """Every declared variable that is set (an empty value counts as unset), in the syntax its declaration
    names, converted to the field types by msgspec (strings to numbers, literals, dates) and checked against
    the declared bounds; unset ones keep their defaults (`production` ones when XINYI_ENV=production)."""
    values: dict[str, Any] = {}
    declared = _declarations()
    for field in declared:
        raw = env.get(field.var) or None
        parse = field.extra.get("parse")
        if parse == "secret":
            values[field.name] = _secret(field.name, field.var, raw, production=production)
        elif raw is None:
            if production and "production" in field.extra:
                values[field.name] = field.extra["production"]
        elif field.type is bool:
            values[field.name] = raw in ("1", "true", "yes")
        elif "scale" in field.extra:  # given as an integer in a smaller unit
            values[field.name] = _convert(field, raw.strip(), int) / field.extra["scale"]
        elif parse is not None:
            values[field.name] = _PARSERS[parse](field.var, raw)
        else:
            values[field.name] = raw if field.type in (str, str | None) else raw.strip()
    try:
        settings = msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        match = re.search(r"\$\.(\w+)", str(exc))
        field = next(f for f in declared if match is not None and f.name == match[1])
        raise ConfigurationError(_expected(field)) from exc
    caps = {f.name: min(f.extra["at_most"], getattr(settings, f.name)) for f in declared if "at_most" in f.extra}
    return msgspec.structs.replace(settings, **caps)


def _convert(field: _Declared, raw: str, into: Any) -> Any:
    try:
        return msgspec.convert(raw, into, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigurationError(_expected(field)) from exc


def _expected(field: _Declared) -> str:
    """What a malformed value of `field` should have been."""
    low, high = field.bounds
    if low is not None and high is not None:
        return f"{field.var} must be {low}..{high}"
    if get_origin(field.type) is Literal:
        *rest, last = get_args(field.type)
        return f"{field.var} must be {', '.join(rest)} or {last}"
    if field.type is int or "scale" in field.extra:
        return f"{field.var} must be an integer"
    return f"{field.var} must be a {getattr(field.type, '__name__', field.type)}"


def _public_url(configured: str | None, *, issuer: str, production: bool) -> str:
    """`XINYI_PUBLIC_URL` (default: the issuer in production, the local server in dev): an absolute http(s) URL
    without query or fragment, kept without its trailing slash; https and equal to the issuer in production."""
    raw = (configured or (issuer if production else "http://127.0.0.1:8000")).strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigurationError("XINYI_PUBLIC_URL must be an absolute http(s) URL without query or fragment")
    public_url = raw.rstrip("/")
    if production and not public_url.startswith("https://"):
        raise ConfigurationError("XINYI_PUBLIC_URL must be an https URL in production")
    if production and public_url != issuer.rstrip("/"):
        # RFC 8414 §3.3: a client must discard metadata whose issuer is not the URL it fetched it from.
        raise ConfigurationError("XINYI_PUBLIC_URL must equal XINYI_JWT_ISSUER in production (RFC 8414 §3.3)")
    return public_url


def _pairs(var: str, raw: str) -> tuple[tuple[str, int], ...]:
    """`AAA=1000000,AA=500000` → (("AAA", 1000000), ("AA", 500000))."""
    pairs: list[tuple[str, int]] = []
    for part in raw.split(","):
        name, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise ConfigurationError(f"{var} must look like AAA=1000000,AA=500000")
        pairs.append((name.strip(), int(value.strip())))
    return tuple(pairs)


def _list(var: str, raw: str) -> tuple[str, ...]:
    """`a, b,,c` → ("a", "b", "c")."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _upper(var: str, raw: str) -> str:
    return raw.upper()


_MAX_DATE_RANGE_DAYS = 366


def _dates(var: str, raw: str) -> tuple[date, ...]:
    """`2027-01-01,2027-02-05..2027-02-11` → the days listed, ranges inclusive, sorted and without repeats."""
    days: set[date] = set()
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        first_text, sep, last_text = part.partition("..")
        try:
            first = date.fromisoformat(first_text.strip())
            last = date.fromisoformat(last_text.strip()) if sep else first
        except ValueError as exc:
            raise ConfigurationError(f"{var} must list YYYY-MM-DD days or YYYY-MM-DD..YYYY-MM-DD ranges, "
                                     f"separated by commas (not {part!r})") from exc
        if not 0 <= (last - first).days < _MAX_DATE_RANGE_DAYS:
            raise ConfigurationError(f"{var}: the range {part!r} must run forwards and span less than a year")
        days.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return tuple(sorted(days))


def _tier_maps(var: str, raw: str) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """`issuer|AAA=AA,AA=A;*|AAA=AA` → per-issuer tier tables (`*` is the default table)."""
    tables: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for part in raw.split(";"):
        issuer, sep, body = part.partition("|")
        pairs = [tuple(p.strip() for p in item.split("=", 1)) for item in body.split(",") if item.strip()]
        if not sep or not issuer.strip() or any(len(p) != 2 for p in pairs):
            raise ConfigurationError("XINYI_PEER_TIER_MAPS must look like issuer|AAA=AA,AA=A;*|AAA=A")
        tables.append((issuer.strip(), tuple((a, b) for a, b in pairs)))  # type: ignore[misc]
    return tuple(tables)


# The syntaxes a declaration may name in `parse=` (besides "secret"): each turns the variable's text into the
# field's value or raises ConfigurationError naming the variable.
_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "list": _list, "pairs": _pairs, "dates": _dates, "tier_maps": _tier_maps, "upper": _upper}


def generate_secret() -> str:
    """A fresh base64 32-byte secret, for operators filling in production configuration."""
    return base64.b64encode(os.urandom(32)).decode()


def _shown(value: Any) -> str:
    """A default as the variable would spell it."""
    if value is None or value in ("", ()):
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple) and all(isinstance(item, tuple) and len(item) == 2 for item in value):
        if all(isinstance(table, tuple) for _, table in value):  # tier maps
            return "`" + ";".join(f"{issuer}|" + ",".join(f"{a}={b}" for a, b in table)
                                  for issuer, table in value) + "`"
        return "`" + ",".join(f"{name}={number}" for name, number in value) + "`"
    return f"`{value}`"


def configuration_markdown() -> str:
    """docs/configuration.md, generated from the declaration of `Settings` (CI checks the file is current)."""
    lines = ["# Configuration", "",
             "<!-- Generated from core/settings.py by `python -m core.settings --markdown > docs/configuration.md`;",
             "     edit the declaration there, not this file (CI and tests/core/test_settings.py check it). -->", "",
             "All settings come from the environment, read once when the app (or a command) starts. A variable set "
             "to the empty string counts as unset. Switches are on when set to `1`, `true` or `yes`. Production "
             "(`XINYI_ENV=production`) refuses to start on development placeholders, without a secret, without "
             "PostgreSQL or Redis, or with the dev SMS adapter.", "",
             "| variable | default | meaning |", "|---|---|---|"]
    for field in _declarations():
        if "shown" in field.extra:
            default = field.extra["shown"]
        elif field.extra.get("parse") == "secret":
            default = "dev placeholder"
        else:
            scale = field.extra.get("scale")
            default = _shown(field.default if scale is None else round(field.default * scale))
            if "production" in field.extra:
                default += f" (production: {_shown(field.extra['production'])})"
        low, high = field.bounds
        bounds = f" ({low}–{high})" if low is not None and high is not None else ""
        cells = (f"`{field.var}`", default, field.description + bounds)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")  # GFM: even in code
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m core.settings --markdown > docs/configuration.md")
    sys.stdout.write(configuration_markdown())
