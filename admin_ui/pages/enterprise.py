"""The enterprise specialist's inbox: their unit's cases in ODR, soonest deadline first, with live
countdowns; new cases appear without reloading (the page listens to ``/ui/events`` and refreshes the
list; ``?fragment=1`` answers the list alone, keeping the view and the page). ``PAGE_SIZE`` cases a page
(``?page=``, 1-based; 400 naming ``page`` when it is not a whole number from 1; past the last page,
the last). Visibility and masking are the API's (:func:`admin_ui.pages.complaint_list.complaint_page`):
a specialist sees their enterprise's cases once in ODR, with the consumer's contact details while the
case is with the enterprise."""

from __future__ import annotations

import datetime as dt

from litestar import Request, Response, get

from admin_ui.pages.common import warn_hours
from admin_ui.pages.complaint_list import complaint_page
from admin_ui.paging import requested_page
from admin_ui.render import countdown, language, page, require
from core.auth.principal import Role
from core.complaints import states as S

VIEWS: dict[str, tuple[str, ...]] = {
    "active": (S.WITH_ENTERPRISE, S.CONTACTED, S.NEGOTIATING),
    "feedback_submitted": (S.FEEDBACK_SUBMITTED,),
    "done": tuple(s for s in S.STATES if s in S.TERMINAL),
    "all": S.STATES,
}
PAGE_SIZE = 50
"""Cases per page of the inbox."""


@get("/inbox")
async def inbox(request: Request) -> Response:
    principal = require(request, {Role.ENTERPRISE_SPECIALIST})
    chosen = request.query_params.get("view", "active")
    if chosen not in VIEWS:
        chosen = "active"
    number = requested_page(request.query_params)
    lang = language(request)
    hours = warn_hours(request)
    listed = await complaint_page(principal, VIEWS[chosen], page=number, size=PAGE_SIZE, warn_hours=hours,
                                  path="/ui/inbox", query={"view": chosen})
    now = dt.datetime.now(dt.timezone.utc)
    items = [{"c": c, "clock": countdown(c, lang, hours, now)} for c in listed.items]
    template = "inbox_table.html" if request.query_params.get("fragment") else "inbox.html"
    return page(request, template, items=items, view=chosen, views=list(VIEWS), view_counts=listed.view_counts(VIEWS),
                pager=listed.pager)


HANDLERS = [inbox]
