"""Headers every HTTP answer of the platform carries (API, console, static files, errors).

Contract: :func:`add_security_headers` (a Litestar ``before_send`` hook, so it sees every answer, those
of exception handlers and of the back-pressure door too) adds ``X-Content-Type-Options: nosniff`` to
every answer that does not set it itself, so no browser ever guesses a type other than the one declared
(a stored file served as ``image/png`` is never run as HTML). Downloads add their own stricter headers
(:func:`core.files.download_headers`).
"""

from __future__ import annotations

from typing import Any

_NOSNIFF = (b"x-content-type-options", b"nosniff")


async def add_security_headers(message: Any, scope: Any) -> None:
    if message["type"] != "http.response.start":
        return
    headers = message.get("headers")
    if headers is None:
        headers = message["headers"] = []
    elif not isinstance(headers, list):
        headers = message["headers"] = list(headers)
    if not any(name.lower() == _NOSNIFF[0] for name, _ in headers):
        headers.append(_NOSNIFF)
