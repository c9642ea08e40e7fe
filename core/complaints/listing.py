"""One page of the complaints a principal may see, with the tallies of the whole list: the service
behind the console's work queue, enterprise inbox and consumer's own complaints.

Contract:
- :func:`list_complaints` lists page ``page`` (1-based; a page past the last one gives the last one,
  a list shrinks while it is open) of ``size`` complaints in the chosen ``states`` that ``principal``
  may see, through the API's own rules (:func:`core.complaints.access.visibility_sql` and
  :func:`~core.complaints.access.view`, which masks the consumer's contact details for whoever does
  not handle the case): running deadline soonest first, then newest, then by id (a stable order, so
  pages neither repeat nor skip a case).
- In the same tenant transaction and the same pass it counts, per state, everything the principal may
  see, and how many of those in the chosen states have a running deadline past due (``overdue``) or
  due within ``warn_hours`` (``warn``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.auth.principal import Principal
from core.complaints.access import view, visibility_sql
from core.complaints.service import COMPLAINT_COLUMNS
from core.db.engine import tenant_transaction

DUE = """CASE WHEN state = 'with_enterprise' AND contacted_at IS NULL THEN contact_due
              WHEN state IN ('with_enterprise', 'contacted', 'negotiating') THEN close_due END"""
"""The moment the complaint's running clock is due (None when no clock runs)."""


def last_page(total: int, size: int) -> int:
    """How many pages ``total`` items make, ``size`` per page (1 for an empty list)."""
    return max(1, -(-int(total) // max(1, int(size))))


@dataclass(frozen=True)
class ComplaintListing:
    items: list
    """The page's complaints (``ComplaintView``)."""
    page: int
    """The page listed (the one asked for, or the last one)."""
    size: int
    total: int
    """All the principal may see in the chosen states."""
    counts: dict[str, int] = field(default_factory=dict)
    """All the principal may see, per state."""
    overdue: int = 0
    """In the chosen states: running deadline past due."""
    warn: int = 0
    """In the chosen states: running deadline due within the warning window."""


async def list_complaints(principal: Principal, states: tuple[str, ...] | list[str], *, page: int, size: int,
                          warn_hours: float = 0.0) -> ComplaintListing:
    where, params = visibility_sql(principal, 1)
    n = len(params) + 1
    chosen = list(states)
    size = max(1, int(size))
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
        number = min(max(1, page), last_page(total, size))
        rows = []
        if total:
            rows = await conn.fetch(
                f"""SELECT {COMPLAINT_COLUMNS} FROM complaints WHERE {where} AND state = ANY(${n})
                    ORDER BY {DUE} ASC NULLS LAST, created_at DESC, id DESC LIMIT {size} OFFSET {(number - 1) * size}""",
                *params, chosen,
            )
    picked = [r for r in tallies if r["state"] in chosen]
    return ComplaintListing(items=[view(principal, r) for r in rows], page=number, size=size, total=total, counts=counts,
                            overdue=sum(r["overdue"] for r in picked), warn=sum(r["warn"] for r in picked))
