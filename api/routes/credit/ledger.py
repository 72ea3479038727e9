"""The public face of the access ledger: its latest signed checkpoint (no authentication)."""

from __future__ import annotations

from litestar import get

from core.errors import NotFound
from credit.ledger import latest_checkpoint
from credit.schemas import Checkpoint


@get("/v1/ledger/checkpoints/latest", tags=["ledger"], summary="The latest signed checkpoint of the access ledger",
     opt={"problem_statuses": (404,)})
async def latest_ledger_checkpoint() -> Checkpoint:
    checkpoint = await latest_checkpoint()
    if checkpoint is None:
        raise NotFound("no checkpoint yet", code="no_checkpoint")
    return checkpoint
