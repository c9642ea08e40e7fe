"""The bureau's pages: the work queue of its subtree, applications to review (Art. 9), and the list of
liaison-change obligations (Art. 15).

Contract:
- The queue lists the complaints the principal may see (:func:`admin_ui.pages.complaint_list.complaint_page`:
  the API's visibility and masking) in the chosen group of states (``?view=``), soonest running
  deadline first, ``QUEUE_PAGE_SIZE`` a page (``?page=``, 1-based; 400 naming ``page`` when it is not
  a whole number from 1; past the last page, the last), with a countdown: ``warn`` within
  ``ODR_WARNING_BEFORE_HOURS`` of the due moment, ``overdue`` past it (the badges count the whole
  view). ``?fragment=1`` answers the table alone (the page refreshes it on live notifications and
  every minute, keeping the view and the page).
- Forwarding a complaint from 12315 is :mod:`admin_ui.pages.forward`'s.
- Lodging an application recommended by the bureau (Art. 7) is :mod:`admin_ui.pages.recommend`'s (linked
  from the applications list).
- Applications, documents and reviews go through :mod:`core.enterprises.service` (reviewing bureau
  only: a bureau officer or province admin covering the unit's district; 404 elsewhere). An approval
  shows the specialists' one-time passwords once, on the answer page itself (no redirect, no storage).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from admin_ui.forms import field_errors, read_form, to_struct
from admin_ui.pages.common import node_label, platform_of, warn_hours
from admin_ui.pages.complaint_list import complaint_page
from admin_ui.paging import requested_page
from admin_ui.render import countdown, language, page, require
from core.auth.principal import BUREAU_ROLES, POLICY_ROLES
from core.complaints import states as S
from core.enterprises import service as enterprises
from core.enterprises.common import FieldError
from core.enterprises.schemas import CONDITIONS, DOCUMENT_KINDS, Review
from core.files import download_headers

IN_ODR_RUNNING = (S.WITH_ENTERPRISE, S.CONTACTED, S.NEGOTIATING)
VIEWS: dict[str, tuple[str, ...]] = {
    "open": tuple(s for s in S.STATES if s in S.OPEN),
    "registered": (S.REGISTERED,),
    "dispatched": (S.DISPATCHED,),
    "in_odr": IN_ODR_RUNNING,
    "feedback_submitted": (S.FEEDBACK_SUBMITTED,),
    "done": tuple(s for s in S.STATES if s in S.TERMINAL),
    "all": S.STATES,
}
QUEUE_PAGE_SIZE = 50
"""Complaints per page of the queue."""


@get("/bureau")
async def queue(request: Request) -> Response:
    principal = require(request, BUREAU_ROLES)
    chosen = request.query_params.get("view", "open")
    if chosen not in VIEWS:
        chosen = "open"
    number = requested_page(request.query_params)
    lang = language(request)
    hours = warn_hours(request)
    listed = await complaint_page(principal, VIEWS[chosen], page=number, size=QUEUE_PAGE_SIZE, warn_hours=hours,
                                  path="/ui/bureau", query={"view": chosen})
    now = dt.datetime.now(dt.timezone.utc)
    nodes = await platform_of(request).nodes(principal.tenant or "")
    items = [{"c": c, "clock": countdown(c, lang, hours, now), "node": node_label(nodes, c.node_code, lang)} for c in listed.items]
    context: dict[str, Any] = {
        "items": items, "view": chosen, "views": list(VIEWS), "view_counts": listed.view_counts(VIEWS),
        "warnings": listed.warn, "overdue": listed.overdue, "pager": listed.pager,
        "scope_name": node_label(nodes, principal.node, lang),
    }
    template = "queue_table.html" if request.query_params.get("fragment") else "queue.html"
    return page(request, template, **context)


# -- applications (Art. 7-9) -------------------------------------------------------------------------
@get("/bureau/applications")
async def applications(request: Request) -> Response:
    principal = require(request, POLICY_ROLES)
    status = request.query_params.get("status") or None
    if status not in (None, "submitted", "approved", "rejected"):
        status = None
    rows = await enterprises.list_applications(platform_of(request), principal.tenant or "", principal, node=principal.node or "",
                                               status=status)
    nodes = await platform_of(request).nodes(principal.tenant or "")
    lang = language(request)
    return page(request, "applications.html", rows=rows, status_filter=status or "",
                district={r.node_code: node_label(nodes, r.node_code, lang) for r in rows})


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise KeyError("not found") from None


async def _application_page(request: Request, application_id: str, *, status: int = 200, errors: dict | None = None,
                            form: dict | None = None, outcome: Any = None) -> Response:
    principal = require(request, POLICY_ROLES)
    detail = await enterprises.get_application(platform_of(request), principal.tenant or "", principal, _uuid(application_id))
    nodes = await platform_of(request).nodes(principal.tenant or "")
    lang = language(request)
    return page(request, "application.html", status=status, a=detail, errors=errors or {}, form=form or {},
                outcome=outcome, conditions=CONDITIONS, district=node_label(nodes, detail.node_code, lang),
                recommender=node_label(nodes, detail.recommended_by, lang))


@get("/bureau/applications/{application_id:str}")
async def application(request: Request, application_id: FromPath[str]) -> Response:
    return await _application_page(request, application_id)


@get("/bureau/applications/{application_id:str}/documents/{kind:str}")
async def document(request: Request, application_id: FromPath[str], kind: FromPath[str]) -> Response:
    principal = require(request, POLICY_ROLES)
    if kind not in DOCUMENT_KINDS:
        raise KeyError("no such document")
    filename, content_type, content = await enterprises.get_document(
        platform_of(request), principal.tenant or "", principal, _uuid(application_id), kind)
    return Response(content, media_type=content_type, headers=download_headers(filename))


@post("/bureau/applications/{application_id:str}/review")
async def review(request: Request, application_id: FromPath[str]) -> Response:
    principal = require(request, POLICY_ROLES)
    data = await read_form(request)
    try:
        decision = to_struct(data, Review)
        outcome = await enterprises.review_application(platform_of(request), principal.tenant or "", principal,
                                                       _uuid(application_id), decision)
    except (msgspec.ValidationError, FieldError, ValueError) as exc:
        status = getattr(exc, "status_code", 400)
        return await _application_page(request, application_id, status=status, errors=field_errors(exc), form=data)
    return await _application_page(request, application_id, outcome=outcome)


# -- liaison-change obligations (Art. 15) ------------------------------------------------------------
@get("/bureau/liaison-changes")
async def liaison_changes(request: Request) -> Response:
    principal = require(request, BUREAU_ROLES)
    status = request.query_params.get("status") or None
    if status not in (None, "open", "overdue", "filed"):
        status = None
    rows = await enterprises.list_liaison_changes(platform_of(request), principal.tenant or "", principal,
                                                  node=principal.node or "", status=status)
    now = dt.datetime.now(dt.timezone.utc)
    return page(request, "liaison_changes.html", rows=rows, status_filter=status or "", now=now)


HANDLERS = [queue, applications, application, document, review, liaison_changes]
