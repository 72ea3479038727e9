"""Identity binding through an external verification service (real HTTP on loopback)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from partners.adapters import HttpIdentityVerifier
from tests.factories import citizen_login, registry_person


class _Gateway(BaseHTTPRequestHandler):
    verdicts: dict[str, object] = {}  # id number → the `match` value answered (JSON)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        verdict = self.verdicts.get(body["id_number"])
        if verdict is None:
            self.send_response(503)
            self.end_headers()
            return
        payload = json.dumps({"match": verdict}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/verify"
    finally:
        server.shutdown()


async def test_external_verifier_decides_after_the_registry_match(client, ctx, gateway) -> None:
    genuine, impostor, unavailable = [await registry_person(ctx, name=n) for n in ("钱一", "孙二", "李三")]
    _Gateway.verdicts = {genuine.id_number: True, impostor.id_number: False}
    original = ctx.identity
    ctx.identity = HttpIdentityVerifier(url=gateway, token="t")
    try:
        outcomes = []
        for person in (genuine, impostor, unavailable):
            session = await citizen_login(client)
            r = await client.post("/v1/me/identity", headers=session.headers,
                                  json={"name": person.name, "id_number": person.id_number})
            outcomes.append((r.status_code, r.json().get("code")))
    finally:
        await ctx.identity.close()
        ctx.identity = original
    assert outcomes == [(200, None), (422, "identity_mismatch"), (503, "identity_verifier_unavailable")]


async def test_only_a_literal_boolean_is_a_verdict(client, ctx, gateway) -> None:
    """A `match` of "false", 1 or [true] is no verdict: never read as a match (it fails closed), nothing is bound."""
    people = [await registry_person(ctx, name=n) for n in ("周一", "吴二", "郑三")]
    _Gateway.verdicts = {p.id_number: v for p, v in zip(people, ("false", 1, [True]), strict=True)}
    original = ctx.identity
    ctx.identity = HttpIdentityVerifier(url=gateway, token="t")
    try:
        for person in people:
            session = await citizen_login(client)
            r = await client.post("/v1/me/identity", headers=session.headers,
                                  json={"name": person.name, "id_number": person.id_number})
            assert (r.status_code, r.json().get("code")) == (503, "identity_verifier_unavailable"), r.text
            assert (await client.get("/v1/me", headers=session.headers)).json()["identity"] is None
    finally:
        await ctx.identity.close()
        ctx.identity = original
