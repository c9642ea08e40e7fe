"""The monthly trend of a node's subtree: the ``class-table`` report's total row per month, in one
tenant transaction (the statistics dashboard's settlement-rate and cycle chart).

Contract: :func:`monthly_totals` takes ``(label, first day, last day)`` months and returns, per month
in that order, the total row's ``handled`` (0 when the month has no row), ``settlement_rate`` in
percent rounded to 0.1 (None when there is no rate) and ``avg_cycle_days`` (None likewise).
"""

from __future__ import annotations

import datetime as dt

from core.db.engine import tenant_transaction
from core.reports.registry import SPECS


async def monthly_totals(tenant: str, node_path: str, months: list[tuple[str, dt.date, dt.date]]) -> dict:
    rate, cycle, handled = [], [], []
    run = SPECS["class-table"].run
    async with tenant_transaction(tenant) as conn:
        for _, first, last in months:
            total = next((r for r in await run(conn, node_path, first, last) if r.get("is_total")), {})
            handled.append(total.get("handled", 0))
            rate.append(round(total["settlement_rate"] * 100, 1) if total.get("settlement_rate") is not None else None)
            cycle.append(total.get("avg_cycle_days"))
    return {"labels": [m[0] for m in months], "settlement_rate": rate, "avg_cycle_days": cycle, "handled": handled}
