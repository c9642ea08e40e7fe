"""Liveness and readiness."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

import msgspec
from litestar import Request, Response, get

from core.api.access import platform_of
from core.db.availability import RETRY_AFTER_SECONDS
from core.db.engine import platform_transaction

log = logging.getLogger(__name__)


class Health(msgspec.Struct, kw_only=True):
    status: str
    """``ok``, or ``degraded`` when a check failed (then the answer is 503)."""
    database: str
    """``ok``, ``down`` (an error) or ``timeout``."""
    valkey: str
    """``ok``, ``down``, ``timeout``, or ``off`` when no Valkey is configured."""
    tenants: int
    plugins: list[str]
    failed: list[str] = []
    """The checks that failed, each with why (``database: timed out after 2 s``)."""


async def _check(name: str, probe: Callable[[], Awaitable[Any]], timeout: float, failed: list[str]) -> tuple[str, Any]:
    """``(state, value)`` of one check, bounded by ``timeout``; never raises (a failure is reported)."""
    try:
        return "ok", await asyncio.wait_for(probe(), timeout)
    except (asyncio.TimeoutError, TimeoutError):
        failed.append(f"{name}: timed out after {timeout:g} s")
        return "timeout", None
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the answer is 503 naming the check
        log.warning("health check %s failed: %s", name, type(exc).__name__)
        failed.append(f"{name}: {type(exc).__name__}")
        return "down", None


@get("/health", exclude_from_auth=True, tags=["platform"])
async def health(request: Request) -> Response[Health]:
    """200 when the platform answers and its database (and Valkey, when configured) answer within
    ``ODR_HEALTH_TIMEOUT_SECONDS`` each; else 503 with ``Retry-After``, naming each failed check
    (``database: down`` / ``timeout``), never 500."""
    platform = platform_of(request)
    plugins = sorted(platform.host.infos)
    timeout = platform.settings.health_timeout_seconds
    failed: list[str] = []

    async def count() -> int:
        async with platform_transaction() as conn:
            return await conn.fetchval("SELECT count(*) FROM odr.tenants")

    database, tenants = await _check("database", count, timeout, failed)
    valkey = "off"
    client = request.app.state.get("valkey")  # the app's Valkey client (odr.app), None without Valkey
    if client is not None:
        valkey, _ = await _check("valkey", client.ping, timeout, failed)
    answer = Health(status="degraded" if failed else "ok", database=database, valkey=valkey, tenants=tenants or 0,
                    plugins=plugins, failed=failed)
    if failed:
        return Response(answer, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return Response(answer)
