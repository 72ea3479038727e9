"""Partner kinds and the scopes each kind may be granted (least privilege per kind)."""

from __future__ import annotations

from typing import Literal

PartnerKind = Literal["bank", "merchant", "data_source", "government", "city_peer"]

PARTNER_KINDS: tuple[str, ...] = ("bank", "merchant", "data_source", "government", "city_peer")

# Every scope a partner token can carry, with what it lets the partner do.
SCOPES: dict[str, str] = {
    "authorizations:write": "request, read and terminate authorizations from citizens or enterprises",
    "scores:read": "query a score under an authorization (fields limited by its scopes)",
    "scores:check": "threshold check under an authorization (yes/no only)",
    "portraits:read": "pull an enterprise portrait under an authorization",
    "lending:write": "publish loan products and decide applications",
    "benefits:verify": "verify a citizen's benefit code (eligibility only)",
    "benefits:redeem": "redeem and cancel benefits",
    "credit_orders:write": "open and settle deposit-free / pay-later credit orders",
    "records:write": "push credit records",
    "credit_checks:write": "run credit checks before a business step and report the measure applied",
    "federation:verify": "verify credit passports (ours and those of mutually recognised cities)",
    "webhooks:read": "read and retry its webhook deliveries",
}

ALLOWED_SCOPES: dict[str, frozenset[str]] = {
    "bank": frozenset({"authorizations:write", "scores:read", "scores:check", "portraits:read",
                       "lending:write", "webhooks:read"}),
    "merchant": frozenset({"authorizations:write", "scores:check", "benefits:verify", "benefits:redeem",
                           "credit_orders:write", "federation:verify", "webhooks:read"}),
    "data_source": frozenset({"records:write", "webhooks:read"}),
    "government": frozenset({"credit_checks:write", "authorizations:write", "scores:check", "webhooks:read"}),
    "city_peer": frozenset({"federation:verify", "webhooks:read"}),
}
