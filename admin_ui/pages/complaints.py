"""The complaint page, shared by every role that may see a complaint, and its commands.

Contract:
- ``GET /ui/complaints/{id}``: the complaint as :func:`core.complaints.service.get` gives it to the
  signed-in principal (404 when it is not theirs to see: another consumer's case, another
  jurisdiction's, another tenant's), so the API's masking holds: the consumer's name, phone and
  address are shown only to whoever handles the case. Timeline, messages, the deadlines' derivation,
  the live countdown, and a form for each action the principal may take now (``allowed_actions``).
- ``POST /ui/complaints/{id}/actions/{action}``: the form is converted to the API's body Struct of
  that action and passed to :func:`core.complaints.service.act`; success redirects back (303), a
  problem re-renders the page with the message next to the field (400, or 409 for a state conflict).
- Messages and attachments go through the API's own handlers (``ComplaintController``).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from admin_ui import i18n
from admin_ui.forms import field_errors, read_form, to_struct
from admin_ui.pages.common import call_api, deliver, district_of, node_label, platform_of, warn_hours
from admin_ui.render import countdown, language, page, redirect, require
from core.api.errors import Conflict
from core.auth.principal import Principal
from core.complaints import service
from core.complaints import states as S
from core.complaints.api import ComplaintController
from core.complaints.schemas import ACTION_BODIES
from core.enterprises import service as enterprises

SUPERVISION = ("urge", "spot_check", "return_visit", "interview")
METHODS = ("refund", "return_exchange", "repair", "compensation", "apology_explanation", "other")


def _f(name: str, widget: str, label: str, *, required: bool = False, options: list | None = None, **extra: Any) -> dict:
    return {"name": name, "widget": widget, "label": label, "required": required, "options": options or [], **extra}


def _note(required: bool = False) -> dict:
    return _f("note", "textarea", "field.note", required=required, minlength=2 if required else None, maxlength=2000)


async def action_fields(request: Request, principal: Principal, complaint: Any, action: str) -> list[dict]:
    """The inputs of one action's form (names are the action body's fields)."""
    if action == "dispatch":
        nodes = await platform_of(request).nodes(principal.tenant)
        here = nodes[complaint.node_code].path
        offices = [n for n in nodes.values() if n.level == "office" and n.path[: len(here)] == here and principal.covers(n.path)]
        lang = language(request)
        options = [{"value": n.code, "label": node_label(nodes, n.code, lang)} for n in sorted(offices, key=lambda n: n.path)]
        return [_f("office", "select", "field.office", required=True, options=options), _note()]
    if action == "accept":
        out = []
        if complaint.enterprise_id is None:
            nodes = await platform_of(request).nodes(principal.tenant)
            district = district_of(nodes, complaint.node_code)
            units, _ = await enterprises.directory(platform_of(request), principal.tenant, node=district.code if district else None,
                                                   q=None, cls=None, limit=500)
            out.append(_f("enterprise_id", "select", "field.enterprise_id", required=True,
                          options=[{"value": str(u.id), "label": f"{u.name} ({u.credit_code})"} for u in units]))
        return out + [_note()]
    if action in ("return", "leave_odr"):
        return [_f("reason", "textarea", "field.reason", required=True, minlength=2, maxlength=2000)]
    if action == "feedback":
        return [
            _f("handling_time", "text", "feedback.handling_time", required=True, maxlength=200),
            _f("process", "textarea", "feedback.process", required=True, maxlength=5000),
            _f("method", "select", "feedback.method", required=True,
               options=[{"value": m, "label_key": f"method.{m}"} for m in METHODS]),
            _f("settled", "radio", "feedback.settled", required=True,
               options=[{"value": "true", "label_key": "common.yes"}, {"value": "false", "label_key": "common.no"}]),
            _f("result", "textarea", "feedback.result", required=True, maxlength=5000),
            _f("amount_recovered", "number", "feedback.amount_recovered", min=0, step="0.01"),
        ]
    if action == "rate":
        return [
            _f("satisfaction", "radio", "field.satisfaction", required=True,
               options=[{"value": str(i), "label": "★" * i + f" {i}"} for i in range(5, 0, -1)]),
            _f("comment", "textarea", "field.comment", maxlength=1000),
        ]
    if action == "spot_check" and complaint.feedback:
        return [_note(required=True),
                _f("feedback_untrue", "select", "spot_check.finding", empty_label=i18n.t("spot_check.not_examined", language(request)),
                   options=[{"value": "false", "label_key": "spot_check.feedback_true"},
                            {"value": "true", "label_key": "spot_check.feedback_untrue"}])]
    if action in SUPERVISION:
        return [_note(required=True)]
    return [_note()]


async def _page(request: Request, complaint_id: str, *, status: int = 200, errors: dict | None = None,
                failed_action: str | None = None, form: dict | None = None) -> Response:
    principal = require(request)
    platform = platform_of(request)
    tenant = principal.tenant or ""
    complaint = await service.get(platform, tenant, principal, complaint_id)
    timeline = await service.timeline(platform, tenant, principal, complaint_id)
    messages = await call_api(ComplaintController.messages, request, tenant=tenant, complaint_id=complaint_id)
    explanation = await service.deadlines(platform, tenant, principal, complaint_id)
    nodes = await platform.nodes(tenant)
    lang = language(request)
    forms = []
    for action in complaint.allowed_actions:
        forms.append({"action": action, "fields": await action_fields(request, principal, complaint, action),
                      "supervision": action in SUPERVISION})
    return page(
        request, "complaint.html", status=status, c=complaint, timeline=timeline, messages=messages,
        explanation=explanation, node_name=node_label(nodes, complaint.node_code, lang),
        clock=countdown(complaint, lang, warn_hours(request)), forms=forms, errors=errors or {},
        failed_action=failed_action, form=form or {}, closed_states=S.TERMINAL,
    )


@get("/complaints/{complaint_id:str}")
async def show(request: Request, complaint_id: FromPath[str]) -> Response:
    return await _page(request, complaint_id)


@post("/complaints/{complaint_id:str}/actions/{action:str}")
async def act(request: Request, complaint_id: FromPath[str], action: FromPath[str]) -> Response:
    principal = require(request)
    body_type = ACTION_BODIES.get(action)
    if body_type is None:
        raise KeyError(f"action {action!r} does not exist")
    data = await read_form(request)
    try:
        body = to_struct(data, body_type)
        outbox: list = []
        await service.act(platform_of(request), principal.tenant or "", principal, complaint_id, action, body, outbox)
    except (msgspec.ValidationError, ValueError, Conflict) as exc:
        status = 409 if isinstance(exc, Conflict) else 400
        return await _page(request, complaint_id, status=status, errors=field_errors(exc), failed_action=action, form=data)
    await deliver(request, outbox)
    return redirect(f"/ui/complaints/{complaint_id}", done="common.done")


@post("/complaints/{complaint_id:str}/messages")
async def post_message(request: Request, complaint_id: FromPath[str]) -> Response:
    principal = require(request)
    data = await read_form(request)
    payload = {"body": str(data.get("body", "")).strip() or None}
    if data.get("file") is not None:
        payload["file"] = data["file"]
    try:
        await call_api(ComplaintController.post_message, request, tenant=principal.tenant or "", complaint_id=complaint_id,
                       data=payload)
    except (msgspec.ValidationError, ValueError) as exc:
        errors = field_errors(exc)
        if "_form" in errors and "file" in errors["_form"]:
            errors = {"file": errors["_form"]}
        return await _page(request, complaint_id, status=413 if "bytes" in str(exc) else 400, errors=errors,
                           failed_action="message", form=data)
    return redirect(f"/ui/complaints/{complaint_id}#messages", done="common.done")


@get("/complaints/{complaint_id:str}/attachments/{attachment_id:str}")
async def attachment(request: Request, complaint_id: FromPath[str], attachment_id: FromPath[str]) -> Response:
    principal = require(request)
    return await call_api(ComplaintController.attachment, request, tenant=principal.tenant or "",
                          complaint_id=complaint_id, attachment_id=attachment_id)


HANDLERS = [show, act, post_message, attachment]
