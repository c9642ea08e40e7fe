"""The reports, by name: :data:`SPECS` (titles, columns, function) and :data:`REPORTS` (name ->
``async def report(conn, node_path, since, until, **opts) -> list[dict]``), e.g. for
``benchmarks/evaluation.py``::

    async with tenant_transaction(slug) as conn:
        for name, report in REPORTS.items():
            rows = await report(conn, "320000", None, None)
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from core.reports.common import ReportSpec
from core.reports.coverage import COVERAGE
from core.reports.hotspots import HOT_SPOTS
from core.reports.merchants import TOP_MERCHANTS
from core.reports.sql import CLASS_TABLE
from core.reports.states import COMPLAINTS_BY_STATE

SPECS: dict[str, ReportSpec] = {s.name: s for s in (CLASS_TABLE, COMPLAINTS_BY_STATE, COVERAGE, TOP_MERCHANTS, HOT_SPOTS)}
REPORTS: dict[str, Callable[..., Awaitable[list[dict[str, Any]]]]] = {name: s.run for name, s in SPECS.items()}
