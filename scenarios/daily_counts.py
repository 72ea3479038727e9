"""What 信易+ contributes to the operators' daily statistics (registered by the composition, read by
credit/stats.py through core/daily_counts.py): redemptions and credit orders made in a time window."""

from __future__ import annotations

from datetime import datetime

from scenarios.tables import CreditOrder, Redemption

METRICS = ("redemptions", "credit_orders")


async def count_window(start: datetime, end: datetime) -> dict[str, int]:
    """Redemptions and credit orders created in [start, end), whatever became of them afterwards (a
    cancelled redemption or a finished order was still made that day)."""
    return {
        "redemptions": await Redemption.count().where((Redemption.created_at >= start) & (Redemption.created_at < end)),
        "credit_orders": await CreditOrder.count().where(
            (CreditOrder.created_at >= start) & (CreditOrder.created_at < end)),
    }


__all__ = ["METRICS", "count_window"]
