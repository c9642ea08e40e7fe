"""Transactions on the administration login: the only way to act as a tenant's owner role.

Contract:
- :func:`admin_transaction` is one transaction as the administration login (see
  :mod:`core.db.logins`), ``search_path`` the shared schema. Onboarding, ``odr migrate`` and offboarding
  use it; no request handler's ordinary work does.
- :func:`owner_transaction` is one transaction as tenant ``slug``'s owner role in its schema (DDL,
  grants, bulk loads of benchmarks). Nothing survives either transaction: role and search_path are set
  transaction-locally.
- The connections come from a small pool of their own per cluster (opened on first use, closed by
  :func:`core.db.engine.disconnect`), never from a runtime pool, so a request can never be handed a
  connection that may become an owner. ``admin_transaction(cluster)`` acts on that cluster (the primary,
  which holds the shared schema, by default); ``owner_transaction(slug)`` on the tenant's own cluster.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

import asyncpg

from core.db.logins import OWNER_PREFIX

_url: str | None = None
_pool_max = 4
_statement_cache = True
_pools: dict[str, asyncpg.Pool] = {}
_pool_lock: asyncio.Lock | None = None


class AdminLoginMissing(RuntimeError):
    """Onboarding or migrating was asked for, but no administration login is configured."""


def owner_role(slug: str) -> str:
    """The NOLOGIN role owning tenant ``slug``'s schema and objects (``slug`` checked by ``tenant_role``)."""
    from core.db.engine import tenant_role

    tenant_role(slug)
    return f"{OWNER_PREFIX}{slug}"


def configure(url: str | None, *, pool_max: int, statement_cache: bool) -> None:
    global _url, _pool_max, _statement_cache, _pool_lock
    _url, _pool_max, _statement_cache = url, max(1, pool_max), statement_cache
    _pool_lock = asyncio.Lock()


async def _acquire_pool(cluster: str) -> asyncpg.Pool:
    from core.db import clusters

    pool = _pools.get(cluster)
    if pool is not None:
        return pool
    if cluster == clusters.PRIMARY:
        url = _url
        if url is None:
            raise AdminLoginMissing(
                "onboarding and migrations need the administration login: set ODR_ADMIN_DATABASE_URL (deploy/README.md)"
            )
    else:
        url = await clusters.admin_url(cluster)
        if url is None:
            raise AdminLoginMissing(
                f"cluster {cluster}: onboarding and migrations there need its administration login (odr cluster add --admin-url)")
    assert _pool_lock is not None
    async with _pool_lock:
        pool = _pools.get(cluster)
        if pool is None:
            pool = _pools[cluster] = await asyncpg.create_pool(
                url, min_size=0, max_size=_pool_max, max_inactive_connection_lifetime=30,
                statement_cache_size=100 if _statement_cache else 0,
                server_settings={"application_name": "odr-admin"},
            )
    return pool


async def close() -> None:
    pools = list(_pools.values())
    _pools.clear()
    for pool in pools:
        try:
            await asyncio.wait_for(pool.close(), 10)
        except asyncio.TimeoutError:
            pool.terminate()


@asynccontextmanager
async def admin_transaction(cluster: str = "primary") -> AsyncIterator[asyncpg.Connection]:
    """One transaction as the administration login of ``cluster`` (search_path the shared schema, which
    exists on the primary only)."""
    from core.db.engine import SHARED_SCHEMA

    pool = await _acquire_pool(cluster)
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("SELECT set_config('search_path', $1, true)", SHARED_SCHEMA)
            yield conn


@asynccontextmanager
async def owner_transaction(slug: str) -> AsyncIterator[asyncpg.Connection]:
    """One transaction as tenant ``slug``'s owner role, ``search_path`` its schema, on its cluster."""
    from core.db.clusters import placement
    from core.db.engine import tenant_role

    schema, owner = tenant_role(slug), owner_role(slug)
    async with admin_transaction((await placement(slug)).cluster) as conn:
        await conn.execute("SELECT set_config('search_path', $1, true), set_config('role', $2, true)", schema, owner)
        yield conn
