"""Loan applications as banks see them: their own, newest first, and their decisions on each."""

from __future__ import annotations

from typing import Literal

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK

from accounts.tokens import Principal
from api import guards
from api.dependencies import Injected
from api.pagination import Cursor, PageSize
from api.routes.lending.banks import calling_bank
from core.store import Store
from credit.identity import FieldCipher
from credit.ledger import LedgerWriter
from lending import applications
from lending.schemas import BankApplication, BankApplicationPage, DecisionIn
from partners.limits import PartnerDirectory


class LoanApplicationsController(Controller):
    path = "/v1/lending/applications"
    tags = ["lending"]
    guards = [guards.partner("lending:write")]
    security = [{"BearerAuth": []}]

    @get("", summary="The bank's own applications, newest first (filter by status, overdue)")
    async def list(self, *, ledger: Injected[LedgerWriter], cipher: Injected[FieldCipher],
                   partner_directory: Injected[PartnerDirectory], principal: Injected[Principal],
                   status: FromQuery[Literal["submitted", "accepted", "approved", "disbursed", "rejected"] | None]
                   = None, overdue: FromQuery[bool | None] = None, cursor: Cursor = None,
                   limit: PageSize = 50) -> BankApplicationPage:
        bank = await calling_bank(partner_directory, principal)
        return await applications.list_for_bank(
            ledger=ledger, cipher=cipher, bank_client_id=bank.id, bank_name=bank.name, status=status,
            overdue=overdue, limit=limit, cursor=cursor)

    @get("/{application_id:str}", summary="One of the bank's applications (another bank's is a 404)")
    async def read(self, *, application_id: FromPath[str], ledger: Injected[LedgerWriter],
                   cipher: Injected[FieldCipher], partner_directory: Injected[PartnerDirectory],
                   principal: Injected[Principal]) -> BankApplication:
        bank = await calling_bank(partner_directory, principal)
        return await applications.get_for_bank(ledger=ledger, cipher=cipher, bank_client_id=bank.id,
                                               bank_name=bank.name, application_id=application_id)

    @post("/{application_id:str}/decisions", status_code=HTTP_200_OK,
          summary="Decide: accepted | approved (amount, rate, term) | disbursed (amount) | rejected (reason)")
    async def decide(self, *, application_id: FromPath[str], data: JSONBody[DecisionIn], store: Injected[Store],
                     ledger: Injected[LedgerWriter], cipher: Injected[FieldCipher],
                     partner_directory: Injected[PartnerDirectory], principal: Injected[Principal]
                     ) -> BankApplication:
        bank = await calling_bank(partner_directory, principal)
        return await applications.decide(
            store=store, ledger=ledger, cipher=cipher, bank_client_id=bank.id, bank_name=bank.name,
            application_id=application_id, status=data.status, amount_fen=data.amount_fen, rate_bp=data.rate_bp,
            term_months=data.term_months, reason=data.reason, note=data.note)
