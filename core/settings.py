"""The one settings object, read from the environment when the app (or a CLI command) starts.

Nothing here runs at import time: `Settings.from_env()` is called by the app factory and the CLI.
Development defaults are safe to run on a laptop; in production every secret must be supplied and
none may be a development placeholder.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Literal
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


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Typed runtime configuration. See docs/reference.md "Configuration" for every variable."""

    env: Environment = "dev"
    database_url: str | None = None
    sqlite_path: str = "xinyi.sqlite"
    redis_url: str | None = None
    redis_namespace: str = "xinyi"

    jwt_issuer: str = "https://xinyi.local"
    # Where partners reach this service: the absolute URLs of the OAuth metadata document are built from it,
    # never from a request's Host header.
    public_url: str = "http://127.0.0.1:8000"
    jwt_audience: str = "xinyi-api"
    jwt_private_key: bytes = b""  # 32-byte Ed25519 seed, base64 in the environment
    jwt_key_id: str = "xinyi-1"
    jwt_leeway_seconds: int = 30
    access_token_ttl_seconds: int = 900
    partner_token_ttl_seconds: int = 3600
    refresh_token_ttl_seconds: int = 30 * 24 * 3600

    data_key: bytes = b""  # AES-256-GCM key for personal data at rest
    hash_key: bytes = b""  # HMAC key for lookups of personal data
    consent_key: bytes = b""  # HMAC key for partner-scoped open ids

    otp_ttl_seconds: int = 300
    otp_max_attempts: int = 5
    otp_resend_seconds: int = 60
    otp_per_address_per_hour: int = 30
    otp_per_phone_per_day: int = 10
    identity_bind_attempts_per_day: int = 10
    operator_login_attempts_per_hour: int = 10

    sms_adapter: Literal["dev", "http"] = "dev"
    sms_gateway_url: str | None = None
    sms_gateway_token: str | None = None
    identity_verifier_url: str | None = None
    identity_verifier_token: str | None = None
    peer_cities: str = ""  # issuer=jwks-url pairs separated by ';'

    max_body_bytes: int = 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    trust_forwarded_for: bool = False
    db_pool_max: int = 20
    background_in_app: bool = True  # run expiry sweeps and ledger checkpoints inside the app
    background_interval_seconds: int = 30
    webhook_allow_loopback: bool = False  # only for local testing and the demo
    webhook_max_attempts: int = 8
    webhook_base_delay_seconds: int = 680  # doubled after each failure: 8 attempts span about a day
    webhook_timeout_seconds: float = 5.0
    webhook_max_response_bytes: int = 64 * 1024
    ingest_max_rows: int = 10_000
    default_rate_limit_per_second: int = 200
    default_daily_quota: int = 1_000_000
    # 信易+ (scenarios)
    benefit_code_ttl_seconds: int = 60  # a benefit code shown as a QR lives at most this long
    verification_ttl_seconds: int = 600  # a merchant redeems within this long after verifying
    benefit_codes_per_hour: int = 120  # codes one citizen account may ask for per hour (an app refreshes its QR)
    # Credit line per tier in fen (pay-later / deposit-free orders reserve against it).
    credit_lines_fen: tuple[tuple[str, int], ...] = (("AAA", 1_000_000), ("AA", 500_000), ("A", 200_000),
                                                      ("B", 0), ("C", 0))
    credit_order_grace_days: int = 7  # a default not settled within this becomes a negative record
    passport_ttl_seconds: int = 24 * 3600
    # Peer city tier → our tier, per issuer; "*" applies to issuers without their own table.
    peer_tier_maps: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
        ("*", (("AAA", "AA"), ("AA", "A"), ("A", "A"), ("B", "B"), ("C", "C"))),)
    # 信易贷 (lending)
    lending_response_working_days: int = 3  # a bank answers an application within this
    # Working-day calendar overrides (core/calendar.py): days off and make-up working days (调休) for years
    # the chinese-calendar package does not know yet, or corrections of days it does know.
    calendar_holidays: tuple[date, ...] = ()
    calendar_workdays: tuple[date, ...] = ()
    log_level: str = "INFO"

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
        environment = env.get("XINYI_ENV", "dev")
        if environment not in ("dev", "test", "production"):
            raise ConfigurationError(f"XINYI_ENV must be dev, test or production, not {environment!r}")
        production = environment == "production"

        def secret(name: str, var: str) -> bytes:
            raw = env.get(var)
            if raw is None or raw == "":
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

        def integer(var: str, default: int) -> int:
            raw = env.get(var)
            if raw is None or raw == "":
                return default
            try:
                return int(raw)
            except ValueError as exc:
                raise ConfigurationError(f"{var} must be an integer") from exc

        sms_adapter = env.get("XINYI_SMS_ADAPTER", "http" if production else "dev")
        if sms_adapter not in ("dev", "http"):
            raise ConfigurationError("XINYI_SMS_ADAPTER must be dev or http")
        if production and sms_adapter == "dev":
            raise ConfigurationError("the dev SMS adapter cannot run in production")
        if sms_adapter == "http" and not env.get("XINYI_SMS_GATEWAY_URL"):
            raise ConfigurationError("XINYI_SMS_GATEWAY_URL is required for the http SMS adapter")
        if production and not env.get("DATABASE_URL"):
            raise ConfigurationError("DATABASE_URL is required when XINYI_ENV=production")
        if production and not env.get("REDIS_URL"):
            raise ConfigurationError("REDIS_URL is required when XINYI_ENV=production")
        if not 1 <= integer("XINYI_LENDING_RESPONSE_WORKING_DAYS", 3) <= 30:
            raise ConfigurationError("XINYI_LENDING_RESPONSE_WORKING_DAYS must be 1..30")
        if not 0 <= integer("XINYI_CREDIT_ORDER_GRACE_DAYS", 7) <= 365:  # scenarios.orders.MAX_GRACE_DAYS
            raise ConfigurationError("XINYI_CREDIT_ORDER_GRACE_DAYS must be 0..365")

        calendar_holidays = _dates(env, "XINYI_CALENDAR_HOLIDAYS")
        calendar_workdays = _dates(env, "XINYI_CALENDAR_WORKDAYS")
        if both := set(calendar_holidays) & set(calendar_workdays):
            raise ConfigurationError(f"{min(both).isoformat()} is in both XINYI_CALENDAR_HOLIDAYS and "
                                     "XINYI_CALENDAR_WORKDAYS")

        issuer = env.get("XINYI_JWT_ISSUER", "https://xinyi.local")
        public_url = _public_url(env.get("XINYI_PUBLIC_URL"), issuer=issuer, production=production)

        origins = tuple(o.strip() for o in env.get("XINYI_CORS_ORIGINS", "").split(",") if o.strip())
        # CORS is for the city's own mini-program and H5 origins, named one by one: a wildcard (or the
        # `null` origin of sandboxed pages and local files) would let any page call the API from a browser.
        # Litestar reads a `*` anywhere in an origin as "any characters": `https://*` admits every https page.
        if production and any(not o.startswith("https://") or "*" in o for o in origins):
            raise ConfigurationError("XINYI_CORS_ORIGINS must list https origins one by one in production")
        return cls(
            env=environment,  # type: ignore[arg-type]
            database_url=env.get("DATABASE_URL") or None,
            sqlite_path=env.get("XINYI_SQLITE_PATH", "xinyi.sqlite"),
            redis_url=env.get("REDIS_URL") or None,
            redis_namespace=env.get("XINYI_REDIS_NAMESPACE", "xinyi"),
            jwt_issuer=issuer,
            public_url=public_url,
            jwt_audience=env.get("XINYI_JWT_AUDIENCE", "xinyi-api"),
            jwt_private_key=secret("jwt_private_key", "XINYI_JWT_PRIVATE_KEY"),
            jwt_key_id=env.get("XINYI_JWT_KEY_ID", "xinyi-1"),
            jwt_leeway_seconds=min(60, integer("XINYI_JWT_LEEWAY_SECONDS", 30)),
            access_token_ttl_seconds=integer("XINYI_ACCESS_TOKEN_TTL_SECONDS", 900),
            partner_token_ttl_seconds=integer("XINYI_PARTNER_TOKEN_TTL_SECONDS", 3600),
            refresh_token_ttl_seconds=integer("XINYI_REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600),
            data_key=secret("data_key", "XINYI_DATA_KEY"),
            hash_key=secret("hash_key", "XINYI_HASH_KEY"),
            consent_key=secret("consent_key", "XINYI_CONSENT_KEY"),
            otp_ttl_seconds=integer("XINYI_OTP_TTL_SECONDS", 300),
            otp_max_attempts=integer("XINYI_OTP_MAX_ATTEMPTS", 5),
            otp_resend_seconds=integer("XINYI_OTP_RESEND_SECONDS", 60),
            otp_per_address_per_hour=integer("XINYI_OTP_PER_ADDRESS_PER_HOUR", 30),
            otp_per_phone_per_day=integer("XINYI_OTP_PER_PHONE_PER_DAY", 10),
            identity_bind_attempts_per_day=integer("XINYI_IDENTITY_BIND_ATTEMPTS_PER_DAY", 10),
            operator_login_attempts_per_hour=integer("XINYI_OPERATOR_LOGIN_ATTEMPTS_PER_HOUR", 10),
            sms_adapter=sms_adapter,  # type: ignore[arg-type]
            sms_gateway_url=env.get("XINYI_SMS_GATEWAY_URL") or None,
            sms_gateway_token=env.get("XINYI_SMS_GATEWAY_TOKEN") or None,
            identity_verifier_url=env.get("XINYI_IDENTITY_VERIFIER_URL") or None,
            identity_verifier_token=env.get("XINYI_IDENTITY_VERIFIER_TOKEN") or None,
            peer_cities=env.get("XINYI_PEER_CITIES", ""),
            max_body_bytes=integer("XINYI_MAX_BODY_BYTES", 1024 * 1024),
            cors_origins=origins,
            trust_forwarded_for=env.get("XINYI_TRUST_FORWARDED_FOR", "") in ("1", "true", "yes"),
            db_pool_max=integer("XINYI_DB_POOL_MAX", 20),
            # Single-process mode runs background work in the app; production runs `xinyi worker`.
            background_in_app=env.get("XINYI_BACKGROUND_IN_APP", "0" if production else "1") in ("1", "true", "yes"),
            background_interval_seconds=integer("XINYI_BACKGROUND_INTERVAL_SECONDS", 30),
            webhook_allow_loopback=env.get("XINYI_WEBHOOK_ALLOW_LOOPBACK", "") in ("1", "true", "yes"),
            webhook_max_attempts=integer("XINYI_WEBHOOK_MAX_ATTEMPTS", 8),
            webhook_base_delay_seconds=integer("XINYI_WEBHOOK_BASE_DELAY_SECONDS", 680),
            webhook_timeout_seconds=float(integer("XINYI_WEBHOOK_TIMEOUT_MS", 5000)) / 1000,
            webhook_max_response_bytes=integer("XINYI_WEBHOOK_MAX_RESPONSE_BYTES", 64 * 1024),
            ingest_max_rows=integer("XINYI_INGEST_MAX_ROWS", 10_000),
            default_rate_limit_per_second=integer("XINYI_DEFAULT_RATE_LIMIT_PER_SECOND", 200),
            default_daily_quota=integer("XINYI_DEFAULT_DAILY_QUOTA", 1_000_000),
            benefit_code_ttl_seconds=min(60, integer("XINYI_BENEFIT_CODE_TTL_SECONDS", 60)),
            verification_ttl_seconds=integer("XINYI_VERIFICATION_TTL_SECONDS", 600),
            benefit_codes_per_hour=integer("XINYI_BENEFIT_CODES_PER_HOUR", 120),
            credit_lines_fen=_pairs(env, "XINYI_CREDIT_LINES_FEN", Settings().credit_lines_fen, int),
            credit_order_grace_days=integer("XINYI_CREDIT_ORDER_GRACE_DAYS", 7),
            passport_ttl_seconds=integer("XINYI_PASSPORT_TTL_SECONDS", 24 * 3600),
            peer_tier_maps=_tier_maps(env.get("XINYI_PEER_TIER_MAPS"), Settings().peer_tier_maps),
            lending_response_working_days=integer("XINYI_LENDING_RESPONSE_WORKING_DAYS", 3),
            calendar_holidays=calendar_holidays,
            calendar_workdays=calendar_workdays,
            log_level=env.get("XINYI_LOG_LEVEL", "INFO").upper(),
        )


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


def _pairs(env: Mapping[str, str], var: str, default: tuple[tuple[str, int], ...], convert: type[int]
           ) -> tuple[tuple[str, int], ...]:
    """`AAA=1000000,AA=500000` → (("AAA", 1000000), ("AA", 500000))."""
    raw = env.get(var)
    if not raw:
        return default
    pairs: list[tuple[str, int]] = []
    for part in raw.split(","):
        name, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise ConfigurationError(f"{var} must look like AAA=1000000,AA=500000")
        pairs.append((name.strip(), convert(value.strip())))
    return tuple(pairs)


_MAX_DATE_RANGE_DAYS = 366


def _dates(env: Mapping[str, str], var: str) -> tuple[date, ...]:
    """`2027-01-01,2027-02-05..2027-02-11` → the days listed, ranges inclusive, sorted and without repeats."""
    days: set[date] = set()
    for part in (p.strip() for p in env.get(var, "").split(",")):
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


def _tier_maps(raw: str | None, default: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
               ) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """`issuer|AAA=AA,AA=A;*|AAA=AA` → per-issuer tier tables (`*` is the default table)."""
    if not raw:
        return default
    tables: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for part in raw.split(";"):
        issuer, sep, body = part.partition("|")
        pairs = [tuple(p.strip() for p in item.split("=", 1)) for item in body.split(",") if item.strip()]
        if not sep or not issuer.strip() or any(len(p) != 2 for p in pairs):
            raise ConfigurationError("XINYI_PEER_TIER_MAPS must look like issuer|AAA=AA,AA=A;*|AAA=A")
        tables.append((issuer.strip(), tuple((a, b) for a, b in pairs)))  # type: ignore[misc]
    return tuple(tables)


def generate_secret() -> str:
    """A fresh base64 32-byte secret, for operators filling in production configuration."""
    return base64.b64encode(os.urandom(32)).decode()
