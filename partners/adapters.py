"""Adapter interfaces to the outside world, with default implementations chosen by settings.

- SMS: `partners.sms` (dev recorder or HTTP gateway).
- Identity verification (实名核验): confirm that a name and 公民身份号码 belong together. The default,
  `RegistryIdentityVerifier`, trusts the city's own citizen registry; `HttpIdentityVerifier` asks an
  external verification service (e.g. the public security identity gateway) and is used when
  `XINYI_IDENTITY_VERIFIER_URL` is set.
- Partner notifications (banks, merchants, peer cities): signed webhooks from the transactional
  outbox (`partners.delivery`), so nothing is lost while a partner is down.

Every adapter is a Protocol so tests and the simulators can stand in real HTTP peers on loopback.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import httpx

logger = logging.getLogger("xinyi.adapters")


class IdentityVerificationUnavailable(Exception):
    """The external identity service could not answer; callers fail closed."""


class IdentityVerifier(Protocol):
    async def verify(self, *, name: str, id_number: str) -> bool: ...

    async def close(self) -> None: ...


class RegistryIdentityVerifier:
    """Trusts the city registry: a registry match is the verification (the default)."""

    async def verify(self, *, name: str, id_number: str) -> bool:
        return True

    async def close(self) -> None:
        return None


class HttpIdentityVerifier:
    """Asks an external service `POST {url}` with {name, id_number}; expects {"match": bool}."""

    def __init__(self, *, url: str, token: str | None, timeout_seconds: float = 3.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._url = url
        self._client = httpx.AsyncClient(timeout=timeout_seconds, headers=headers, follow_redirects=False)

    async def verify(self, *, name: str, id_number: str) -> bool:
        try:
            response = await self._client.post(self._url, json={"name": name, "id_number": id_number})
            response.raise_for_status()
            body: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # Never log the name or number; the class of failure is enough to investigate.
            logger.warning("identity verification failed: %s", type(exc).__name__)
            raise IdentityVerificationUnavailable(type(exc).__name__) from exc
        return bool(body.get("match"))

    async def close(self) -> None:
        await self._client.aclose()


def build_identity_verifier(*, url: str | None, token: str | None) -> IdentityVerifier:
    if url:
        return HttpIdentityVerifier(url=url, token=token)
    return RegistryIdentityVerifier()
