"""The loan product catalog (金融超市): banks publish and change their products; anyone browses the active ones."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from accounts.tokens import Principal
from api import guards
from api.dependencies import Injected
from api.pagination import Cursor, PageSize
from api.routes.lending.banks import BankQuery, calling_bank
from lending import products
from lending.schemas import GuaranteeKind, ProductCreate, ProductOut, ProductPage, ProductPatch
from partners.limits import PartnerDirectory

Amount = Annotated[int | None, QueryParameter(ge=1, le=1_000_000_000_000)]
Term = Annotated[int | None, QueryParameter(ge=1, le=360)]
Rate = Annotated[int | None, QueryParameter(ge=1, le=3600)]
SectionQuery = Annotated[str | None, QueryParameter(pattern=r"^[A-T]$")]


class LoanProductsController(Controller):
    path = "/v1/lending/products"
    tags = ["lending"]

    @post("", status_code=HTTP_201_CREATED, guards=[guards.partner("lending:write")],
          security=[{"BearerAuth": []}], summary="Publish a loan product (banks)")
    async def create(self, *, data: JSONBody[ProductCreate], partner_directory: Injected[PartnerDirectory],
                     principal: Injected[Principal]) -> ProductOut:
        bank = await calling_bank(partner_directory, principal)
        return await products.create_product(bank_client_id=bank.id, bank_name=bank.name,
                                             fields=msgspec.structs.asdict(data))

    @patch("/{product_id:str}", guards=[guards.partner("lending:write")], security=[{"BearerAuth": []}],
           summary="Change one of the bank's own products (another bank's is a 404)")
    async def update(self, *, product_id: FromPath[str], data: JSONBody[ProductPatch],
                     partner_directory: Injected[PartnerDirectory], principal: Injected[Principal]) -> ProductOut:
        bank = await calling_bank(partner_directory, principal)
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        return await products.update_product(bank_client_id=bank.id, product_id=product_id, changes=changes)

    @get("/mine", guards=[guards.partner("lending:write")], security=[{"BearerAuth": []}],
         summary="The bank's own products in every status, newest first")
    async def mine(self, *, partner_directory: Injected[PartnerDirectory], principal: Injected[Principal],
                   status: FromQuery[Literal["active", "paused", "withdrawn"] | None] = None,
                   cursor: Cursor = None, limit: PageSize = 50) -> ProductPage:
        bank = await calling_bank(partner_directory, principal)
        return await products.list_own(bank_client_id=bank.id, status=status, limit=limit, cursor=cursor)

    @get("", summary="The loan product catalog (金融超市): active products, newest first",
         description="Filters combine: `amount_fen` / `term_months` within the product's range, `industry` "
                     "(GB/T 4754 section letter) allowed, `max_rate_bp` at least the product's lowest rate.")
    async def catalog(self, *, guarantee_kind: FromQuery[GuaranteeKind | None] = None,
                      bank: BankQuery = None, amount_fen: Amount = None, term_months: Term = None,
                      industry: SectionQuery = None, max_rate_bp: Rate = None, cursor: Cursor = None,
                      limit: PageSize = 20) -> ProductPage:
        filters = products.ProductFilter(guarantee_kind=guarantee_kind, bank=bank, amount_fen=amount_fen,
                                         term_months=term_months, industry=industry, max_rate_bp=max_rate_bp)
        return await products.list_public(filters=filters, limit=limit, cursor=cursor)

    @get("/{product_id:str}", summary="One active product of the catalog")
    async def read(self, product_id: FromPath[str]) -> ProductOut:
        return await products.get_public(product_id=product_id)
