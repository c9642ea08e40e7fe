"""The consumer's pages: their complaints, and filing a new one (told when the company is an ODR unit,
Art. 23).

Contract:
- ``/ui/my`` lists only the consumer's own complaints (the API's visibility rule), ``MY_PAGE_SIZE`` a
  page (``?page=``, 1-based; 400 naming ``page`` when it is not a whole number from 1; past the last
  page, the last); each opens on the shared complaint page, which answers 404 for anyone else's
  complaint id.
- Filing converts the form to the API's :class:`~core.complaints.schemas.ComplaintIntake` and calls
  :func:`core.complaints.service.intake`. The form carries an idempotency key made when it was shown,
  so a double submission files one complaint. The ODR check is the public API's (``odr-check``): with
  JavaScript it runs as the company is typed in, without it by the "check" button.
"""

from __future__ import annotations

import secrets

import msgspec
from litestar import Request, Response, get, post

from admin_ui.forms import field_errors, read_form, to_struct
from admin_ui.pages.common import call_api, deliver, node_label, platform_of, warn_hours
from admin_ui.pages.complaint_list import complaint_page
from admin_ui.paging import requested_page
from admin_ui.render import countdown, language, page, redirect, require
from core.auth.principal import Role
from core.complaints import service
from core.complaints import states as S
from core.complaints.api import PublicConsumerController
from core.complaints.schemas import ComplaintIntake

CONSUMER = {Role.CONSUMER}
MY_PAGE_SIZE = 20
"""Complaints per page of "my complaints"."""


@get("/my")
async def my_complaints(request: Request) -> Response:
    principal = require(request, CONSUMER)
    number = requested_page(request.query_params)
    listed = await complaint_page(principal, S.STATES, page=number, size=MY_PAGE_SIZE, path="/ui/my")
    lang = language(request)
    items = [{"c": c, "clock": countdown(c, lang, warn_hours(request))} for c in listed.items]
    return page(request, "my.html", items=items, pager=listed.pager)


async def odr_check(request: Request, tenant: str, credit_code: str | None, name: str | None) -> dict | None:
    """The public ODR-unit check, or None when nothing was given to check (or it is malformed)."""
    if not credit_code and not name:
        return None
    try:
        return await call_api(PublicConsumerController.odr_check, request, tenant=tenant,
                              credit_code=credit_code or None, name=None if credit_code else name)
    except ValueError:
        return None


async def submit_intake(request: Request, principal, form_page, done: str) -> Response:
    """A complaint form's POST (the consumer's and the bureau's forwarding form): with the ``check``
    button only the ODR check, shown on the form again (``form_page(request, form=, check=)``); else the
    intake through the service, redirecting to the new complaint (``done``: the message label), or the
    form again with a 400 and the error next to its field."""
    data = await read_form(request)
    if data.pop("check", None) is not None:
        check = await odr_check(request, principal.tenant or "", str(data.get("credit_code", "")).strip(),
                                str(data.get("company_name", "")).strip())
        return await form_page(request, form=data, check=check or {"odr_unit": False})
    try:
        intake = to_struct(data, ComplaintIntake)
        outbox: list = []
        result = await service.intake(platform_of(request), principal.tenant or "", principal, intake, outbox)
    except (msgspec.ValidationError, ValueError, KeyError) as exc:
        return await form_page(request, status=400, errors=field_errors(exc), form=data)
    await deliver(request, outbox)
    return redirect(f"/ui/complaints/{result.complaint.id}", done=done)


async def _form_page(request: Request, *, status: int = 200, errors: dict | None = None, form: dict | None = None,
                     check: dict | None = None) -> Response:
    principal = require(request, CONSUMER)
    nodes = await platform_of(request).nodes(principal.tenant or "")
    lang = language(request)
    districts = [{"value": n.code, "label": node_label(nodes, n.code, lang)}
                 for n in sorted(nodes.values(), key=lambda n: n.path) if n.level == "district"]
    values = dict(form or {})
    values.setdefault("idempotency_key", secrets.token_urlsafe(16))
    return page(request, "file.html", status=status, errors=errors or {}, form=values, districts=districts, check=check)


@get("/my/new")
async def new_form(request: Request) -> Response:
    return await _form_page(request)


@post("/my/new")
async def file_complaint(request: Request) -> Response:
    """File the complaint; with the ``check`` button, only run the ODR check and show the form again."""
    return await submit_intake(request, require(request, CONSUMER), _form_page, "complaint.filed_ok")


HANDLERS = [my_complaints, new_form, file_complaint]
