"""Signing in and out, the home redirect per role, notifications and the live event stream.

Contract:
- ``POST /ui/login`` exchanges username and password through the API's own login
  (``AuthController.login``): same checks, same token, same rate limit; the token goes into the
  session cookie and the browser is sent to ``next`` (a local /ui path) or the role's home.
- ``GET /ui/events`` is the API's notification stream (``NotificationController.stream``) for the
  cookie session: the same recipients, so a specialist sees their enterprise's notices only.
"""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.params import FromPath
from litestar.response import ServerSentEvent

from admin_ui.forms import read_form
from admin_ui.pages.common import call_api, safe_next
from admin_ui.render import page, principal_of, redirect, require
from admin_ui.session import cleared_session_cookie, session_cookie
from core.api.auth import AuthController, Login
from core.auth.principal import BUREAU_ROLES, Principal, Role
from core.notifications.api import NotificationController

HOME = {Role.OPERATOR: "/ui/operator", Role.ENTERPRISE_SPECIALIST: "/ui/inbox", Role.CONSUMER: "/ui/my"}


def home_of(principal: Principal | None) -> str:
    if principal is None:
        return "/ui/login"
    if principal.role in BUREAU_ROLES:
        return "/ui/bureau"
    return HOME.get(principal.role, "/ui/login")


@get("/", name="ui-home")
async def home(request: Request) -> Response:
    """The role's home page (login when signed out)."""
    return redirect(home_of(principal_of(request)))


@get("/login")
async def login_form(request: Request) -> Response:
    return page(request, "login.html", next=safe_next(request.query_params.get("next"), ""))


@post("/login")
async def login(request: Request) -> Response:
    data = await read_form(request)
    username = str(data.get("username", "")).strip()
    password = str(data.get("password", ""))
    next_path = str(data.get("next", ""))
    errors: dict[str, str] = {}
    if not username:
        errors["username"] = "required / 必填"
    if not password:
        errors["password"] = "required / 必填"
    if not errors:
        try:
            answer = await call_api(AuthController.login, request, data=Login(username=username, password=password))
        except NotAuthorizedException:
            errors["_form"] = "login.failed"
        except TooManyRequestsException:
            return page(request, "login.html", status=429, errors={"_form": "login.locked"}, form={"username": username},
                        next=safe_next(next_path, ""))
        else:
            ttl = request.app.state.platform.settings.token_ttl_hours
            target = safe_next(next_path, home_of(answer.principal))
            return redirect(target, cookies=[session_cookie(request, answer.token, ttl)])
    return page(request, "login.html", status=400 if "_form" not in errors else 401, errors=errors,
                form={"username": username}, next=safe_next(next_path, ""))


@post("/logout")
async def logout(request: Request) -> Response:
    return redirect("/ui/login", cookies=[cleared_session_cookie(request)])


@get("/notifications")
async def notifications(request: Request) -> Response:
    principal = require(request)
    if principal.tenant is None:
        return page(request, "notifications.html", notices=[])
    notices = await call_api(NotificationController.list_notifications, request, tenant=principal.tenant,
                             before_id=None, after_id=None, unread=False, limit=100)
    return page(request, "notifications.html", notices=notices)


@post("/notifications/{notification_id:int}/read")
async def mark_read(request: Request, notification_id: FromPath[int]) -> Response:
    principal = require(request)
    await call_api(NotificationController.mark_read, request, tenant=principal.tenant or "", notification_id=notification_id)
    return redirect("/ui/notifications")


@get("/events")
async def events(request: Request) -> ServerSentEvent:
    """Live notifications of the signed-in user (Server-Sent Events), for the inbox and queue pages."""
    principal = require(request)
    if principal.tenant is None:
        raise NotAuthorizedException("no tenant")
    return await call_api(NotificationController.stream, request, tenant=principal.tenant)


HANDLERS = [home, login_form, login, logout, notifications, mark_read, events]
