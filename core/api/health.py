"""Liveness and readiness."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Request, Response, get

from core.api.access import platform_of
from core.db.availability import RETRY_AFTER_SECONDS, database_unavailable
from core.db.engine import platform_transaction


class Health(msgspec.Struct, kw_only=True):
    status: str
    database: str
    tenants: int
    plugins: list[str]


HEALTH_DATABASE_TIMEOUT = 2.0


@get("/health", exclude_from_auth=True, tags=["platform"])
async def health(request: Request) -> Response[Health]:
    """200 when the platform answers and its database is reachable; 503 (``database: down``,
    ``Retry-After``) while the database is not, within :data:`HEALTH_DATABASE_TIMEOUT` seconds."""
    platform = platform_of(request)
    plugins = sorted(platform.host.infos)

    async def count() -> int:
        async with platform_transaction() as conn:
            return await conn.fetchval("SELECT count(*) FROM odr.tenants")

    try:
        tenants = await asyncio.wait_for(count(), HEALTH_DATABASE_TIMEOUT)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        return Response(Health(status="degraded", database="down", tenants=0, plugins=plugins), status_code=503,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return Response(Health(status="ok", database="ok", tenants=tenants, plugins=plugins))
