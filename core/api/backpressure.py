"""Back-pressure at the door of a web process (issue 12, overload).

:class:`InflightLimit` is plain ASGI middleware, outermost in the app:
- it records when each HTTP request reached the application (:data:`core.complaints.batching.arrived_at`),
  so an intake's age limit (``ODR_INTAKE_MAX_WAIT_MS``) counts the time it waited for the event loop;
- with ``ODR_WEB_MAX_INFLIGHT`` > 0, a request arriving while that many are being handled is answered
  503 with ``Retry-After`` at once, before any work (nothing read, nothing written);
- with ``ODR_WEB_MAX_INFLIGHT_PER_TENANT`` > 0, so is a request of a province's API
  (``/api/tenants/{slug}/…``) while that many of the same province are being handled: one province's
  surge takes at most that share of the process, and the others' requests still find room.
``/health``, ``/ui/static`` and live notification streams (long-lived by design) are neither counted
nor refused.
"""

from __future__ import annotations

import time

from core.complaints.batching import arrived_at

RETRY_AFTER_SECONDS = 1
_BODY = (b'{"status_code":503,"detail":"too many requests are being handled at this moment; nothing was written: '
         b'retry (with the same idempotency key)"}')
_EXEMPT_PREFIXES = ("/health", "/ui/static")
_TENANT_PREFIX = "/api/tenants/"


def exempt(path: str) -> bool:
    """Paths the limit never refuses: health checks, static files, Server-Sent Events streams."""
    return path.startswith(_EXEMPT_PREFIXES) or path.endswith("/stream")


def tenant_of(path: str) -> str | None:
    """The province slug of an API path ``/api/tenants/{slug}/…``; None for any other path."""
    if not path.startswith(_TENANT_PREFIX):
        return None
    slug = path[len(_TENANT_PREFIX):].split("/", 1)[0]
    return slug or None


class InflightLimit:
    """ASGI middleware; see the module. ``limit`` 0: record arrival times only; ``per_tenant`` 0: no
    share per province (only ``limit``)."""

    def __init__(self, app, limit: int = 0, per_tenant: int = 0) -> None:
        self.app = app
        self.limit = limit
        self.per_tenant = per_tenant
        self.inflight = 0
        self.by_tenant: dict[str, int] = {}
        self.refused = 0

    async def _refuse(self, send) -> None:
        self.refused += 1
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(_BODY)).encode()),
                                (b"retry-after", str(RETRY_AFTER_SECONDS).encode())]})
        await send({"type": "http.response.body", "body": _BODY})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = arrived_at.set(time.monotonic())
        try:
            path = scope.get("path", "")
            if not (self.limit or self.per_tenant) or exempt(path):
                await self.app(scope, receive, send)
                return
            tenant = tenant_of(path) if self.per_tenant else None
            if (self.limit and self.inflight >= self.limit) or (
                    tenant is not None and self.by_tenant.get(tenant, 0) >= self.per_tenant):
                await self._refuse(send)
                return
            self.inflight += 1
            if tenant is not None:
                self.by_tenant[tenant] = self.by_tenant.get(tenant, 0) + 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.inflight -= 1
                if tenant is not None:
                    left = self.by_tenant[tenant] - 1
                    if left:
                        self.by_tenant[tenant] = left
                    else:
                        del self.by_tenant[tenant]  # the map holds only provinces with requests in flight
        finally:
            arrived_at.reset(token)
