"""The paged complaint lists of the console: the bureau's work queue, the enterprise inbox and the
consumer's own complaints.

Contract:
- :func:`complaint_page` lists one page of the complaints a principal may see in the chosen states,
  through the API's own rules (:func:`core.complaints.access.visibility_sql` and
  :func:`~core.complaints.access.view`, which masks the consumer's contact details for whoever does
  not handle the case): running deadline soonest first, then newest, then by id (a stable order, so
  pages neither repeat nor skip a case).
- In the same transaction and the same pass it counts, per state, everything the principal may see,
  and how many of those have a running deadline past due (``overdue``) or due within the warning
  window (``warn``, as :func:`admin_ui.render.countdown` tells them): the tabs' counts, the list's
  total and the queue's badges cover the whole list, not one page.
- A page past the last one shows the last one (:meth:`admin_ui.paging.Pager.clamped`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from admin_ui.paging import Pager
from core.auth.principal import Principal
from core.complaints.access import view, visibility_sql
from core.complaints.service import COMPLAINT_COLUMNS
from core.db.engine import tenant_transaction

DUE = """CASE WHEN state = 'with_enterprise' AND contacted_at IS NULL THEN contact_due
              WHEN state IN ('with_enterprise', 'contacted', 'negotiating') THEN close_due END"""
"""The moment the complaint's running clock is due (None when no clock runs): as :func:`admin_ui.render.next_due`."""


@dataclass(frozen=True)
class ComplaintPage:
    items: list
    """The page's complaints (``ComplaintView``)."""
    pager: Pager
    counts: dict[str, int] = field(default_factory=dict)
    """All the principal may see, per state."""
    overdue: int = 0
    """In the chosen states: running deadline past due."""
    warn: int = 0
    """In the chosen states: running deadline due within the warning window."""

    def view_counts(self, views: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
        return {name: sum(self.counts.get(s, 0) for s in states) for name, states in views.items()}


async def complaint_page(principal: Principal, states: tuple[str, ...] | list[str], *, page: int, size: int,
                         warn_hours: float = 0.0, path: str = "", query: Mapping[str, str] | None = None) -> ComplaintPage:
    """Page ``page`` (1-based, clamped to the last) of ``size`` complaints in ``states`` that ``principal``
    may see; ``path`` and ``query`` make the pager's links."""
    where, params = visibility_sql(principal, 1)
    n = len(params) + 1
    chosen = list(states)
    async with tenant_transaction(principal.tenant or "") as conn:
        tallies = await conn.fetch(
            f"""SELECT state, count(*) AS n,
                       count(*) FILTER (WHERE due < now()) AS overdue,
                       count(*) FILTER (WHERE due >= now() AND due < now() + ${n}::float8 * interval '1 hour') AS warn
                FROM (SELECT state, {DUE} AS due FROM complaints WHERE {where}) c GROUP BY state""",
            *params, float(warn_hours),
        )
        counts = {r["state"]: r["n"] for r in tallies}
        total = sum(counts.get(s, 0) for s in chosen)
        pager = Pager.clamped(page, size, total, path=path, query=query)
        rows = []
        if total:
            rows = await conn.fetch(
                f"""SELECT {COMPLAINT_COLUMNS} FROM complaints WHERE {where} AND state = ANY(${n})
                    ORDER BY {DUE} ASC NULLS LAST, created_at DESC, id DESC LIMIT {pager.size} OFFSET {pager.offset}""",
                *params, chosen,
            )
    picked = [r for r in tallies if r["state"] in chosen]
    return ComplaintPage(items=[view(principal, r) for r in rows], pager=pager, counts=counts,
                         overdue=sum(r["overdue"] for r in picked), warn=sum(r["warn"] for r in picked))
