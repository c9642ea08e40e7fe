"""Liveness and readiness."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Request, Response, get

from core.api.access import platform_of
from core.db.availability import RETRY_AFTER_SECONDS, database_unavailable
from core.db.engine import platform_transaction


class PluginStatus(msgspec.Struct, kw_only=True):
    """How a plugin fares in the answering process, summed over provinces and nodes (which ones is
    shown to their bureaus on the policy page, not here: ``/health`` answers without login)."""

    plugin: str
    isolated: bool
    """Called in an isolated worker process (not shipped here, not in ODR_PLUGINS_TRUSTED)."""
    worker_starts: int = 0
    """Isolated worker processes started (1 + restarts after an overrun or a death)."""
    failures: int = 0
    overruns: int = 0
    open_breakers: int = 0
    """Nodes at which its circuit breaker is open (it is skipped there for now)."""


class Health(msgspec.Struct, kw_only=True):
    status: str
    database: str
    tenants: int
    plugins: list[str]
    plugin_health: list[PluginStatus] = []
    """The isolated plugins, and every plugin that failed or overran its budget in this process."""


def plugin_health(host) -> list[PluginStatus]:
    out: dict[str, PluginStatus] = {
        name: PluginStatus(plugin=name, isolated=True, worker_starts=w.starts) for name, w in host.workers.items()
    }
    for rec in host.health.records():
        status = out.setdefault(rec.plugin, PluginStatus(plugin=rec.plugin, isolated=False))
        status.failures += rec.failures
        status.overruns += rec.overruns
        status.open_breakers += rec.breaker == "open"
    return sorted(out.values(), key=lambda s: s.plugin)


HEALTH_DATABASE_TIMEOUT = 2.0


@get("/health", exclude_from_auth=True, tags=["platform"])
async def health(request: Request) -> Response[Health]:
    """200 when the platform answers and its database is reachable; 503 (``database: down``,
    ``Retry-After``) while the database is not, within :data:`HEALTH_DATABASE_TIMEOUT` seconds."""
    platform = platform_of(request)
    plugins = sorted(platform.host.infos)
    problems = plugin_health(platform.host)

    async def count() -> int:
        async with platform_transaction() as conn:
            return await conn.fetchval("SELECT count(*) FROM odr.tenants")

    try:
        tenants = await asyncio.wait_for(count(), HEALTH_DATABASE_TIMEOUT)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        return Response(Health(status="degraded", database="down", tenants=0, plugins=plugins,
                                       plugin_health=problems), status_code=503,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return Response(Health(status="ok", database="ok", tenants=tenants, plugins=plugins, plugin_health=problems))
