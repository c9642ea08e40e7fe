"""The paged complaint lists of the console: the bureau's work queue, the enterprise inbox and the
consumer's own complaints.

Contract:
- :func:`complaint_page` is :func:`core.complaints.listing.list_complaints` (the API's visibility and
  masking rules, a stable order, the tallies of the whole list in the same transaction) with the
  console's pager: the tabs' counts, the list's total and the queue's badges cover the whole list, not
  one page; ``warn`` is the warning window :func:`admin_ui.render.countdown` tells.
- A page past the last one shows the last one (:meth:`admin_ui.paging.Pager.clamped`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from admin_ui.paging import Pager
from core.auth.principal import Principal
from core.complaints.listing import list_complaints


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
    listing = await list_complaints(principal, states, page=page, size=size, warn_hours=warn_hours)
    pager = Pager.clamped(listing.page, listing.size, listing.total, path=path, query=query)
    return ComplaintPage(items=listing.items, pager=pager, counts=listing.counts, overdue=listing.overdue,
                         warn=listing.warn)
