"""Back-pressure at the door of a web process (issue 12, overload).

:class:`InflightLimit` is plain ASGI middleware, outermost in the app:
- it records when each HTTP request reached the application (:data:`core.complaints.batching.arrived_at`),
  so an intake's age limit (``ODR_INTAKE_MAX_WAIT_MS``) counts the time it waited for the event loop;
- with ``ODR_WEB_MAX_INFLIGHT`` > 0, a request arriving while that many are being handled is answered
  503 with ``Retry-After`` at once, before any work (nothing read, nothing written). ``/health``,
  ``/ui/static`` and live notification streams (long-lived by design) are neither counted nor refused.
"""

from __future__ import annotations

import time

from core.complaints.batching import arrived_at

RETRY_AFTER_SECONDS = 1
_BODY = (b'{"status_code":503,"detail":"too many requests are being handled at this moment; nothing was written: '
         b'retry (with the same idempotency key)"}')
_EXEMPT_PREFIXES = ("/health", "/ui/static")


def exempt(path: str) -> bool:
    """Paths the limit never refuses: health checks, static files, Server-Sent Events streams."""
    return path.startswith(_EXEMPT_PREFIXES) or path.endswith("/stream")


class InflightLimit:
    """ASGI middleware; see the module. ``limit`` 0: record arrival times only."""

    def __init__(self, app, limit: int = 0) -> None:
        self.app = app
        self.limit = limit
        self.inflight = 0
        self.refused = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = arrived_at.set(time.monotonic())
        try:
            if not self.limit or exempt(scope.get("path", "")):
                await self.app(scope, receive, send)
                return
            if self.inflight >= self.limit:
                self.refused += 1
                await send({"type": "http.response.start", "status": 503,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(_BODY)).encode()),
                                        (b"retry-after", str(RETRY_AFTER_SECONDS).encode())]})
                await send({"type": "http.response.body", "body": _BODY})
                return
            self.inflight += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.inflight -= 1
        finally:
            arrived_at.reset(token)
