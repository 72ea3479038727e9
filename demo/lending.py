"""The demo bank's loan products (金融超市), published when the demo city is seeded."""

from __future__ import annotations

from typing import Any

from lending.products import create_product
from lending.tables import LoanProduct

_WAN = 10_000 * 100  # 1万元 in fen

DEMO_PRODUCTS: tuple[dict[str, Any], ...] = (
    {"name": "信易贷·科创信用贷", "description": "面向科技型、专精特新中小企业的纯信用贷款，随借随还",
     "amount_min_fen": 10 * _WAN, "amount_max_fen": 500 * _WAN, "term_min_months": 6, "term_max_months": 36,
     "rate_min_bp": 345, "rate_max_bp": 480, "guarantee_kind": "credit", "min_grade": "B",
     "industries": ["C", "I", "M"], "regions": ["3304"], "min_years_in_business": 1, "max_open_penalties": 0,
     "tax_grade_floor": "B", "first_loan_friendly": True},
    {"name": "信易贷·普惠首贷", "description": "首次在银行贷款的小微企业专享，纳税信用M级及以上可申请",
     "amount_min_fen": 5 * _WAN, "amount_max_fen": 100 * _WAN, "term_min_months": 3, "term_max_months": 12,
     "rate_min_bp": 385, "rate_max_bp": 550, "guarantee_kind": "credit", "min_grade": "C",
     "regions": ["3304"], "tax_grade_floor": "M", "first_loan_friendly": True},
    {"name": "信易担·政策担保贷", "description": "市融资担保公司“信易担”政策性担保，担保费率0.5%",
     "amount_min_fen": 50 * _WAN, "amount_max_fen": 1000 * _WAN, "term_min_months": 12, "term_max_months": 36,
     "rate_min_bp": 365, "rate_max_bp": 500, "guarantee_kind": "xinyidan", "min_grade": "C",
     "min_years_in_business": 2},
    {"name": "厂房设备抵押贷", "description": "以工业厂房或设备抵押，额度高、期限长",
     "amount_min_fen": 100 * _WAN, "amount_max_fen": 3000 * _WAN, "term_min_months": 12, "term_max_months": 60,
     "rate_min_bp": 330, "rate_max_bp": 450, "guarantee_kind": "collateral", "industries": ["C", "F", "G"]},
)
"""Products the demo bank publishes when the demo city is seeded."""


async def seed_demo_products(*, bank_client_id: str, bank_name: str) -> int:
    """Publish `DEMO_PRODUCTS` for the demo bank unless it already has products. Returns how many were new."""
    if await LoanProduct.exists().where(LoanProduct.bank_client_id == bank_client_id):
        return 0
    for fields in DEMO_PRODUCTS:
        await create_product(bank_client_id=bank_client_id, bank_name=bank_name,
                             fields={"industries": [], "regions": [], **fields})
    return len(DEMO_PRODUCTS)
