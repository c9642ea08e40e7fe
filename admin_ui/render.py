"""Rendering of the console's pages: one Jinja environment, the page shell's context, formatting helpers,
and the HTML answers to errors.

Contract:
- :func:`page` renders a template (autoescaped) with the shell's context: the principal, the language
  and its ``t`` function, the CSRF token, the navigation of the principal's role, the flash message
  named by ``?done=`` (a label key only, never free text). Answers carry ``Cache-Control: no-store``
  (pages hold personal data) and a Content-Security-Policy allowing scripts and styles from /ui/static
  only. A ``?lang=`` query parameter also sets the language cookie.
- :func:`error_page` is the /ui router's exception handler: 404 for anything not found or outside
  the caller's rights (no hint which), 403, 409 ..., 500 logged by type and path only (never personal
  data); a missing login on a page redirects to the login form.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import MediaType, Request, Response
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.response import Redirect

from admin_ui import i18n
from admin_ui.session import MAY_IMPORT, csrf_token
from core.api.backpressure import ExpensiveBusy
from core.api.errors import Conflict, Forbidden, NotFound
from core.auth.passwords import HashingBusy
from core.auth.principal import BUREAU_ROLES, POLICY_ROLES, Principal, Role
from core.complaints.batching import IntakeOverloaded
from core.db.availability import RETRY_AFTER_SECONDS, database_unavailable, store_unavailable, transaction_conflict
from core.db.engine import TenantNotFound
from core.deadlines.counting import TZ
from core.enterprises.common import FieldError
from core.files import FileTooLarge
from core.pluginhost.host import PluginUnavailable

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "templates"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

ENV = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class LoginRequired(Exception):
    """Raised by a page that needs a signed-in principal: the answer redirects to the login form."""


def principal_of(request: Request) -> Principal | None:
    return request.scope.get("user")


def require(request: Request, roles: frozenset[Role] | set[Role] | None = None) -> Principal:
    """The signed-in principal, of one of ``roles`` when given (else 403); login redirect when none."""
    principal = principal_of(request)
    if principal is None:
        raise LoginRequired()
    if roles is not None and principal.role not in roles:
        raise Forbidden(f"role {principal.role.value} may not open this page")
    return principal


def language(request: Request) -> str:
    return i18n.language_of(request.query_params, request.cookies)


# -- formatting ------------------------------------------------------------------------------------
def fmt_dt(value: dt.datetime | None, with_seconds: bool = False) -> str:
    if value is None:
        return "—"
    local = value.astimezone(TZ)
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def fmt_date(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        value = value.astimezone(TZ).date()
    return value.isoformat()


def fmt_duration(seconds: float, lang: str) -> str:
    """``2天3小时`` / ``2d 3h``: days and hours, or hours and minutes under a day (same as app.js)."""
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if lang == "en":
        return f"{days}d {hours}h" if days else f"{hours}h {minutes}m"
    return f"{days}天{hours}小时" if days else f"{hours}小时{minutes}分"


def fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def fmt_money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def next_due(complaint: Any) -> tuple[str, dt.datetime] | None:
    """The milestone the complaint's clock runs for now: contact (in ODR, consumer not yet contacted)
    or close (contacted or negotiating); None when no clock runs."""
    state = complaint.state
    if state == "with_enterprise" and complaint.contacted_at is None and complaint.contact_due is not None:
        return "contact", complaint.contact_due
    if state in ("with_enterprise", "contacted", "negotiating") and complaint.close_due is not None:
        return "close", complaint.close_due
    return None


def countdown(complaint: Any, lang: str, warn_hours: float, now: dt.datetime | None = None) -> dict | None:
    """The countdown shown in lists and on the case page: milestone, due moment, remaining seconds,
    ``status`` ok / warn (within the warning window) / overdue, and the text (app.js keeps it live)."""
    due = next_due(complaint)
    if due is None:
        return None
    milestone, moment = due
    now = now or dt.datetime.now(dt.timezone.utc)
    remaining = (moment - now).total_seconds()
    status = "overdue" if remaining < 0 else "warn" if remaining < warn_hours * 3600 else "ok"
    key = "complaint.overdue" if remaining < 0 else "complaint.remaining"
    return {
        "milestone": milestone,
        "due": moment,
        "due_iso": moment.isoformat(),
        "remaining": remaining,
        "status": status,
        "text": i18n.t(key, lang, t=fmt_duration(remaining, lang)),
        "provisional": bool(getattr(complaint, "deadlines_provisional", False)),
    }


_FIELD_DEFAULTS = {"label": "", "label_text": None, "required": False, "options": [], "min": None, "max": None, "step": None,
                   "minlength": None, "maxlength": None, "pattern": None, "hint": None, "value": None, "rows": 3,
                   "accept": None, "autocomplete": None, "empty_label": "—"}


def field_def(f: dict) -> dict:
    """A form field description with every optional key present (for the ``field`` macro)."""
    return {**_FIELD_DEFAULTS, **{k: v for k, v in f.items() if v is not None or k not in _FIELD_DEFAULTS}}


def fmt_iso_dt(value: str | None) -> str:
    """An ISO 8601 moment as stored in an event's JSON, shown like :func:`fmt_dt`."""
    return fmt_dt(dt.datetime.fromisoformat(value)) if value else "—"


ENV.filters.update(dt=fmt_dt, date=fmt_date, rate=fmt_rate, money=fmt_money, isodt=fmt_iso_dt)
ENV.globals.update(field_def=field_def)


# -- navigation ------------------------------------------------------------------------------------
def navigation(principal: Principal | None, tenant: str | None, *, imports: bool = False) -> list[dict]:
    """The menu of a role: (label key, href). ``imports``: the principal may import 12315 exports
    (:func:`core.imports.service.may_import`, set by the session middleware), so the link is shown."""
    if principal is None:
        items = []
        if tenant:
            items += [("nav.directory", f"/ui/public/{tenant}/directory"), ("nav.results", f"/ui/public/{tenant}/results"),
                      ("nav.apply", f"/ui/public/{tenant}/apply"), ("nav.signup", f"/ui/public/{tenant}/signup")]
        else:
            items.append(("public.title", "/ui/public"))
        items.append(("nav.login", "/ui/login"))
    elif principal.role is Role.OPERATOR:
        items = [("nav.operator", "/ui/operator")]
    elif principal.role in BUREAU_ROLES:
        items = [("nav.queue", "/ui/bureau")]
        if principal.role in POLICY_ROLES:
            items.append(("nav.applications", "/ui/bureau/applications"))
        if imports:
            items.append(("nav.imports", "/ui/bureau/imports"))
        items += [("nav.units", "/ui/bureau/units"), ("nav.liaisons", "/ui/bureau/liaison-changes"),
                  ("nav.policy", "/ui/policy"), ("nav.evaluation", "/ui/evaluation"),
                  ("nav.proposals", "/ui/evaluation/proposals"), ("nav.statistics", "/ui/statistics"),
                  ("nav.notifications", "/ui/notifications"), ("nav.deliveries", "/ui/bureau/deliveries"),
                  ("nav.channels", "/ui/channels")]
    elif principal.role is Role.ENTERPRISE_SPECIALIST:
        items = [("nav.inbox", "/ui/inbox"), ("nav.unit", "/ui/unit"), ("nav.notifications", "/ui/notifications"),
                 ("nav.channels", "/ui/channels")]
    else:
        items = [("nav.my", "/ui/my"), ("nav.file", "/ui/my/new"), ("nav.notifications", "/ui/notifications"),
                 ("nav.channels", "/ui/channels")]
    if principal is not None and principal.tenant:
        items += [("nav.directory", f"/ui/public/{principal.tenant}/directory"), ("nav.results", f"/ui/public/{principal.tenant}/results")]
    return [{"key": k, "href": h} for k, h in items]


def current_nav(nav: list[dict], path: str) -> str | None:
    """The href of the menu entry the page belongs to: the longest one that is the path or a prefix of it."""
    best = None
    for item in nav:
        href = item["href"]
        if (path == href or path.startswith(href.rstrip("/") + "/")) and (best is None or len(href) > len(best)):
            best = href
    return best


def _switch_url(request: Request, lang: str) -> str:
    query = {k: v for k, v in request.query_params.items() if k not in ("lang", "done")}
    query["lang"] = "en" if lang == "zh" else "zh"
    return f"{request.url.path}?{urlencode(query)}"


# -- answers ---------------------------------------------------------------------------------------
def render(request: Request, template: str, **context: Any) -> str:
    lang = language(request)
    principal = principal_of(request)
    tenant = context.get("tenant") or (principal.tenant if principal else None)
    done = request.query_params.get("done")
    nav = navigation(principal, tenant, imports=bool(request.scope.get(MAY_IMPORT)))

    def t(key: str, **values: Any) -> str:
        return i18n.t(key, lang, **values)

    base = {
        "request": request,
        "user": principal,
        "lang": lang,
        "t": t,
        "has_label": i18n.has,
        "csrf_field": "_csrf_token",
        "csrf": csrf_token(request),
        "nav": nav,
        "current": current_nav(nav, request.url.path),
        "path": request.url.path,
        "switch_lang_url": _switch_url(request, lang),
        "flash": t(done) if done and i18n.has(done) else None,
        "tenant": tenant,
        "errors": {},
        "form": {},
    }
    base.update(context)
    return ENV.get_template(template).render(**base)


def page(request: Request, template: str, *, status: int = 200, cookies: list[Cookie] | None = None, **context: Any) -> Response:
    """An HTML page (or fragment: the template decides) with the security headers."""
    html = render(request, template, **context)
    cookies = list(cookies or [])
    wanted = request.query_params.get("lang")
    if wanted in i18n.LANGUAGES and request.cookies.get(i18n.LANG_COOKIE) != wanted:
        cookies.append(Cookie(key=i18n.LANG_COOKIE, value=wanted, path="/ui", samesite="lax", max_age=365 * 86400))
    return Response(html, media_type=MediaType.HTML, status_code=status, headers=dict(SECURITY_HEADERS), cookies=cookies)


def redirect(path: str, *, done: str | None = None, cookies: list[Cookie] | None = None) -> Redirect:
    """303 to ``path`` (after a successful POST), with an optional flash label key."""
    if done:
        path, hash_, fragment = path.partition("#")
        path += ("&" if "?" in path else "?") + urlencode({"done": done}) + hash_ + fragment
    return Redirect(path=path, status_code=303, cookies=cookies or [])


_STATUS = (
    (TenantNotFound, 404), (NotFound, 404), (KeyError, 404), (LookupError, 404), (Forbidden, 403),
    (PluginUnavailable, 503), (HashingBusy, 503), (ExpensiveBusy, 503), (Conflict, 409), (FileTooLarge, 413),
    (msgspec.ValidationError, 400), (ValueError, 400),
)


def error_page(request: Request, exc: Exception) -> Response:
    """The /ui router's exception handler (see the module contract)."""
    if isinstance(exc, (LoginRequired, NotAuthorizedException)) and request.method == "GET":
        return redirect("/ui/login?" + urlencode({"next": str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")}))
    if isinstance(exc, PermissionDeniedException):
        status, key, detail = 403, "error.csrf", None
    elif isinstance(exc, LoginRequired):
        status, key, detail = 401, "error.401", None
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        key = f"error.{status}" if i18n.has(f"error.{status}") else "error.400"
        detail = exc.detail if status < 500 else None
    elif isinstance(exc, FieldError):
        status, key, detail = exc.status_code, f"error.{exc.status_code}", str(exc)
    elif database_unavailable(exc) or store_unavailable(exc) or transaction_conflict(exc) or isinstance(exc, IntakeOverloaded):
        log.warning("database or store unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        status, key, detail = 503, "error.503", None
    else:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
        key = f"error.{status}"
        detail = None if status in (404, 500) else str(exc)
        if status == 500:
            log.exception("console error on %s %s (%s)", request.method, request.url.path, type(exc).__name__)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else {}
    try:
        response = page(request, "error.html", status=status, message_key=key, detail=detail)
    except Exception:  # the error page itself failed: plain text, still no detail
        log.exception("console error page failed on %s", request.url.path)
        response = Response(i18n.t(key), media_type=MediaType.TEXT, status_code=status)
    response.headers.update(headers)
    return response
