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


class PluginLoadFailure(msgspec.Struct, kw_only=True):
    """An allowed plugin that did not load: broken, built for an incompatible plugin API, or importing
    the platform's internals (the reason says which)."""

    name: str
    distribution: str
    version: str
    error: str


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
    """``ok``; ``degraded`` when a check failed or an allowed plugin failed to load (503 when the
    database check failed, else 200: Valkey down leaves intake working, logins answer 503 meanwhile)."""
    database: str
    """``ok``, ``down`` (an error) or ``timeout``."""
    valkey: str
    """``ok``, ``down``, ``timeout``, or ``off`` when no Valkey is configured."""
    tenants: int
    plugins: list[str]
    failed: list[str] = []
    """The checks that failed, each with why (``database: timed out after 2 s``)."""
    plugins_failed: list[PluginLoadFailure] = []
    """Allowed plugins that did not load, with the reason."""
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
    """200 when the platform answers and its database answers within ``ODR_HEALTH_TIMEOUT_SECONDS``;
    else 503 with ``Retry-After``, naming the failed check (``database: down`` / ``timeout``), never 500.
    ``degraded`` (still 200) when Valkey, when configured, does not answer in time (``valkey: down`` /
    ``timeout``; intake goes on without it) or an allowed plugin failed to load (``plugins_failed``)."""
    platform = platform_of(request)
    plugins = sorted(platform.host.infos)
    timeout = platform.settings.health_timeout_seconds
    failed: list[str] = []
    plugins_failed = [PluginLoadFailure(name=d.name, distribution=d.distribution, version=d.version,
                                        error=d.error or "")
                      for d in sorted(platform.host.load_failures, key=lambda d: d.name)]
    problems = plugin_health(platform.host)

    async def count() -> int:
        async with platform_transaction() as conn:
            return await conn.fetchval("SELECT count(*) FROM odr.tenants")

    database, tenants = await _check("database", count, timeout, failed)
    valkey = "off"
    client = request.app.state.get("valkey")  # the app's Valkey client (odr.app), None without Valkey
    if client is not None:
        valkey, _ = await _check("valkey", client.ping, timeout, failed)
    answer = Health(status="degraded" if failed or plugins_failed else "ok", database=database, valkey=valkey,
                    tenants=tenants or 0, plugins=plugins, failed=failed, plugins_failed=plugins_failed,
                    plugin_health=problems)
    if database != "ok":
        return Response(answer, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return Response(answer)
