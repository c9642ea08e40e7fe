"""The bureau's form forwarding a complaint received through 12315 (转办12315投诉) into the platform.

Contract:
- ``GET /ui/bureau/forward`` shows the form to bureau roles (officer, office head, province admin);
  anyone else gets 403. It is linked from the work queue.
- The form's fields are :class:`~core.complaints.schemas.ComplaintIntake`'s: the company (by name,
  optionally an ODR unit of the principal's district, or subtree above district level, chosen by
  ``enterprise_id``, or any ODR unit by ``credit_code``),
  the receiving node (``node_code``: a select of the nodes the principal covers, their own by
  default), the consumer's name, phone and address, subject, description, amount claimed, category,
  and the route (``odr``, straight to the unit, only when the company is an active ODR unit; else
  ``bureau``). Those rules are the service's: the page converts the form as the API does and calls
  :func:`core.complaints.service.intake`, which records the source ``bureau_forwarded``.
- The form carries an idempotency key made when it was shown (hidden field), so a double submission
  files one complaint. Success redirects (303) to the complaint's page; a refusal re-renders the form
  (400) with what was typed and the message next to the field it names (``"field: ..."``).
- The "check" button runs the public ODR check on the credit code / company name and shows the form
  again (as the consumer's form does); nothing is filed.
"""

from __future__ import annotations

import secrets

from litestar import Request, Response, get, post

from admin_ui.pages.common import district_of, node_label, platform_of, subtree
from admin_ui.pages.consumer import submit_intake
from admin_ui.render import language, page, require
from core.auth.principal import BUREAU_ROLES, Principal
from core.enterprises import service as enterprises

UNIT_CHOICES = 500
"""At most this many ODR units in the select (any other by its credit code)."""


async def _choices(request: Request, principal: Principal) -> tuple[list[dict], list[dict]]:
    """(the nodes the principal covers, the active ODR units of their district, or of their subtree above
    district level) as select options."""
    platform = platform_of(request)
    tenant = principal.tenant or ""
    nodes = await platform.nodes(tenant)
    lang = language(request)
    depth = len(principal.node_path)
    covered = [{"value": n.code, "label": "\u3000" * (len(n.path) - depth) + node_label(nodes, n.code, lang)}
               for n in subtree(nodes, tuple(principal.node_path)) if principal.covers(n.path)]
    district = district_of(nodes, principal.node or "")  # an office's units are registered with its district
    units, _ = await enterprises.directory(platform, tenant, node=district.code if district else principal.node, q=None, cls=None,
                                           limit=UNIT_CHOICES)
    return covered, [{"value": str(u.id), "label": f"{u.name}（{u.credit_code}）"} for u in units]


async def _form_page(request: Request, *, status: int = 200, errors: dict | None = None, form: dict | None = None,
                     check: dict | None = None) -> Response:
    principal = require(request, BUREAU_ROLES)
    covered, units = await _choices(request, principal)
    values = dict(form or {})
    values.setdefault("idempotency_key", secrets.token_urlsafe(16))
    values.setdefault("node_code", principal.node)
    values.setdefault("route", "bureau")
    return page(request, "forward.html", status=status, errors=errors or {}, form=values, nodes=covered, units=units,
                check=check)


@get("/bureau/forward")
async def forward_form(request: Request) -> Response:
    return await _form_page(request)


@post("/bureau/forward")
async def forward(request: Request) -> Response:
    """File the forwarded complaint; with the ``check`` button, only run the ODR check and show the form again."""
    return await submit_intake(request, require(request, BUREAU_ROLES), _form_page, "forward.done")


HANDLERS = [forward_form, forward]
