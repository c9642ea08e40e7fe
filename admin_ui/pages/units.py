"""ODR units: the bureau's list, a unit's page (for its reviewing bureau and its own specialists),
liaison changes and filings (Art. 15), suspension / reinstatement / revocation (Art. 22).

Contract:
- Everything goes through :mod:`core.enterprises.service`, which decides who may see and do what:
  the unit list for any bureau role covering the node; a unit's page (with liaison names and phones)
  for its reviewing bureau or its own specialists only (404 for everyone else); status decisions for
  the reviewing bureau only.
- A filing that opens a new specialist account shows its one-time password once, on the answer page.
"""

from __future__ import annotations

import uuid

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from admin_ui.forms import field_errors, read_form, to_struct
from admin_ui.pages.common import node_label, platform_of
from admin_ui.render import language, page, redirect, require
from core.auth.principal import BUREAU_ROLES, POLICY_ROLES, Role
from core.enterprises import service as enterprises
from core.enterprises.common import FieldError
from core.enterprises.schemas import LiaisonChangeRequest, LiaisonFiling, RevocationGround, StatusDecision

UNIT_STATUSES = ("applying", "active", "suspended", "revoked", "rejected")


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise KeyError("not found") from None


@get("/bureau/units")
async def units(request: Request) -> Response:
    principal = require(request, BUREAU_ROLES)
    status = request.query_params.get("status") or None
    if status not in UNIT_STATUSES:
        status = None
    q = (request.query_params.get("q") or "").strip()[:100] or None
    rows = await enterprises.list_units(platform_of(request), principal.tenant or "", principal, node=principal.node or "",
                                        status=status, q=q)
    nodes = await platform_of(request).nodes(principal.tenant or "")
    lang = language(request)
    return page(request, "units.html", rows=rows, status_filter=status or "", q=q or "", statuses=UNIT_STATUSES,
                district={r.node_code: node_label(nodes, r.node_code, lang) for r in rows})


@get("/unit")
async def own_unit(request: Request) -> Response:
    """A specialist's own unit."""
    principal = require(request, {Role.ENTERPRISE_SPECIALIST})
    return redirect(f"/ui/units/{principal.enterprise_id}")


async def _unit_page(request: Request, enterprise_id: str, *, status: int = 200, errors: dict | None = None,
                     failed: str | None = None, form: dict | None = None, filed: object = None) -> Response:
    principal = require(request)
    detail = await enterprises.get_unit(platform_of(request), principal.tenant or "", principal, _uuid(enterprise_id))
    nodes = await platform_of(request).nodes(principal.tenant or "")
    return page(request, "unit.html", status=status, d=detail, u=detail.unit, errors=errors or {}, failed=failed,
                form=form or {}, filed=filed, grounds=[g.value for g in RevocationGround],
                reviewer=principal.role in POLICY_ROLES, district=node_label(nodes, detail.unit.node_code, language(request)))


@get("/units/{enterprise_id:str}")
async def unit(request: Request, enterprise_id: FromPath[str]) -> Response:
    return await _unit_page(request, enterprise_id)


@post("/units/{enterprise_id:str}/status/{action:str}")
async def change_status(request: Request, enterprise_id: FromPath[str], action: FromPath[str]) -> Response:
    principal = require(request, POLICY_ROLES)
    if action not in ("suspend", "reinstate", "revoke"):
        raise KeyError("no such action")
    data = await read_form(request)
    try:
        decision = None if action == "reinstate" else to_struct(data, StatusDecision)
        await enterprises.change_status(platform_of(request), principal.tenant or "", principal, _uuid(enterprise_id), action, decision)
    except (msgspec.ValidationError, FieldError, ValueError) as exc:
        return await _unit_page(request, enterprise_id, status=getattr(exc, "status_code", 400), errors=field_errors(exc),
                                failed=action, form=data)
    return redirect(f"/ui/units/{enterprise_id}", done="common.saved")


@post("/units/{enterprise_id:str}/liaison-changes")
async def report_change(request: Request, enterprise_id: FromPath[str]) -> Response:
    principal = require(request)
    data = await read_form(request)
    try:
        change = to_struct(data, LiaisonChangeRequest)
        await enterprises.open_liaison_change(platform_of(request), principal.tenant or "", principal, _uuid(enterprise_id), change)
    except (msgspec.ValidationError, FieldError, ValueError) as exc:
        return await _unit_page(request, enterprise_id, status=getattr(exc, "status_code", 400), errors=field_errors(exc),
                                failed="change", form=data)
    return redirect(f"/ui/units/{enterprise_id}", done="common.saved")


@post("/units/{enterprise_id:str}/liaison-changes/{change_id:str}/filing")
async def file_liaison(request: Request, enterprise_id: FromPath[str], change_id: FromPath[str]) -> Response:
    principal = require(request)
    data = await read_form(request)
    try:
        filing = to_struct(data, LiaisonFiling)
        filed = await enterprises.file_liaison(platform_of(request), principal.tenant or "", principal, _uuid(enterprise_id),
                                               _uuid(change_id), filing)
    except (msgspec.ValidationError, FieldError, ValueError) as exc:
        return await _unit_page(request, enterprise_id, status=getattr(exc, "status_code", 400), errors=field_errors(exc),
                                failed=f"filing-{change_id}", form=data)
    if filed.initial_credentials:
        return await _unit_page(request, enterprise_id, filed=filed)
    return redirect(f"/ui/units/{enterprise_id}", done="common.saved")


HANDLERS = [units, own_unit, unit, change_status, report_change, file_liaison]
