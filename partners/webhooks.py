"""Webhook endpoints and Standard Webhooks signing.

Every delivery carries the three Standard Webhooks headers: `webhook-id` (the outbox event's public
id, the same on every retry so receivers can de-duplicate), `webhook-timestamp` (seconds, fresh per
attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`). Signing secrets
look like `whsec_<base64>`; the partner sees a secret once, when its endpoint is configured, and we
keep it only encrypted (`FieldCipher`, kind `webhook_secret`).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from math import floor
from typing import Any

import msgspec
from standardwebhooks import Webhook, WebhookVerificationError

from core.errors import NotFound, Unprocessable
from core.settings import Settings
from credit.identity import FieldCipher
from partners.ssrf import vet_url
from partners.tables import Partner

SECRET_KIND = "webhook_secret"  # noqa: S105 - the cipher's domain label, not a secret
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks secret prefix
MAX_URL_LENGTH = 500  # Partner.webhook_url

__all__ = [
    "SECRET_KIND",
    "Endpoint",
    "WebhookVerificationError",
    "clear_webhook_endpoint",
    "endpoint_for",
    "event_body",
    "new_signing_secret",
    "set_webhook_endpoint",
    "sign",
    "verify",
]

_encoder = msgspec.json.Encoder()


def new_signing_secret() -> str:
    """A fresh `whsec_` secret: 32 random bytes (Standard Webhooks asks for 24 to 64)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def event_body(*, event_id: str, topic: str, created_at: datetime, data: Any) -> bytes:
    """The JSON body of a delivery: {id, type, created_at, data} (the same bytes on every retry)."""
    moment = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
    return _encoder.encode({"id": event_id, "type": topic,
                            "created_at": moment.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                            "data": data})


def sign(*, secret: str, event_id: str, body: bytes, timestamp: datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers for `body`, signed now (or at `timestamp`)."""
    moment = timestamp or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id=event_id, timestamp=moment, data=body.decode())
    return {"webhook-id": event_id, "webhook-timestamp": str(floor(moment.timestamp())),
            "webhook-signature": signature}


def verify(*, secret: str, body: bytes, headers: Mapping[str, str]) -> Any:
    """Check a delivery's signature and timestamp (5 minutes tolerance); returns the parsed body.

    Raises:
        WebhookVerificationError: headers missing or malformed, timestamp out of tolerance, or no
            signature matches.
    """
    try:
        return Webhook(secret).verify(body, dict(headers))
    except WebhookVerificationError:
        raise
    except (ValueError, TypeError):
        # A malformed signature list (no comma, bad base64) or body is a failed verification, not a crash.
        raise WebhookVerificationError("malformed webhook headers or body") from None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a partner's events go and the secret they are signed with."""

    client_id: str
    url: str
    secret: str


async def set_webhook_endpoint(*, cipher: FieldCipher, settings: Settings, client_id: str, url: str) -> str:
    """Point the partner's webhooks at `url` and issue a new signing secret (returned once).

    The URL passes the same SSRF guard as every delivery (which checks again, since DNS can change
    afterwards). Configuring an endpoint always issues a fresh secret: the previous one stops working.

    Raises:
        NotFound: no partner has `client_id`.
        Unprocessable: the URL is too long, or the SSRF guard refuses it (`unsafe_webhook_url`).
    """
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise Unprocessable(f"the webhook URL must be at most {MAX_URL_LENGTH} characters",
                            code="webhook_url_too_long")
    if not await Partner.exists().where(Partner.client_id == client_id):
        raise NotFound("partner not found", code="partner_not_found")
    await vet_url(url, allow_loopback=settings.webhook_allow_loopback)
    secret = new_signing_secret()
    await Partner.update({
        Partner.webhook_url: url,
        Partner.webhook_secret_enc: cipher.encrypt(SECRET_KIND, secret),
        Partner.updated_at: datetime.now(UTC),
    }).where(Partner.client_id == client_id)
    return secret


async def clear_webhook_endpoint(*, client_id: str) -> None:
    """Stop webhooks to the partner; new events wait as `no_endpoint` until it configures one and retries.

    Raises:
        NotFound: no partner has `client_id`.
    """
    updated = await Partner.update({
        Partner.webhook_url: None,
        Partner.webhook_secret_enc: None,
        Partner.updated_at: datetime.now(UTC),
    }).where(Partner.client_id == client_id).returning(Partner.client_id)
    if not updated:
        raise NotFound("partner not found", code="partner_not_found")


async def endpoint_for(*, cipher: FieldCipher, client_id: str) -> Endpoint | None:
    """The partner's endpoint with its decrypted secret, or None when it has none.

    Raises:
        ValueError: the stored secret does not decrypt (wrong data key): deliveries fail, loudly.
    """
    row = await Partner.select(Partner.webhook_url, Partner.webhook_secret_enc).where(
        Partner.client_id == client_id).first()
    if row is None or not row["webhook_url"] or not row["webhook_secret_enc"]:
        return None
    return Endpoint(client_id=client_id, url=row["webhook_url"],
                    secret=cipher.decrypt(SECRET_KIND, row["webhook_secret_enc"]))
