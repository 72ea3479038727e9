"""The bank in a lending market route: the calling one (only banks publish products and decide applications)
and the `?bank=` filter."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

from accounts.tokens import Principal
from core.errors import Forbidden, NotFound
from lending.inputs import SAFE_ID
from lending.schemas import BankOut
from partners.limits import PartnerDirectory

BankQuery = Annotated[str | None, QueryParameter(pattern=SAFE_ID, description="the bank's client id")]


async def calling_bank(partner_directory: PartnerDirectory, principal: Principal) -> BankOut:
    """The calling bank (the guard has admitted it; the directory caches its record).

    Called first thing in the handler rather than provided as a dependency: dependencies resolve before the
    body and query are validated, and a malformed request must keep hearing about its input first.

    Raises:
        NotFound: `partner_not_found`.
        Forbidden: `wrong_partner_kind` — the partner is not a bank.
    """
    record = await partner_directory.get(principal.subject)
    if record is None:
        raise NotFound("partner not found", code="partner_not_found")
    if record.kind != "bank":
        raise Forbidden("only banks take part in the lending market", code="wrong_partner_kind")
    return BankOut(id=record.client_id, name=record.name)
