"""Liveness and readiness."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Request, Response, get

from core.api.access import platform_of
from core.db.availability import RETRY_AFTER_SECONDS, database_unavailable
from core.db.engine import platform_transaction


class PluginLoadFailure(msgspec.Struct, kw_only=True):
    """An allowed plugin that did not load: broken, built for an incompatible plugin API, or importing
    the platform's internals (the reason says which)."""

    name: str
    distribution: str
    version: str
    error: str


class Health(msgspec.Struct, kw_only=True):
    status: str
    """``ok``; ``degraded`` (200) when an allowed plugin failed to load (``plugins_failed``), or (503)
    while the database is down."""
    database: str
    tenants: int
    plugins: list[str]
    plugins_failed: list[PluginLoadFailure] = []


HEALTH_DATABASE_TIMEOUT = 2.0


@get("/health", exclude_from_auth=True, tags=["platform"])
async def health(request: Request) -> Response[Health]:
    """200 when the platform answers and its database is reachable (``degraded`` when a plugin failed
    to load, listed in ``plugins_failed``); 503 (``database: down``,
    ``Retry-After``) while the database is not, within :data:`HEALTH_DATABASE_TIMEOUT` seconds."""
    platform = platform_of(request)
    plugins = sorted(platform.host.infos)
    failed = [PluginLoadFailure(name=d.name, distribution=d.distribution, version=d.version, error=d.error or "")
              for d in sorted(platform.host.load_failures, key=lambda d: d.name)]

    async def count() -> int:
        async with platform_transaction() as conn:
            return await conn.fetchval("SELECT count(*) FROM odr.tenants")

    try:
        tenants = await asyncio.wait_for(count(), HEALTH_DATABASE_TIMEOUT)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        return Response(Health(status="degraded", database="down", tenants=0, plugins=plugins, plugins_failed=failed),
                        status_code=503,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return Response(Health(status="degraded" if failed else "ok", database="ok", tenants=tenants, plugins=plugins,
                           plugins_failed=failed))
