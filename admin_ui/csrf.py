"""CSRF protection of the console: a token bound to the session, and an Origin check.

Contract (:class:`SessionCsrfMiddleware`, on the /ui router after :class:`~admin_ui.session.SessionMiddleware`):
- The token of a request is ``HMAC-SHA256(key, binding)``, the key derived from the JWT secret, the
  binding the session cookie (``odr_session``, the signed JWT) when the browser has one, else the
  pre-session cookie ``odr_csrf`` (random, HttpOnly, SameSite=Lax, Path=/ui, Secure like the session
  cookie), set on the first answer that needs it. So a token is good only with the cookie it was made
  for: an attacker's own token (and cookie) sent along a victim's session cookie is refused, and the
  pre-login forms (login, sign-up, a public application) are protected by the pre-session cookie.
  Pages render the token with :func:`admin_ui.session.csrf_token`; a new session (login) gets a new one.
- Every unsafe request (anything but GET, HEAD, OPTIONS, TRACE) must carry the token in the form field
  ``_csrf_token`` or the header ``x-csrftoken``, AND come from the console's own origin: its ``Origin``
  header (else its ``Referer``) must name the scheme, host and port the request was sent to (the
  ``Host`` header; ``https`` is also accepted with ODR_SECURE_COOKIES, TLS ended at a proxy). A request
  with neither header is refused (browsers send ``Origin`` on every POST). Refusals are 403.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from litestar.connection import Request
from litestar.datastructures import Cookie
from litestar.datastructures.headers import MutableScopeHeaders
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware.base import MiddlewareProtocol
from litestar.utils.scope.state import ScopeState

from admin_ui.session import COOKIE_PATH, CSRF_FIELD, CSRF_HEADER, PRESESSION_COOKIE, SESSION_COOKIE

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_PRESESSION = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def csrf_key(jwt_secret: str) -> bytes:
    """The HMAC key of the console's CSRF tokens (derived from the JWT secret; never the secret itself)."""
    return hmac.new(jwt_secret.encode(), b"odr-admin-ui-csrf-v2", hashlib.sha256).digest()


def token_for(key: bytes, binding: str) -> str:
    """The CSRF token bound to ``binding`` (``"s:" + session cookie`` or ``"p:" + pre-session cookie``)."""
    return hmac.new(key, binding.encode(), hashlib.sha256).hexdigest()


def _origin(value: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an Origin or Referer value, or None when it names none."""
    try:
        parts = urlsplit(value)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or port is None:
        return None
    return parts.scheme, parts.hostname.lower(), port


def same_origin(request: Request, *, secure: bool) -> bool:
    """Whether the request's Origin (else Referer) is the console's own origin (see the module docs)."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed or claimed == "null":
        return False
    origin = _origin(claimed)
    if origin is None:
        return False
    schemes = {request.url.scheme} | ({"https"} if secure else set())
    scheme, host, port = origin
    own = _origin(f"{scheme}://{request.headers.get('host', '')}")
    return scheme in schemes and own is not None and own[1:] == (host, port)


class SessionCsrfMiddleware(MiddlewareProtocol):
    def __init__(self, app: Any, *, jwt_secret: str, secure: bool = False) -> None:
        self.app = app
        self.key = csrf_key(jwt_secret)
        self.secure = secure

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request: Request = scope["litestar_app"].request_class(scope=scope, receive=receive)
        session = request.cookies.get(SESSION_COOKIE)
        presession = request.cookies.get(PRESESSION_COOKIE)
        fresh = None
        if session:
            binding = "s:" + session
        else:
            if not presession or not _PRESESSION.match(presession):
                presession = fresh = secrets.token_urlsafe(32)
            binding = "p:" + presession
        expected = token_for(self.key, binding)
        if request.method not in SAFE_METHODS:
            await self._verify(request, expected)
        ScopeState.from_scope(scope).csrf_token = expected
        await self.app(scope, receive, self._with_cookie(send, request, fresh) if fresh else send)

    async def _verify(self, request: Request, expected: str) -> None:
        if not same_origin(request, secure=self.secure):
            raise PermissionDeniedException("the request does not come from this site (Origin/Referer)")
        sent = request.headers.get(CSRF_HEADER)
        if not sent and request.content_type[0] in (RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART):
            sent = (await request.form()).get(CSRF_FIELD)  # parsed once: the handler reads the cached form
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise PermissionDeniedException("CSRF token verification failed")

    def _with_cookie(self, send: Any, request: Request, value: str) -> Any:
        cookie = Cookie(key=PRESESSION_COOKIE, value=value, path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https" or self.secure)

        async def send_with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                MutableScopeHeaders.from_message(message).add("set-cookie", cookie.to_header(header=""))
            await send(message)

        return send_with_cookie
