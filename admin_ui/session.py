"""Browser sessions of the console: the API's JWT carried in an HttpOnly cookie, and CSRF protection.

Contract:
- Login issues the SAME token as ``POST /api/auth/login`` (same principal, same lifetime) and puts it
  in the ``odr_session`` cookie: HttpOnly, SameSite=Lax, Path=/ui, Secure on HTTPS (or always with
  ODR_SECURE_COOKIES, as is the CSRF cookie). The API itself
  keeps accepting bearer headers only, so the cookie never authenticates an API call.
- :class:`SessionMiddleware` (on the /ui router only) sets ``scope["user"]`` to the
  :class:`~core.auth.principal.Principal` of a valid cookie, else None. The checks are the API's: the
  signature and expiry of the JWT and the deactivated-account list (``core.auth.tokens.INACTIVE``), so
  a revoked unit's specialists are logged out of the console as they are refused by the API. It also
  sets ``scope["odr_may_import"]`` from the import endpoints' own rule
  (:func:`core.imports.service.may_import`), so the menu links the imports only for those allowed.
- CSRF: :class:`admin_ui.csrf.SessionCsrfMiddleware`, scoped to the /ui router: a token bound to the
  session cookie (before login: to the pre-session cookie ``odr_csrf``) that every unsafe request must
  carry in the form field ``_csrf_token`` or the header ``x-csrftoken``, from the console's own origin
  (Origin/Referer); pages render it with :func:`csrf_token`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from litestar.connection import ASGIConnection, Request
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException
from litestar.middleware.base import MiddlewareProtocol
from litestar.security.jwt import Token
from litestar.types import Empty
from litestar.utils.scope.state import ScopeState

from core.auth.principal import Principal
from core.auth.tokens import INACTIVE
from core.imports.service import IMPORT_ROLES, may_import

log = logging.getLogger(__name__)

SESSION_COOKIE = "odr_session"
PRESESSION_COOKIE = "odr_csrf"
"""The random cookie CSRF tokens are bound to before login (pre-login forms)."""
CSRF_FIELD = "_csrf_token"
CSRF_HEADER = "x-csrftoken"
COOKIE_PATH = "/ui"
_CACHE_MAX = 5_000


def csrf_token(request: Request) -> str:
    """The token to put in this page's forms (set by :class:`admin_ui.csrf.SessionCsrfMiddleware`)."""
    token = ScopeState.from_scope(request.scope).csrf_token
    return "" if token is None or token is Empty else str(token)


class _Verified:
    """Verified cookies -> (expiry, principal), bounded; verification is the costly part."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[float, Principal]] = {}

    def get(self, raw: str) -> Principal | None:
        hit = self.entries.get(raw)
        if hit is None or hit[0] <= time.time():
            return None
        return hit[1]

    def put(self, raw: str, expires: float, principal: Principal) -> None:
        if len(self.entries) >= _CACHE_MAX:
            self.entries.clear()
        self.entries[raw] = (expires, principal)


_VERIFIED = _Verified()


async def principal_from_cookie(app: Any, raw: str) -> Principal | None:
    """The principal of a session cookie, or None (bad signature, expired, deactivated account)."""
    principal = _VERIFIED.get(raw)
    if principal is None:
        jwt_auth = app.state.jwt_auth
        try:
            token = Token.decode(encoded_token=raw, secret=jwt_auth.token_secret, algorithm=jwt_auth.algorithm)
            principal = msgspec.convert(token.extras["p"], Principal)
        except (NotAuthorizedException, KeyError, msgspec.ValidationError, TypeError, ValueError):
            return None
        _VERIFIED.put(raw, token.exp.timestamp(), principal)
    if await INACTIVE.contains(principal.id):
        return None
    return principal


MAY_IMPORT = "odr_may_import"
"""Scope key: whether the signed-in principal may import 12315 exports (the menu shows the link only then)."""


async def _may_import(app: Any, principal: Principal | None) -> bool:
    """:func:`core.imports.service.may_import` for the menu (the jurisdiction tree is cached per process)."""
    if principal is None or principal.role not in IMPORT_ROLES or not principal.tenant:
        return False
    try:
        nodes = await app.state.platform.nodes(principal.tenant)
    except Exception as exc:  # the page itself reports an unavailable database; the menu just leaves the link out
        log.warning("jurisdictions unavailable for the menu: %s", type(exc).__name__)
        return False
    return may_import(principal, nodes)


class SessionMiddleware(MiddlewareProtocol):
    """Sets ``scope["user"]`` (a Principal or None) from the session cookie, for the /ui router."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            raw = ASGIConnection(scope).cookies.get(SESSION_COOKIE)
            scope["user"] = await principal_from_cookie(scope["litestar_app"], raw) if raw else None
            scope["auth"] = None
            scope[MAY_IMPORT] = await _may_import(scope["litestar_app"], scope["user"])
        await self.app(scope, receive, send)


def session_cookie(request: Request, token: str, ttl_hours: float) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        max_age=int(ttl_hours * 3600),
    )


def _secure(request: Request) -> bool:
    """Secure cookies: over HTTPS, or always with ODR_SECURE_COOKIES (TLS ended at a proxy)."""
    return request.url.scheme == "https" or request.app.state.platform.settings.secure_cookies


def cleared_session_cookie(request: Request) -> Cookie:
    return Cookie(key=SESSION_COOKIE, value="", path=COOKIE_PATH, httponly=True, samesite="lax",
                  secure=_secure(request), max_age=0)
