"""The enterprise specialist's inbox: their unit's cases in ODR, soonest deadline first, with live
countdowns; new cases appear without reloading (the page listens to ``/ui/events`` and refreshes the
list; ``?fragment=1`` answers the list alone). Visibility and masking are the API's
(:func:`admin_ui.pages.common.complaint_rows`): a specialist sees their enterprise's cases once in ODR,
with the consumer's contact details while the case is with the enterprise."""

from __future__ import annotations

import datetime as dt

from litestar import Request, Response, get

from admin_ui.pages.common import complaint_rows, warn_hours
from admin_ui.render import countdown, language, page, require
from core.auth.principal import Role
from core.complaints import states as S

VIEWS: dict[str, tuple[str, ...]] = {
    "active": (S.WITH_ENTERPRISE, S.CONTACTED, S.NEGOTIATING),
    "feedback_submitted": (S.FEEDBACK_SUBMITTED,),
    "done": tuple(s for s in S.STATES if s in S.TERMINAL),
    "all": S.STATES,
}
LIMIT = 300


@get("/inbox")
async def inbox(request: Request) -> Response:
    principal = require(request, {Role.ENTERPRISE_SPECIALIST})
    chosen = request.query_params.get("view", "active")
    if chosen not in VIEWS:
        chosen = "active"
    complaints, counts = await complaint_rows(principal, VIEWS[chosen], LIMIT)
    lang = language(request)
    hours = warn_hours(request)
    now = dt.datetime.now(dt.timezone.utc)
    items = [{"c": c, "clock": countdown(c, lang, hours, now)} for c in complaints]
    view_counts = {name: sum(counts.get(s, 0) for s in states) for name, states in VIEWS.items()}
    template = "inbox_table.html" if request.query_params.get("fragment") else "inbox.html"
    return page(request, template, items=items, view=chosen, views=list(VIEWS), view_counts=view_counts)


HANDLERS = [inbox]
