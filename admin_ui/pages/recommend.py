"""The bureau's form lodging an application RECOMMENDED by the district bureau (Art. 7: 区县局推荐).

Contract:
- ``GET /ui/bureau/applications/recommend`` shows the form to the roles that may recommend (bureau
  officer, province admin: ``POLICY_ROLES``, as the API); anyone else gets 403. It is linked from the
  bureau's applications list.
- The fields and documents are the public application form's (``application_form.html``, the API's
  :class:`~core.enterprises.schemas.ApplicationForm`); the jurisdiction select offers only the district
  (county-level) bureaus the principal covers, their own preselected when it is one.
- Submitting runs the API's own handler (``EnterpriseController.recommend``) with the console's
  request, so every check is the API's: the principal must cover ``node_code``, which must be a
  district; route ``recommended``, recommended by the principal's node, submitted by their username;
  nothing is stored unless all is well. Success redirects (303) to the new application's page in the
  bureau console with a done message; a refusal re-renders the form with its status (400; 409 for a
  taken credit code or username; 413 for an oversized document), what was typed (files must be chosen
  again) and the message next to the field it names (a node outside the jurisdiction: ``node_code``).
"""

from __future__ import annotations

import msgspec
from litestar import Request, Response, get, post

from admin_ui import i18n
from admin_ui.forms import field_errors, read_form, to_struct
from admin_ui.pages.common import call_api, node_label, platform_of, subtree
from admin_ui.render import language, page, redirect, require
from core.auth.principal import POLICY_ROLES, Principal
from core.enterprises.api import MAX_APPLICATION_BYTES, EnterpriseController
from core.enterprises.common import FieldError
from core.enterprises.schemas import CONDITIONS, DOCUMENT_KINDS, LIAISON_ROLES, ApplicationForm, UnitType

PATH = "/ui/bureau/applications/recommend"


async def _districts(request: Request, principal: Principal) -> list[dict]:
    """The district bureaus the principal covers, as select options."""
    nodes = await platform_of(request).nodes(principal.tenant or "")
    lang = language(request)
    return [{"value": n.code, "label": node_label(nodes, n.code, lang)}
            for n in subtree(nodes, tuple(principal.node_path)) if n.level == "district" and principal.covers(n.path)]


async def _form_page(request: Request, *, status: int = 200, errors: dict | None = None, form: dict | None = None) -> Response:
    principal = require(request, POLICY_ROLES)
    districts = await _districts(request, principal)
    values = dict(form or {})
    if principal.node in {d["value"] for d in districts}:
        values.setdefault("node_code", principal.node)
    return page(request, "recommend.html", status=status, errors=errors or {}, form=values, districts=districts,
                node_hint=i18n.t("recommend.node_hint", language(request)), conditions=CONDITIONS, documents=DOCUMENT_KINDS,
                liaison_roles=LIAISON_ROLES, unit_types=[u.value for u in UnitType])


@get("/bureau/applications/recommend")
async def recommend_form(request: Request) -> Response:
    return await _form_page(request)


@post("/bureau/applications/recommend", request_max_body_size=MAX_APPLICATION_BYTES)
async def recommend(request: Request) -> Response:
    principal = require(request, POLICY_ROLES)
    data = await read_form(request)
    shown = {k: v for k, v in data.items() if isinstance(v, str)}
    try:
        form = to_struct(data, ApplicationForm, checkboxes=CONDITIONS)
        submitted = await call_api(EnterpriseController.recommend, request, tenant=principal.tenant or "", data=form)
    except KeyError as exc:  # the API's 404 for a node outside the principal's jurisdiction
        message = str(exc.args[0]) if exc.args else "not found in your jurisdiction"
        return await _form_page(request, status=400, errors={"node_code": message}, form=shown)
    except (msgspec.ValidationError, FieldError, ValueError) as exc:
        return await _form_page(request, status=getattr(exc, "status_code", 400), errors=field_errors(exc), form=shown)
    return redirect(f"/ui/bureau/applications/{submitted.application_id}", done="recommend.done")


HANDLERS = [recommend_form, recommend]
