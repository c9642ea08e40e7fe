"""Liveness and readiness."""

from __future__ import annotations

import msgspec
from litestar import Request, get

from core.api.access import platform_of
from core.db.engine import platform_transaction


class Health(msgspec.Struct, kw_only=True):
    status: str
    database: str
    tenants: int
    plugins: list[str]


@get("/health", exclude_from_auth=True, tags=["platform"])
async def health(request: Request) -> Health:
    """The platform answers and its database is reachable."""
    platform = platform_of(request)
    async with platform_transaction() as conn:
        tenants = await conn.fetchval("SELECT count(*) FROM odr.tenants")
    return Health(status="ok", database="ok", tenants=tenants, plugins=sorted(platform.host.infos))
