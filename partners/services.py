"""Partner registry services: create partners, issue their credentials, look them up, suspend them.

Answers the HTTP layer sends as they are are msgspec Structs of `partners.schemas`; `PartnerRecord` is the
internal view the auth layer caches and checks.

Suspension has one writer, `set_partner_status`: the partner's row is the durable record, and a marker in
the shared store makes every worker refuse the partner's tokens on its very next request. The marker's name
is defined here only (`suspension_marker`); the auth layer probes it and the store seeds it from
`suspension_markers` after losing its data.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network, IPv6Network
from typing import Any
from urllib.parse import urlsplit

import jwt

from core.errors import Conflict, NotFound, Unprocessable
from core.settings import Settings
from core.store import Marker, Store
from partners.credentials import hash_secret, new_client_secret
from partners.schemas import PartnerCredentials, PartnerDetail, PartnerPage, PartnerView
from partners.scopes import ALLOWED_SCOPES, PARTNER_KINDS
from partners.tables import Partner


@dataclass(frozen=True, slots=True)
class PartnerRecord:
    """What the auth layer needs to know about a partner."""

    client_id: str
    name: str
    kind: str
    scopes: frozenset[str]
    status: str
    secret_hash: str | None
    jwks: list[dict[str, Any]]
    scenario: str | None
    previous_secret_hash: str | None = None
    previous_secret_expires_at: datetime | None = None
    webhook_url: str | None = None
    rate_limit_per_second: int = 0
    daily_quota: int = 0
    allowed_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    issuer: str | None = None  # peer cities: the `iss` of their credit passports
    redirect_uris: tuple[str, ...] = ()  # OAuth redirect URIs, compared as exact strings

    def secret_hashes(self, now: datetime) -> list[str]:
        """Hashes a presented client secret may match: the current one, and the previous one during
        its rotation overlap window."""
        hashes = [self.secret_hash] if self.secret_hash else []
        expires = self.previous_secret_expires_at
        if self.previous_secret_hash and expires is not None:
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
            if now < expires:
                hashes.append(self.previous_secret_hash)
        return hashes


def _new_client_id(kind: str) -> str:
    return f"{kind.replace('_', '')[:8]}_{secrets.token_hex(8)}"


def validate_scopes(*, kind: str, scopes: list[str] | None) -> frozenset[str]:
    """Scopes requested for a partner of `kind`; defaults to everything the kind may hold."""
    if kind not in PARTNER_KINDS:
        raise Unprocessable(f"unknown partner kind {kind!r}", code="unknown_partner_kind")
    allowed = ALLOWED_SCOPES[kind]
    if scopes is None:
        return allowed
    wanted = frozenset(scopes)
    if extra := wanted - allowed:
        raise Unprocessable(
            f"a {kind} partner cannot hold: {', '.join(sorted(extra))}", code="scope_not_allowed_for_kind"
        )
    return wanted


MAX_REDIRECT_URIS = 5
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def redirect_uri_acceptable(uri: str, *, production: bool) -> bool:
    """Whether `uri` may be registered as an OAuth redirect URI: absolute https without a fragment or user
    credentials; outside production also plain http to a loopback host (a partner's local test client,
    RFC 8252 §7.3)."""
    if not 0 < len(uri) <= 500 or any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7e for c in uri) or "#" in uri:
        return False
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        return False
    if not host or parts.username is not None or parts.password is not None:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and not production and host in _LOOPBACK_HOSTS


def validate_redirect_uris(uris: list[str] | None, *, production: bool) -> tuple[str, ...]:
    """Redirect URIs to register: at most `MAX_REDIRECT_URIS`, each acceptable, duplicates dropped (order kept).

    Raises:
        Unprocessable: too many, or one that is not https (or loopback http outside production)
            (`invalid_redirect_uri`).
    """
    if not uris:
        return ()
    if len(uris) > MAX_REDIRECT_URIS:
        raise Unprocessable(f"at most {MAX_REDIRECT_URIS} redirect URIs per partner", code="too_many_redirect_uris")
    for uri in uris:
        if not redirect_uri_acceptable(uri, production=production):
            raise Unprocessable("redirect URIs must be absolute https URLs without a fragment (plain http only to "
                                "a loopback host, outside production)", code="invalid_redirect_uri",
                                errors=[{"field": "redirect_uris", "message": "not an acceptable redirect URI"}])
    return tuple(dict.fromkeys(uris))


def _validate_rsa_encryption_key(key: dict[str, Any]) -> None:
    """An RSA public key (n, e, at least 2048 bits) that portraits are encrypted to (JWE RSA-OAEP-256).

    It is only ever used to encrypt: client assertions are verified with EC/OKP keys alone.
    """
    if key.get("use", "enc") != "enc" or not key.get("kid") or not isinstance(key.get("n"), str) \
            or not isinstance(key.get("e"), str) or key.get("alg", "RSA-OAEP-256") != "RSA-OAEP-256":
        raise Unprocessable("RSA JWKs must be encryption keys (use enc, alg RSA-OAEP-256) with a kid, n and e",
                            code="invalid_jwk")
    try:
        public = jwt.PyJWK(key, algorithm="RS256").key
    except jwt.PyJWKError as exc:
        raise Unprocessable(f"invalid JWK: {exc}", code="invalid_jwk") from None
    if getattr(public, "key_size", 0) < 2048:
        raise Unprocessable("RSA keys must have at least 2048 bits", code="invalid_jwk")


def validate_jwks(jwks: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Accept only public EC (P-256) or OKP (Ed25519) keys with a `kid`, or an RSA encryption key; never
    private material."""
    keys = jwks or []
    for key in keys:
        if {"d", "p", "q", "dp", "dq", "qi"} & key.keys():
            raise Unprocessable("a registered JWK must be a public key", code="invalid_jwk")
        if key.get("kty") == "RSA":
            _validate_rsa_encryption_key(key)
            continue
        if key.get("kty") not in ("EC", "OKP") or not key.get("kid"):
            raise Unprocessable("JWKs must be EC P-256 or Ed25519 public keys with a kid", code="invalid_jwk")
        try:
            jwt.PyJWK(key)
        except jwt.PyJWKError as exc:
            raise Unprocessable(f"invalid JWK: {exc}", code="invalid_jwk") from None
    return keys


async def validate_issuer(*, kind: str, issuer: str | None, client_id: str | None = None) -> str | None:
    """A passport issuer for a peer city: one partner per issuer, and only peer cities have one."""
    if issuer is None:
        return None
    issuer = issuer.strip()
    if kind != "city_peer":
        raise Unprocessable("only a city_peer partner has a passport issuer", code="issuer_not_allowed_for_kind")
    if not issuer or any(c.isspace() for c in issuer):
        raise Unprocessable("the issuer must be a non-empty identifier without spaces", code="invalid_issuer")
    taken = Partner.exists().where(Partner.issuer == issuer)
    if client_id is not None:
        taken = taken.where(Partner.client_id != client_id)
    if await taken:
        raise Conflict("another partner already has this issuer", code="issuer_taken")
    return issuer


async def create_partner(
    *,
    name: str,
    kind: str,
    scopes: list[str] | None = None,
    jwks: list[dict[str, Any]] | None = None,
    with_secret: bool = True,
    scenario: str | None = None,
    client_id: str | None = None,
    issuer: str | None = None,
    redirect_uris: list[str] | None = None,
    production: bool = True,
) -> PartnerCredentials:
    """Register a partner. The client secret is returned here once and stored only as a hash.

    `production` decides whether loopback http redirect URIs are acceptable (never in production).
    """
    granted = validate_scopes(kind=kind, scopes=scopes)
    redirects = validate_redirect_uris(redirect_uris, production=production)
    keys = validate_jwks(jwks)
    issuer = await validate_issuer(kind=kind, issuer=issuer)
    if not with_secret and not keys:
        raise Unprocessable("a partner needs a client secret or a registered public key", code="no_credentials")
    client_id = client_id or _new_client_id(kind)
    if await Partner.exists().where(Partner.client_id == client_id):
        raise Conflict("client id already registered", code="partner_exists")
    secret = new_client_secret() if with_secret else None
    await Partner.insert(
        Partner(
            client_id=client_id,
            name=name,
            kind=kind,
            scopes=" ".join(sorted(granted)),
            status="active",
            secret_hash=hash_secret(secret) if secret else None,
            jwks=json.dumps(keys) if keys else None,
            scenario=scenario,
            issuer=issuer,
            redirect_uris=" ".join(redirects) or None,
        )
    )
    return PartnerCredentials(client_id=client_id, client_secret=secret)


_COLUMNS = (
    Partner.client_id, Partner.name, Partner.kind, Partner.scopes, Partner.status,
    Partner.secret_hash, Partner.jwks, Partner.scenario, Partner.previous_secret_hash,
    Partner.previous_secret_expires_at, Partner.webhook_url, Partner.rate_limit_per_second, Partner.daily_quota,
    Partner.allowed_addresses, Partner.issuer, Partner.redirect_uris,
)


def _to_record(row: dict[str, Any]) -> PartnerRecord:
    raw_jwks = row["jwks"]
    jwks = json.loads(raw_jwks) if isinstance(raw_jwks, str) and raw_jwks else (raw_jwks or [])
    return PartnerRecord(
        client_id=row["client_id"],
        name=row["name"],
        kind=row["kind"],
        scopes=frozenset(s for s in row["scopes"].split(" ") if s),
        status=row["status"],
        secret_hash=row["secret_hash"],
        jwks=list(jwks),
        scenario=row["scenario"],
        previous_secret_hash=row["previous_secret_hash"],
        previous_secret_expires_at=row["previous_secret_expires_at"],
        webhook_url=row["webhook_url"],
        rate_limit_per_second=int(row["rate_limit_per_second"] or 0),
        daily_quota=int(row["daily_quota"] or 0),
        allowed_networks=parse_networks(row["allowed_addresses"]),
        issuer=row["issuer"],
        redirect_uris=tuple((row["redirect_uris"] or "").split()),
    )


async def find_partner(client_id: str) -> PartnerRecord | None:
    """The partner with `client_id`, whatever its status (callers check `status`)."""
    row = await Partner.select(*_COLUMNS).where(Partner.client_id == client_id).first()
    return None if row is None else _to_record(row)


async def list_partners(
    *, kind: str | None = None, limit: int = 50, after: str | None = None
) -> list[PartnerRecord]:
    """Partners ordered by client id, one page after the cursor `after`."""
    query = Partner.select(*_COLUMNS).order_by(Partner.client_id).limit(limit)
    if kind:
        query = query.where(Partner.kind == kind)
    if after:
        query = query.where(Partner.client_id > after)
    return [_to_record(row) for row in await query]


def parse_networks(value: str | None) -> tuple[IPv4Network | IPv6Network, ...]:
    """Parse a comma-separated CIDR allowlist (raises ValueError on a malformed entry)."""
    if not value:
        return ()
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())


async def require_partner(client_id: str) -> PartnerRecord:
    """The partner with `client_id` (404 `partner_not_found` without one)."""
    partner = await find_partner(client_id)
    if partner is None:
        raise NotFound("partner not found", code="partner_not_found")
    return partner


async def update_partner(
    *,
    client_id: str,
    name: str | None = None,
    scopes: list[str] | None = None,
    rate_limit_per_second: int | None = None,
    daily_quota: int | None = None,
    allowed_addresses: list[str] | None = None,
    issuer: str | None = None,
    redirect_uris: list[str] | None = None,
    production: bool = True,
) -> PartnerRecord:
    """Change a partner's registration; only the given fields change (`issuer=""` removes it, `redirect_uris=[]`
    removes them all). The status is `set_partner_status`'s alone (it keeps the store's suspension marker in
    step)."""
    partner = await require_partner(client_id)
    changes: dict[Any, Any] = {Partner.updated_at: datetime.now(UTC)}
    if name is not None:
        changes[Partner.name] = name
    if scopes is not None:
        changes[Partner.scopes] = " ".join(sorted(validate_scopes(kind=partner.kind, scopes=scopes)))
    if rate_limit_per_second is not None:
        changes[Partner.rate_limit_per_second] = rate_limit_per_second
    if daily_quota is not None:
        changes[Partner.daily_quota] = daily_quota
    if allowed_addresses is not None:
        joined = ",".join(a.strip() for a in allowed_addresses if a.strip())
        try:
            parse_networks(joined)
        except ValueError:
            raise Unprocessable("allowed_addresses must be IP addresses or CIDR networks",
                                code="invalid_address_allowlist") from None
        changes[Partner.allowed_addresses] = joined or None
    if issuer == "":
        changes[Partner.issuer] = None
    elif issuer is not None:
        changes[Partner.issuer] = await validate_issuer(kind=partner.kind, issuer=issuer, client_id=client_id)
    if redirect_uris is not None:
        changes[Partner.redirect_uris] = " ".join(validate_redirect_uris(redirect_uris, production=production)) or None
    await Partner.update(changes).where(Partner.client_id == client_id)
    return await require_partner(client_id)


async def rotate_secret(*, client_id: str, overlap: timedelta) -> PartnerCredentials:
    """Issue a new client secret; the old one keeps working for `overlap` so callers can switch over."""
    partner = await require_partner(client_id)
    secret = new_client_secret()
    now = datetime.now(UTC)
    await Partner.update({
        Partner.secret_hash: hash_secret(secret),
        Partner.previous_secret_hash: partner.secret_hash,
        Partner.previous_secret_expires_at: now + overlap if partner.secret_hash else None,
        Partner.updated_at: now,
    }).where(Partner.client_id == client_id)
    return PartnerCredentials(client_id=client_id, client_secret=secret)


async def replace_jwks(*, client_id: str, jwks: list[dict[str, Any]]) -> PartnerRecord:
    """Register the partner's current public keys (private_key_jwt); keys not listed stop working."""
    keys = validate_jwks(jwks)
    await require_partner(client_id)
    await Partner.update({Partner.jwks: json.dumps(keys) if keys else None,
                          Partner.updated_at: datetime.now(UTC)}).where(Partner.client_id == client_id)
    return await require_partner(client_id)


# ------------------------------------------------------------------ answers


def _auth_methods(partner: PartnerRecord) -> list[str]:
    return (["client_secret"] if partner.secret_hash else []) + (["private_key_jwt"] if partner.jwks else [])


def partner_view(partner: PartnerRecord) -> PartnerView:
    """The registration as partners and list readers see it."""
    return PartnerView(client_id=partner.client_id, name=partner.name, kind=partner.kind,
                       scopes=sorted(partner.scopes), status=partner.status, scenario=partner.scenario,
                       auth_methods=_auth_methods(partner))


def partner_detail(partner: PartnerRecord, *, settings: Settings, webhook_secret: str | None = None) -> PartnerDetail:
    """The registration as operators see it (never a secret, but for a new endpoint's signing secret once);
    limits left at 0 show the service defaults that apply."""
    return PartnerDetail(
        client_id=partner.client_id, name=partner.name, kind=partner.kind, scopes=sorted(partner.scopes),
        status=partner.status, auth_methods=_auth_methods(partner),
        rate_limit_per_second=partner.rate_limit_per_second or settings.default_rate_limit_per_second,
        daily_quota=partner.daily_quota or settings.default_daily_quota,
        allowed_addresses=[str(n) for n in partner.allowed_networks], scenario=partner.scenario,
        webhook_url=partner.webhook_url, previous_secret_valid_until=partner.previous_secret_expires_at,
        webhook_secret=webhook_secret, issuer=partner.issuer, redirect_uris=list(partner.redirect_uris))


async def describe_partner(*, client_id: str, settings: Settings) -> PartnerDetail:
    """One partner's registration as operators see it (404 `partner_not_found`)."""
    return partner_detail(await require_partner(client_id), settings=settings)


async def partner_page(*, kind: str | None, limit: int, after: str | None) -> PartnerPage:
    """One page of partners by client id; the cursor is the last client id of the page before."""
    partners = await list_partners(kind=kind, limit=limit + 1, after=after)
    page = partners[:limit]
    next_cursor = page[-1].client_id if len(partners) > limit else None
    return PartnerPage(items=[partner_view(p) for p in page], next_cursor=next_cursor)


# ------------------------------------------------------------------ suspension

PARTNER_STATUSES = ("active", "suspended")

# The marker keeps the name it has always had in the shared store (domain "auth", key "pdis:<client id>"): a
# running deployment's store holds these markers, and a new name would let suspended partners back in until
# that store is next emptied and seeded.
_SUSPENSION_DOMAIN = "auth"


def suspension_marker(client_id: str) -> tuple[str, str]:
    """The store (domain, key) whose presence means the partner is not active: the auth layer refuses the
    partner's tokens when it finds it, in the same round trip as the token's own revocation markers."""
    return _SUSPENSION_DOMAIN, f"pdis:{client_id}"


async def suspension_markers() -> list[Marker]:
    """A suspension marker per partner that is not active (what an emptied store is seeded with)."""
    rows = await Partner.select(Partner.client_id).where(Partner.status != "active")
    return [Marker(*suspension_marker(row["client_id"]), None) for row in rows]


async def set_partner_status(*, store: Store, client_id: str, status: str) -> PartnerRecord:
    """Suspend or reactivate a partner; the change applies on every worker's next request.

    The row changes first: it is the durable record an emptied store is seeded from. Then the marker; with
    the store down that raises `StoreUnavailable` (503) and the row already holds the new status, which the
    partner guard also checks (each worker's partner cache lasts seconds), so repeating the call completes it.
    Callers that cache partner records in process drop theirs (`PartnerDirectory.forget`).

    Raises:
        NotFound: no such partner (`partner_not_found`).
        Unprocessable: `status` is neither active nor suspended (`invalid_status`).
    """
    if status not in PARTNER_STATUSES:
        raise Unprocessable("status must be active or suspended", code="invalid_status")
    await require_partner(client_id)
    await Partner.update({Partner.status: status, Partner.updated_at: datetime.now(UTC)}).where(
        Partner.client_id == client_id)
    domain, key = suspension_marker(client_id)
    if status == "active":
        await store.delete(domain, key)
    else:
        await store.set(domain, key, b"1")
    return await require_partner(client_id)
