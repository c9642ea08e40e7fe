"""Pages anyone may open without signing in: the list of provinces, the ODR directory (Art. 23),
self-application of an enterprise (Art. 7-8), consumer sign-up, and the ODR check fragment.

Contract:
- The directory is :func:`core.enterprises.service.directory`: active units only, public facts only
  (never a liaison or any other person).
- The application form is the API's :class:`~core.enterprises.schemas.ApplicationForm` read and
  stored by :mod:`core.enterprises.service` (all checks and the "nothing stored unless all is well"
  rule are the API's); files must be chosen again after an error (browsers do not keep them).
- Sign-up is the public API's (``PublicConsumerController.sign_up``).
"""

from __future__ import annotations

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from admin_ui.forms import field_errors, read_form, to_struct
from admin_ui.pages.common import call_api, node_label, platform_of
from admin_ui.pages.consumer import odr_check
from admin_ui.render import language, page, redirect
from core.complaints.api import PublicConsumerController
from core.complaints.schemas import ConsumerSignup
from core.enterprises import service as enterprises
from core.enterprises.common import FieldError
from core.enterprises.directory import public_provinces
from core.enterprises.schemas import CONDITIONS, DOCUMENT_KINDS, LIAISON_ROLES, ApplicationForm, UnitType

PAGE_SIZE = 50


@get("/public")
async def provinces(request: Request) -> Response:
    return page(request, "provinces.html", provinces=await public_provinces())


async def _tenant_nodes(request: Request, tenant: str) -> dict:
    await platform_of(request).tenant(tenant)  # 404 for an unknown or inactive province
    return await platform_of(request).nodes(tenant)


@get("/public/{tenant:str}/directory")
async def directory(request: Request, tenant: FromPath[str]) -> Response:
    nodes = await _tenant_nodes(request, tenant)
    query = request.query_params
    node = query.get("node") or None
    if node is not None and node not in nodes:
        node = None
    q = (query.get("q") or "").strip()[:100] or None
    cls = (query.get("class") or "").strip()[:40] or None
    try:
        page_no = max(1, min(10_000, int(query.get("page") or 1)))
    except ValueError:
        page_no = 1
    units, total = await enterprises.directory(platform_of(request), tenant, node=node, q=q, cls=cls, limit=PAGE_SIZE,
                                               offset=(page_no - 1) * PAGE_SIZE)
    lang = language(request)
    areas = [{"value": n.code, "label": node_label(nodes, n.code, lang)}
             for n in sorted(nodes.values(), key=lambda n: n.path) if n.level in ("province", "city", "district")]
    info = await platform_of(request).tenant(tenant)
    return page(request, "directory.html", tenant=tenant, province=info.name_en if lang == "en" and info.name_en else info.name,
                units=units, total=total, district_names={c: node_label(nodes, c, lang) for c in nodes}, page_no=page_no, pages=max(1, -(-total // PAGE_SIZE)), areas=areas, q=q or "",
                node=node or "", cls=cls or "")


# -- self-application (Art. 7-8) ---------------------------------------------------------------------
async def _apply_page(request: Request, tenant: str, *, status: int = 200, errors: dict | None = None,
                      form: dict | None = None, submitted: object = None) -> Response:
    nodes = await _tenant_nodes(request, tenant)
    lang = language(request)
    districts = [{"value": n.code, "label": node_label(nodes, n.code, lang)}
                 for n in sorted(nodes.values(), key=lambda n: n.path) if n.level == "district"]
    return page(request, "apply.html", status=status, tenant=tenant, errors=errors or {}, form=form or {}, districts=districts,
                conditions=CONDITIONS, documents=DOCUMENT_KINDS, liaison_roles=LIAISON_ROLES,
                unit_types=[u.value for u in UnitType], submitted=submitted)


@get("/public/{tenant:str}/apply")
async def apply_form(request: Request, tenant: FromPath[str]) -> Response:
    return await _apply_page(request, tenant)


@post("/public/{tenant:str}/apply", request_max_body_size=4 * 5 * 1024 * 1024 + 1024 * 1024)
async def apply(request: Request, tenant: FromPath[str]) -> Response:
    await _tenant_nodes(request, tenant)
    data = await read_form(request)
    shown = {k: v for k, v in data.items() if isinstance(v, str)}
    try:
        form = to_struct(data, ApplicationForm, checkboxes=CONDITIONS)
        application = await enterprises.read_application(form)
        submitted = await enterprises.submit_application(platform_of(request), tenant, application, route="self",
                                                         submitted_by="public")
    except (msgspec.ValidationError, FieldError, ValueError) as exc:
        return await _apply_page(request, tenant, status=getattr(exc, "status_code", 400), errors=field_errors(exc), form=shown)
    return await _apply_page(request, tenant, status=201, submitted=submitted)


# -- consumer sign-up --------------------------------------------------------------------------------
@get("/public/{tenant:str}/signup")
async def signup_form(request: Request, tenant: FromPath[str]) -> Response:
    await _tenant_nodes(request, tenant)
    return page(request, "signup.html", tenant=tenant)


@post("/public/{tenant:str}/signup")
async def signup(request: Request, tenant: FromPath[str]) -> Response:
    await _tenant_nodes(request, tenant)
    data = await read_form(request)
    shown = {k: v for k, v in data.items() if k != "password"}
    try:
        answer = await call_api(PublicConsumerController.sign_up, request, tenant=tenant,
                                data=to_struct(data, ConsumerSignup, keep_blank=("display_name",)))
    except (msgspec.ValidationError, ValueError) as exc:
        return page(request, "signup.html", status=400, tenant=tenant, errors=field_errors(exc), form=shown)
    if isinstance(answer, Response):  # 409: the username is taken
        return page(request, "signup.html", status=409, tenant=tenant, errors={"username": "already taken / 用户名已被占用"},
                    form=shown)
    return redirect("/ui/login", done="signup.done")


@get("/public/{tenant:str}/odr-check")
async def odr_check_fragment(request: Request, tenant: FromPath[str]) -> Response:
    """The ODR check as a small fragment (used while a consumer types the company)."""
    await _tenant_nodes(request, tenant)
    credit_code = (request.query_params.get("credit_code") or "").strip()
    name = (request.query_params.get("company_name") or "").strip()
    return page(request, "odr_check.html", check=await odr_check(request, tenant, credit_code, name))


HANDLERS = [provinces, directory, apply_form, apply, signup_form, signup, odr_check_fragment]
