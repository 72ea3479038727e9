"""Credit passports (cross-city mutual recognition), through HTTP.

Our citizens get a passport signed with the city's key (tier and a pseudonym only); merchants and peer
cities verify passports — ours, those of peer cities registered as `city_peer` partners with their JWKs
(the simulated city over real HTTP on loopback), and those of cities configured by JWKS URL. Forged,
tampered, expired, foreign and wrongly-signed passports are refused with stable codes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.context import AppContext
from partners.adapters import PASSPORT_TYP, JwksPeerCities, PassportRejected, StaticPeerKeys, verify_with_key
from partners.services import create_partner
from partners.simulate import CityKeys, fetch_city_jwks
from tests.factories import Citizen, Session, bound_citizen, citizen_login, operator_session, partner_session
from tests.servers import XINYI, free_port, xinyi_server

VERIFY = "/v1/federation/passports/verify"
TIERS = ("AAA", "AA", "A", "B", "C")
# A deliberately different table from the default one, so mapping through it is visible.
SHIFT_DOWN = (("AAA", "AA"), ("AA", "A"), ("A", "B"), ("B", "C"), ("C", "C"))


# ------------------------------------------------------------------ helpers


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _sign(key: Ed25519PrivateKey, claims: dict[str, Any], *, kid: str, typ: str = PASSPORT_TYP) -> str:
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": typ})


def _peer_claims(issuer: str, *, tier: str = "AA", iat_offset: int = 0, lifetime: int = 3600) -> dict[str, Any]:
    now = int(time.time()) + iat_offset
    return {"iss": issuer, "sub": f"oid_{secrets.token_hex(6)}", "iat": now, "exp": now + lifetime,
            "jti": secrets.token_hex(8), "tier": tier}


async def register_city(*, issuer: str, jwks: list[dict[str, Any]], name: str | None = None) -> str:
    """Register a peer city as a `city_peer` partner (its keys verify its passports); returns its client id."""
    issued = await create_partner(name=name or f"peer city {secrets.token_hex(3)}", kind="city_peer", jwks=jwks,
                                  with_secret=False, issuer=issuer)
    return issued.client_id


async def _verify(client: Any, session: Session, passport: str) -> httpx.Response:
    response: httpx.Response = await client.post(VERIFY, headers=session.headers, json={"passport": passport})
    return response


def _refused(response: httpx.Response, code: str, status: int = 422) -> None:
    assert (response.status_code, response.json().get("code")) == (status, code), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def _sim_passport(base: str, open_id: str) -> str:
    async with httpx.AsyncClient(timeout=5) as http:
        answer = await http.get(f"{base}/passports/{open_id}")
        answer.raise_for_status()
        return str(answer.json()["passport"])


@pytest.fixture(scope="module")
def city() -> Iterator[str]:
    """The simulated peer city (`xinyi simulate city`), a real process on loopback."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with xinyi_server(["simulate", "city", "--issuer", base], ready_path="/.well-known/jwks.json", port=port):
        yield base


@pytest.fixture(scope="module")
async def registered_city(city: str, ctx: AppContext) -> str:
    """The simulated city, registered as a recognised peer: its JWKS fetched over HTTP."""
    await register_city(issuer=city, jwks=await fetch_city_jwks(city), name="simulated city")
    return city


class InProcessPeer:
    """A peer city whose key lives in the test, registered in the partner registry: for passports the
    simulated city would never sign (expired, over-long, future-dated)."""

    def __init__(self) -> None:
        self.keys = CityKeys.generate()
        self.issuer = f"https://peer-{secrets.token_hex(4)}.example"

    def sign(self, **changes: Any) -> str:
        claims = {**_peer_claims(self.issuer), **changes}
        return _sign(self.keys.private, {k: v for k, v in claims.items() if v is not None}, kid=self.keys.kid)


@pytest.fixture
async def peer(ctx: AppContext) -> InProcessPeer:
    city = InProcessPeer()
    await register_city(issuer=city.issuer, jwks=[city.keys.jwk])
    return city


@pytest.fixture(scope="module")
async def merchant(client: Any) -> Session:
    _, _, session = await partner_session(client, kind="merchant", name="西湖景区")
    return session


async def _my_passport(client: Any, citizen: Citizen) -> dict[str, Any]:
    r = await client.get("/v1/me/credit-passport", headers=citizen.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# ------------------------------------------------------------------ peer city passports


async def test_simulated_city_passport_verifies_and_its_tier_is_mapped(
        client: Any, registered_city: str, merchant: Session, override_settings: Any) -> None:
    passport = await _sim_passport(registered_city, "oid_traveller")
    tier = _claims(passport)["tier"]
    with override_settings(peer_tier_maps=((registered_city, SHIFT_DOWN),)):
        r = await _verify(client, merchant, passport)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] is True
    assert body["issuer"] == registered_city
    assert body["issuer_tier"] == tier
    assert body["local_tier"] == dict(SHIFT_DOWN)[tier]
    assert body["subject"] == "oid_traveller"
    assert body["expires_at"].startswith(time.strftime("%Y-%m-%d", time.gmtime(_claims(passport)["exp"])))


async def test_a_peer_city_may_verify_too(client: Any, registered_city: str) -> None:
    _, _, peer_city = await partner_session(client, kind="city_peer")
    r = await _verify(client, peer_city, await _sim_passport(registered_city, "oid_visitor"))
    assert r.status_code == 200, r.text


async def test_an_unmapped_peer_tier_is_refused(client: Any, registered_city: str, merchant: Session,
                                                override_settings: Any) -> None:
    passport = await _sim_passport(registered_city, "oid_unmapped")
    tier = _claims(passport)["tier"]
    table = tuple((theirs, ours) for theirs, ours in SHIFT_DOWN if theirs != tier)
    with override_settings(peer_tier_maps=((registered_city, table),)):
        _refused(await _verify(client, merchant, passport), "passport_tier_unmapped")


async def test_a_tampered_peer_passport_does_not_verify(client: Any, registered_city: str,
                                                        merchant: Session) -> None:
    header, payload, signature = (await _sim_passport(registered_city, "oid_tamper")).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["tier"] = "AAA" if claims["tier"] != "AAA" else "AA"
    tampered = ".".join([header, _b64url(json.dumps(claims).encode()), signature])
    _refused(await _verify(client, merchant, tampered), "passport_bad_signature")


async def test_forged_passport_with_the_peers_kid_is_refused(client: Any, registered_city: str,
                                                             merchant: Session) -> None:
    kid = jwt.get_unverified_header(await _sim_passport(registered_city, "oid_x"))["kid"]
    forged = _sign(Ed25519PrivateKey.generate(), _peer_claims(registered_city, tier="AAA"), kid=kid)
    _refused(await _verify(client, merchant, forged), "passport_bad_signature")


async def test_unknown_issuer_and_unknown_key_are_refused(client: Any, registered_city: str,
                                                          merchant: Session) -> None:
    stranger = Ed25519PrivateKey.generate()
    foreign = _sign(stranger, _peer_claims(f"https://unknown-{secrets.token_hex(4)}.example"), kid="k1")
    _refused(await _verify(client, merchant, foreign), "passport_unknown_issuer")
    unknown_key = _sign(stranger, _peer_claims(registered_city), kid="not-a-published-kid")
    _refused(await _verify(client, merchant, unknown_key), "passport_unknown_key")


async def test_expired_future_and_overlong_passports_are_refused(client: Any, peer: InProcessPeer,
                                                                 merchant: Session) -> None:
    r = await _verify(client, merchant, peer.sign())
    assert r.status_code == 200, r.text  # the same peer's fresh passport is fine
    _refused(await _verify(client, merchant, peer.sign(**_peer_claims(peer.issuer, iat_offset=-3720))),
             "passport_expired")
    _refused(await _verify(client, merchant, peer.sign(**_peer_claims(peer.issuer, iat_offset=600))),
             "passport_not_yet_valid")
    _refused(await _verify(client, merchant, peer.sign(**_peer_claims(peer.issuer, lifetime=2 * 24 * 3600))),
             "passport_lifetime_too_long")


async def test_within_the_leeway_a_just_expired_passport_still_verifies(client: Any, peer: InProcessPeer,
                                                                         merchant: Session) -> None:
    # exp 10 s ago: within the 30 s clock leeway.
    r = await _verify(client, merchant, peer.sign(**_peer_claims(peer.issuer, iat_offset=-3610)))
    assert r.status_code == 200, r.text


async def test_required_claims_are_required(client: Any, peer: InProcessPeer, merchant: Session) -> None:
    for missing in ("sub", "exp", "iat", "tier"):
        _refused(await _verify(client, merchant, peer.sign(**{missing: None})), "passport_malformed")


async def test_alg_none_hs256_and_garbage_are_refused(client: Any, ctx: AppContext, registered_city: str,
                                                      merchant: Session) -> None:
    claims = _peer_claims(registered_city, tier="AAA")
    unsigned = ".".join([_b64url(json.dumps({"alg": "none", "typ": PASSPORT_TYP}).encode()),
                         _b64url(json.dumps(claims).encode()), ""])
    _refused(await _verify(client, merchant, unsigned), "passport_unsupported_format")
    # HS256 keyed with a public key (algorithm confusion), ours and the peer's.
    for issuer, public_x in ((registered_city, (await fetch_city_jwks(registered_city))[0]["x"]),
                             (ctx.tokens.issuer, ctx.tokens.jwks["keys"][0]["x"])):
        confused = jwt.encode({**claims, "iss": issuer}, base64.urlsafe_b64decode(public_x + "=="),
                              algorithm="HS256", headers={"typ": PASSPORT_TYP, "kid": "k"})
        _refused(await _verify(client, merchant, confused), "passport_unsupported_format")
    # A signed document of another type (a consent receipt, an access token) is not a passport.
    receipt = ctx.tokens.sign_document({"sub": "x", "exp": int(time.time()) + 60, "tier": "AAA"},
                                       typ="consent-receipt+jwt")
    _refused(await _verify(client, merchant, receipt), "passport_unsupported_format")
    _refused(await _verify(client, merchant, "not.a.passport"), "passport_malformed")
    r = await client.post(VERIFY, headers=merchant.headers, json={"passport": ""})
    _refused(r, "validation_failed")


async def test_configured_jwks_cities_verify_after_the_registry(client: Any, ctx: AppContext, merchant: Session,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A second simulated city, not registered: recognised only through XINYI_PEER_CITIES-style config.
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with xinyi_server(["simulate", "city", "--issuer", base], ready_path="/.well-known/jwks.json", port=port):
        monkeypatch.setattr(ctx, "peers", JwksPeerCities(peers={base: f"{base}/.well-known/jwks.json"},
                                                         allow_loopback=True))
        r = await _verify(client, merchant, await _sim_passport(base, "oid_configured"))
        assert r.status_code == 200, r.text
        assert r.json()["issuer"] == base
        passport = await _sim_passport(base, "oid_configured")
    # The city is down and its keys were never cached by a fresh adapter: 503, retry later.
    monkeypatch.setattr(ctx, "peers", JwksPeerCities(peers={base: f"{base}/.well-known/jwks.json"},
                                                     allow_loopback=True))
    _refused(await _verify(client, merchant, passport), "passport_issuer_keys_unavailable", status=503)


async def test_a_malformed_key_in_a_peers_jwks_is_unknown_not_a_crash(client: Any, ctx: AppContext, merchant: Session,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A JWKS fetched from a peer city is not vetted like a registered one: a key that does not load (a short
    `x`) makes passports naming it `passport_unknown_key`, and the peer's good keys keep working."""
    good = CityKeys.generate()
    issuer = f"https://jwks-peer-{secrets.token_hex(4)}.example"
    broken = {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "broken", "use": "sig"}
    monkeypatch.setattr(ctx, "peers", StaticPeerKeys(issuer=issuer, keys=[broken, good.jwk]))
    named_broken = _sign(good.private, _peer_claims(issuer), kid="broken")
    _refused(await _verify(client, merchant, named_broken), "passport_unknown_key")
    r = await _verify(client, merchant, _sign(good.private, _peer_claims(issuer), kid=good.kid))
    assert r.status_code == 200, r.text
    # The check behind both: a key that does not load is never offered for verification.
    with pytest.raises(PassportRejected) as refused:
        verify_with_key(named_broken, issuer=issuer, jwk=broken)
    assert refused.value.reason == "unknown_key"


# ------------------------------------------------------------------ our own passports


async def test_our_passport_round_trips_and_shows_in_the_access_log(client: Any, ctx: AppContext,
                                                                    merchant: Session) -> None:
    citizen = await bound_citizen(client, ctx, name="王五")
    r = await client.get("/v1/me/credit-passport", headers=citizen.headers)
    assert r.status_code == 200, r.text
    assert "no-store" in r.headers.get("cache-control", "")
    body = r.json()
    my_tier = (await client.get("/v1/me/score", headers=citizen.headers)).json()["tier"]
    assert (body["tier"], body["issuer"]) == (my_tier, ctx.settings.jwt_issuer)

    # Signed with the published key, EdDSA, our type; carrying nothing but issuer, times, id, tier, pseudonym.
    header = jwt.get_unverified_header(body["passport"])
    assert (header["alg"], header["typ"]) == ("EdDSA", PASSPORT_TYP)
    published = (await client.get("/.well-known/jwks.json")).json()["keys"]
    key = next(k for k in published if k["kid"] == header["kid"])
    claims = jwt.decode(body["passport"], jwt.PyJWK(key, algorithm="EdDSA").key, algorithms=["EdDSA"],
                        issuer=ctx.settings.jwt_issuer)
    assert set(claims) == {"iss", "iat", "exp", "jti", "tier", "sub"}
    assert claims["exp"] - claims["iat"] == ctx.settings.passport_ttl_seconds == 24 * 3600
    assert claims["tier"] == my_tier
    assert citizen.person.public_id not in body["passport"]
    assert citizen.person.public_id not in claims["sub"]

    verified = await _verify(client, merchant, body["passport"])
    assert verified.status_code == 200, verified.text
    answer = verified.json()
    assert answer == {"valid": True, "issuer": ctx.settings.jwt_issuer, "issuer_tier": my_tier,
                      "local_tier": my_tier, "subject": claims["sub"], "expires_at": answer["expires_at"]}
    assert answer["expires_at"] == body["expires_at"]

    log = (await client.get("/v1/me/access-log", headers=citizen.headers)).json()["items"]
    entry = log[0]
    assert (entry["action"], entry["actor_name"], entry["actor_type"], entry["outcome"], entry["fields"]) == (
        "passport.verify", "西湖景区", "merchant", "allowed", ["tier"])


async def test_two_passports_of_one_citizen_cannot_be_linked(client: Any, ctx: AppContext) -> None:
    citizen = await bound_citizen(client, ctx)
    first, second = await _my_passport(client, citizen), await _my_passport(client, citizen)
    a, b = _claims(first["passport"]), _claims(second["passport"])
    assert a["sub"] != b["sub"]
    assert a["jti"] != b["jti"]
    assert a["tier"] == b["tier"]


async def test_peer_passports_leave_no_ledger_entry_and_ours_one_each(client: Any, ctx: AppContext,
                                                                      peer: InProcessPeer, merchant: Session) -> None:
    citizen = await bound_citizen(client, ctx)
    passports = [(await _my_passport(client, citizen))["passport"] for _ in range(3)]
    # Concurrent verifications: each is written to the ledger before its answer (group commit).
    answers = await asyncio.gather(*(_verify(client, merchant, p) for p in passports * 4),
                                   *(_verify(client, merchant, peer.sign()) for _ in range(6)))
    assert [a.status_code for a in answers] == [200] * 18
    log = (await client.get("/v1/me/access-log", headers=citizen.headers, params={"limit": 100})).json()["items"]
    assert [e["action"] for e in log] == ["passport.verify"] * 12


async def test_a_bank_may_not_verify_passports(client: Any, ctx: AppContext) -> None:
    citizen = await bound_citizen(client, ctx)
    passport = (await _my_passport(client, citizen))["passport"]
    _, _, bank = await partner_session(client, kind="bank")
    _refused(await _verify(client, bank, passport), "insufficient_scope", status=403)
    _refused(await client.get("/v1/me/credit-passport", headers=bank.headers), "wrong_principal", status=403)


async def test_a_passport_needs_a_bound_identity(client: Any) -> None:
    session = await citizen_login(client)
    _refused(await client.get("/v1/me/credit-passport", headers=session.headers), "identity_not_bound", status=403)


async def test_an_expired_passport_of_ours_is_refused(client: Any, ctx: AppContext, merchant: Session,
                                                      override_settings: Any) -> None:
    citizen = await bound_citizen(client, ctx)
    passport = (await _my_passport(client, citizen))["passport"]
    claims = _claims(passport)
    # Re-signed by our own key with an expiry in the past: only the expiry check can refuse it.
    expired = ctx.tokens.sign_document({**claims, "iat": claims["iat"] - 7200, "exp": claims["iat"] - 3600},
                                       typ=PASSPORT_TYP)
    _refused(await _verify(client, merchant, expired), "passport_expired")


# ------------------------------------------------------------------ registering peer cities


@pytest.fixture
async def partner_admin(client: Any) -> AsyncIterator[Session]:
    return await operator_session(client, role="partner_admin")


async def test_operators_register_and_change_a_peer_citys_issuer(client: Any, partner_admin: Session,
                                                                 merchant: Session) -> None:
    city = InProcessPeer()
    created = await client.post("/v1/admin/partners", headers=partner_admin.headers, json={
        "name": "杭州市公共信用信息平台", "kind": "city_peer", "jwks": [city.keys.jwk], "with_secret": False,
        "issuer": city.issuer})
    assert created.status_code == 201, created.text
    client_id = created.json()["client_id"]
    detail = await client.get(f"/v1/admin/partners/{client_id}", headers=partner_admin.headers)
    assert detail.json()["issuer"] == city.issuer
    assert (await _verify(client, merchant, city.sign())).status_code == 200

    # One partner per issuer; only peer cities have one.
    again = await client.post("/v1/admin/partners", headers=partner_admin.headers, json={
        "name": "copy", "kind": "city_peer", "jwks": [city.keys.jwk], "issuer": city.issuer})
    _refused(again, "issuer_taken", status=409)
    bank = await client.post("/v1/admin/partners", headers=partner_admin.headers, json={
        "name": "a bank", "kind": "bank", "issuer": "https://bank.example"})
    _refused(bank, "issuer_not_allowed_for_kind")

    # A new issuer: passports under the old one stop verifying at once on this worker.
    renamed = f"{city.issuer}/v2"
    patched = await client.patch(f"/v1/admin/partners/{client_id}", headers=partner_admin.headers,
                                 json={"issuer": renamed})
    assert patched.status_code == 200, patched.text
    assert patched.json()["issuer"] == renamed
    _refused(await _verify(client, merchant, city.sign()), "passport_unknown_issuer")
    assert (await _verify(client, merchant, city.sign(iss=renamed))).status_code == 200

    # A suspended peer city is not recognised.
    suspended = await client.patch(f"/v1/admin/partners/{client_id}", headers=partner_admin.headers,
                                   json={"status": "suspended"})
    assert suspended.status_code == 200, suspended.text
    _refused(await _verify(client, merchant, city.sign(iss=renamed)), "passport_unknown_issuer")


async def test_cli_registers_a_peer_city_with_issuer_and_jwks(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"XINYI_ENV": "dev", "XINYI_SQLITE_PATH": str(tmp_path / "cli.sqlite"), "XINYI_LOG_LEVEL": "WARNING"})
    city = InProcessPeer()
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [city.keys.jwk]}))

    def run(*args: str) -> str:
        done = subprocess.run([XINYI, *args], env=env, capture_output=True, text=True, timeout=180, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    await asyncio.to_thread(run, "migrate")
    out = await asyncio.to_thread(run, "partner", "create", "--kind", "city_peer", "--name", "sim city",
                                  "--issuer", city.issuer, "--jwks-file", str(tmp_path / "jwks.json"), "--no-secret")
    assert "client_id:" in out
    assert "client_secret" not in out
