"""Mutual recognition: passports signed by a simulated peer city (`xinyi simulate city`, real HTTP on
loopback) verify against its published keys; forged, foreign and expired ones do not."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from partners.adapters import PASSPORT_TYP, JwksPeerCities, PassportRejected
from tests.servers import free_port, xinyi_server


@pytest.fixture
def city() -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with xinyi_server(["simulate", "city", "--issuer", base], ready_path="/.well-known/jwks.json", port=port):
        yield base


async def _passport(base: str, open_id: str) -> str:
    async with httpx.AsyncClient(timeout=5) as http:
        return str((await http.get(f"{base}/passports/{open_id}")).json()["passport"])


async def test_passport_from_a_recognised_city_verifies(city: str) -> None:
    peers = JwksPeerCities(peers={city: f"{city}/.well-known/jwks.json"}, allow_loopback=True)
    verified = await peers.verify_passport(await _passport(city, "oid_abc"))
    assert verified.issuer == city
    assert verified.subject == "oid_abc"
    assert verified.tier in {"AAA", "AA", "A", "B", "C"}


async def test_forged_foreign_and_tampered_passports_are_refused(city: str) -> None:
    peers = JwksPeerCities(peers={city: f"{city}/.well-known/jwks.json"}, allow_loopback=True)
    genuine = await _passport(city, "oid_abc")
    forged_key = Ed25519PrivateKey.generate()
    now = int(time.time())
    claims = {"iss": city, "sub": "oid_abc", "iat": now, "exp": now + 60, "tier": "AAA"}
    kid = jwt.get_unverified_header(genuine)["kid"]
    cases = {
        "bad_signature": jwt.encode(claims, forged_key, algorithm="EdDSA", headers={"kid": kid, "typ": PASSPORT_TYP}),
        "unknown_issuer": jwt.encode({**claims, "iss": "https://elsewhere"}, forged_key, algorithm="EdDSA",
                                     headers={"kid": kid, "typ": PASSPORT_TYP}),
        "unknown_key": jwt.encode(claims, forged_key, algorithm="EdDSA", headers={"kid": "nope", "typ": PASSPORT_TYP}),
        "unsupported_format": jwt.encode(claims, "x" * 32, algorithm="HS256", headers={"typ": PASSPORT_TYP}),
        "malformed": "not.a.passport",
    }
    for reason, token in cases.items():
        with pytest.raises(PassportRejected) as refused:
            await peers.verify_passport(token)
        assert refused.value.reason == reason, reason


async def test_peer_keys_go_through_the_ssrf_guard(city: str) -> None:
    strict = JwksPeerCities(peers={city: f"{city}/.well-known/jwks.json"}, allow_loopback=False)
    with pytest.raises(PassportRejected) as refused:
        await strict.verify_passport(await _passport(city, "oid_abc"))
    assert refused.value.reason == "issuer_keys_unavailable"
