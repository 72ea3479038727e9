"""Data sources push credit records: `POST /v1/records/batch` (a JSON array of rows, or NDJSON)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.status_codes import HTTP_200_OK

from accounts.tokens import Principal
from api import guards
from api.dependencies import Injected
from core.settings import Settings
from core.store import Store
from credit import ingest
from credit.identity import FieldCipher
from credit.partner_schemas import IngestAnswer

NDJSON = "application/x-ndjson"

_DESCRIPTION = """\
Send credit records as a JSON array (`application/json`) or one JSON object per line
(`application/x-ndjson`). A row is `{source_ref, subject: {kind: "person", id_number, name?} |
{kind: "enterprise", uscc}, category, title, occurred_at (ISO 8601 with timezone), severity?
(minor | general | serious; default: the category's), status? (active | withdrawn)}`.

Rows are keyed by (your client id, `source_ref`): the same row again counts as `duplicate`, changed
content as `updated` (a correction). Each rejected row is listed with its 1-based line (array index
or NDJSON line), its `source_ref` when readable, a stable `code` and a reason; the other rows land.
At most `XINYI_INGEST_MAX_ROWS` rows (422 `too_many_rows`) and 1 MB (413 `payload_too_large`) per batch.

The persons whose records changed are re-scored before the answer (`rescored_persons`). If a batch was
answered 5xx (or not at all), send it again: rows that landed come back as `duplicate`, and any re-scoring
the first attempt left undone is done by this retry (and otherwise by the background job within minutes).
"""


class RecordIngestController(Controller):
    path = "/v1/records"
    tags = ["partner"]
    security = [{"BearerAuth": []}]
    guards = [guards.partner("records:write")]

    @post("/batch", status_code=HTTP_200_OK, opt={"media_types": ("application/json", NDJSON)},
          summary="Push a batch of credit records (data sources)", description=_DESCRIPTION)
    async def batch(self, *, request: Request[Any, Any, Any], principal: Injected[Principal],
                    cipher: Injected[FieldCipher], store: Injected[Store], settings: Injected[Settings]
                    ) -> IngestAnswer:
        # The raw request, not a typed `data`: the body is a JSON array or NDJSON (per its content type) and is
        # split and validated row by row, so one bad row is reported by its line instead of failing the batch.
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        return await ingest.ingest_batch(
            cipher=cipher, store=store, source=principal.subject, body=await request.body(),
            body_format="ndjson" if media_type == NDJSON else "json", max_rows=settings.ingest_max_rows)
