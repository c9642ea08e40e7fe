"""Wiring of the web console into the platform's Litestar app: the composition root (``odr.app``) mounts
:func:`ui_route_handlers` beside every other area's route handlers.

Contract:
- Everything lives under ``/ui``: pages on one router, static files under ``/ui/static`` (cached,
  public). The router opts out of the API's bearer authentication (``exclude_from_auth``) and has its
  own: the session cookie (:mod:`admin_ui.session`), CSRF protection for every unsafe request (a token
  bound to the session and an Origin check, :mod:`admin_ui.csrf`), the same login rate limit as
  ``/api/auth/login`` (same store, same per-address budget) and the same sign-up limits as
  ``/public/{tenant}/consumers`` (:mod:`core.api.rate_limits`).
- Errors on the router answer HTML pages (:func:`admin_ui.render.error_page`), never JSON.
- Pages call the service layer (complaints, enterprises, policy, replay, notifications, evaluation,
  reports): no business rule lives here.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.static_files import create_static_files_router

from admin_ui.render import LoginRequired, error_page
from admin_ui.csrf import SessionCsrfMiddleware
from admin_ui.session import SessionMiddleware
from core.api.errors import EXCEPTION_HANDLERS
from core.api.rate_limits import login_limit, signup_limits
from core.settings import Settings

STATIC = Path(__file__).parent / "static"


def _handlers() -> list:
    from admin_ui.pages import (auth, bureau, channels, complaints, consumer, enterprise, evaluation, forward, imports,
                                operator, policy, public, recommend, statistics, units)

    return [*auth.HANDLERS, *bureau.HANDLERS, *channels.HANDLERS, *complaints.HANDLERS, *consumer.HANDLERS, *enterprise.HANDLERS,
            *evaluation.HANDLERS, *forward.HANDLERS, *imports.HANDLERS, *operator.HANDLERS, *policy.HANDLERS, *public.HANDLERS,
            *recommend.HANDLERS, *statistics.HANDLERS, *units.HANDLERS]


def ui_route_handlers(settings: Settings) -> list:
    """The console's routers, to add to the app's ``route_handlers``."""
    handlers = {kind: error_page for kind in EXCEPTION_HANDLERS}
    handlers.update({LoginRequired: error_page, NotAuthorizedException: error_page, PermissionDeniedException: error_page,
                     HTTPException: error_page})
    pages = Router(
        path="/ui",
        route_handlers=_handlers(),
        opt={"exclude_from_auth": True},
        middleware=[
            DefineMiddleware(SessionMiddleware),
            DefineMiddleware(SessionCsrfMiddleware, jwt_secret=settings.jwt_secret(), secure=settings.secure_cookies),
            *login_limit(settings, lambda request: request.url.path == "/ui/login" and request.method == "POST"),
            *signup_limits(settings, lambda request: request.method == "POST" and request.url.path.startswith("/ui/public/")
                           and request.url.path.endswith("/signup")),
        ],
        exception_handlers=handlers,
        include_in_schema=False,
    )
    static = create_static_files_router(
        path="/ui/static", directories=[STATIC], opt={"exclude_from_auth": True}, include_in_schema=False,
        cache_control=None, name="ui-static",
    )
    return [pages, static]
