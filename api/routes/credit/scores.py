"""Partner score reads under an authorization (`/v1/scores`): the full query and the threshold check.

Both are hot paths (benchmarked): the handlers pass their injected collaborators straight to
`credit.queries`, which answers with the wire type itself.
"""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from accounts.tokens import Principal
from api import guards
from api.dependencies import Injected
from core.admission import Admission, admit
from core.errors import DomainError
from core.settings import Settings
from core.store import Store
from credit import queries
from credit.ledger import LedgerWriter
from credit.schemas import ScoreCheck, ScoreCheckAnswer, ScoreQuery, ScoreQueryAnswer


async def _authorization_id(*, requested: str | None, principal: Principal, store: Store,
                            admission: Admission) -> str:
    """The authorization the read is under (the body's, or the bound token's); a refusal here still runs the
    deferred admission first, so a revoked or over-limit token is refused as such."""
    try:
        return queries.authorization_to_use(requested=requested, bound=principal.authorization_id)
    except DomainError:
        await admit(store, admission)
        raise


class ScoresController(Controller):
    path = "/v1/scores"
    tags = ["partner"]
    security = [{"BearerAuth": []}]

    @post("/query", status_code=HTTP_200_OK, guards=[guards.partner("scores:read")],
          opt={"deferred_admission": True},
          summary="Read a person's score under an authorization (fields limited by its scopes)")
    async def query(self, *, data: JSONBody[ScoreQuery], store: Injected[Store], ledger: Injected[LedgerWriter],
                    settings: Injected[Settings], principal: Injected[Principal], admission: Injected[Admission],
                    resolve_caller: Injected[queries.CallerResolver]) -> ScoreQueryAnswer:
        return await queries.query_score(
            store=store, ledger=ledger, consent_key=settings.consent_key, client_id=principal.subject,
            resolve_caller=resolve_caller,
            authorization_id=await _authorization_id(requested=data.authorization_id, principal=principal,
                                                     store=store, admission=admission),
            purpose=data.purpose, admission=admission)

    @post("/check", status_code=HTTP_200_OK, guards=[guards.partner("scores:check")],
          opt={"deferred_admission": True},
          summary="Yes/no against a threshold (idempotent per transaction id for 24 h)")
    async def check(self, *, data: JSONBody[ScoreCheck], store: Injected[Store], ledger: Injected[LedgerWriter],
                    principal: Injected[Principal], admission: Injected[Admission],
                    resolve_caller: Injected[queries.CallerResolver]) -> ScoreCheckAnswer:
        return await queries.check_score(
            store=store, ledger=ledger, client_id=principal.subject, resolve_caller=resolve_caller,
            authorization_id=await _authorization_id(requested=data.authorization_id, principal=principal,
                                                     store=store, admission=admission),
            threshold=data.threshold, transaction_id=data.transaction_id,
            purpose=data.purpose, admission=admission)
