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

:class:`ExpensiveShare` applies the same share per province to work that costs far more than a request
or outlives it (import reads and runs, evaluation runs and reproductions, exports): a province has at
most ``ODR_EXPENSIVE_PER_TENANT`` of them going on in a process; beyond, its next one is answered 503
with ``Retry-After`` before any work, and the other provinces' are unaffected.
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


# -- expensive work: a share per province (issue 23) ------------------------------------------------

class ExpensiveBusy(Exception):
    """The province already has its share of expensive work going on in this process (or the process
    its total): answered 503 with ``Retry-After``, nothing done."""

    def __init__(self, tenant: str, what: str, running: int, share: int) -> None:
        super().__init__(f"{tenant} has {running} expensive operations running in this process (at most {share}"
                         f" at once, ODR_EXPENSIVE_PER_TENANT): this {what} was not started; retry when one ends")
        self.retry_after = RETRY_AFTER_SECONDS * 5


class ExpensiveSlot:
    """One place of a province's share, taken when made (:class:`ExpensiveBusy` when there is none).
    ``async with`` releases it at the end unless :meth:`keep` was called (work that goes on in the
    background then calls :meth:`release` when it ends); releasing twice is harmless."""

    def __init__(self, share: "ExpensiveShare", tenant: str) -> None:
        self.share, self.tenant = share, tenant
        self.kept = self.released = False

    def keep(self) -> None:
        self.kept = True

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.share._give_back(self.tenant)

    async def __aenter__(self) -> "ExpensiveSlot":
        return self

    async def __aexit__(self, kind, exc, tb) -> None:
        if exc is not None or not self.kept:
            self.release()


class ExpensiveShare:
    """The expensive work going on in this process, per province: import reads and runs, evaluation
    runs and reproductions, exports. A province may have ``per_tenant`` of them at once, the process
    ``total``; beyond, :class:`ExpensiveBusy` (the door's rule, :class:`InflightLimit`, applied to the
    work that outlives a request or costs far more than one)."""

    def __init__(self) -> None:
        self.by_tenant: dict[str, int] = {}
        self.running = 0
        self.refused = 0

    def take(self, tenant: str, what: str, per_tenant: int, total: int) -> ExpensiveSlot:
        mine = self.by_tenant.get(tenant, 0)
        if (per_tenant and mine >= per_tenant) or (total and self.running >= total):
            self.refused += 1
            raise ExpensiveBusy(tenant, what, mine if per_tenant and mine >= per_tenant else self.running,
                                per_tenant if per_tenant and mine >= per_tenant else total)
        self.by_tenant[tenant] = mine + 1
        self.running += 1
        return ExpensiveSlot(self, tenant)

    def _give_back(self, tenant: str) -> None:
        self.running -= 1
        left = self.by_tenant[tenant] - 1
        if left:
            self.by_tenant[tenant] = left
        else:
            del self.by_tenant[tenant]


EXPENSIVE = ExpensiveShare()
"""This process's share of expensive work (one per process, as the door's counts are)."""


def expensive_slot(settings, tenant: str, what: str) -> ExpensiveSlot:
    """A place of ``tenant``'s share of expensive work (``ODR_EXPENSIVE_PER_TENANT``, of at most
    ``ODR_EXPENSIVE_MAX`` in the process): ``async with expensive_slot(...)`` around the work;
    :class:`ExpensiveBusy` (503 with Retry-After) at once when the share is taken."""
    return EXPENSIVE.take(tenant, what, settings.expensive_per_tenant, settings.expensive_max)
