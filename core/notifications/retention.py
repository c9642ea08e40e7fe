"""Retention of the delivery outbox: delivered deliveries are removed after ``ODR_DELIVERY_RETENTION_DAYS``.

Contract:
- Only rows in a final state that was not a failure (``delivered``, ``skipped``) whose ``finished_at``
  is older than the retention are removed; ``pending`` rows and dead-lettered ones (``dead``, kept for
  the bureau until sent again) never are.
- One call removes at most ``batch`` rows in the caller's tenant transaction (never one giant DELETE);
  rows are taken ``FOR UPDATE SKIP LOCKED``, so several workers sweep disjoint rows.
"""

from __future__ import annotations

import asyncpg

SWEEP_DELIVERIES = """
DELETE FROM deliveries WHERE id IN (
    SELECT id FROM deliveries
    WHERE state IN ('delivered', 'skipped') AND finished_at < now() - make_interval(secs => $1)
    ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED)
"""


async def sweep_deliveries(conn: asyncpg.Connection, *, retention_days: float, batch: int = 1000) -> int:
    """Remove up to ``batch`` delivered deliveries finished more than ``retention_days`` ago; how many."""
    status = await conn.execute(SWEEP_DELIVERIES, float(retention_days) * 86400.0, batch)
    return int(status.split()[-1])
