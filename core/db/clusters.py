"""Database clusters and where each tenant lives (its placement).

Contract:
- The registry is in the shared schema on the **primary** cluster, the one the platform was started with
  (``ODR_DATABASE_URL`` or the embedded server): ``odr.clusters`` names the clusters (the primary's row
  has no URL: it is this process's own), ``odr.tenants.cluster`` places each tenant on one. The shared
  schema (registry, accounts, plugin choices) exists only on the primary.
- A cluster's ``url`` is, like ``ODR_DATABASE_URL``, either a superuser URL (the runtime and
  administration logins are then made there exactly as on the primary, :func:`core.db.logins.prepare_logins`)
  or the runtime login's URL with ``admin_url`` the administration login's. Passwords belong in the
  service user's ``.pgpass``, not in the URLs (the registry is readable by the runtime login).
- :func:`placement` answers a tenant's cluster and write pause from a per-process cache, re-read after
  :data:`PLACEMENT_TTL` seconds or at once after :func:`forget_placement` (every process forgets when the
  mover publishes, ``core.pluginhost.invalidation``). A tenant not in the registry is on the primary.
- :func:`usable_replica` picks a read replica of a cluster (its ``replica_urls``: physical standbys
  streaming from it, so the same roles and schemas) whose replay lag, measured at most once a second,
  is below ``ODR_REPLICA_MAX_LAG_SECONDS``; none otherwise (the caller reads the primary). A replica
  URL may be a superuser's (embedded development): the runtime login is then used on it.
- :func:`cluster_pool` is one runtime pool per cluster and process, opened on first use; its login is
  checked like the primary's (:func:`core.db.logins.check_runtime_login`). :func:`admin_url` is the
  administration login's URL there (``core.db.admin`` pools it).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Awaitable, Callable

import asyncpg
import msgspec

from core.db.logins import check_runtime_login, prepare_logins

log = logging.getLogger(__name__)

PRIMARY = "primary"
PLACEMENT_TTL = 5.0
PAUSED_TTL = 0.25
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,29}$")


class Cluster(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: str
    url: str | None
    admin_url: str | None
    replica_urls: list[str]


class Placement(msgspec.Struct, frozen=True, kw_only=True):
    cluster: str
    writes_paused: bool


class ReadSource(msgspec.Struct, frozen=True, kw_only=True):
    """Where a read ran: ``server`` ``replica`` or ``primary`` (the cluster's primary server), and how
    old the data was (replay lag in seconds; 0 on the primary)."""

    server: str
    cluster: str
    lag_seconds: float


class ClusterUnknown(LookupError):
    pass


class _ClusterPool(msgspec.Struct, kw_only=True):
    pool: asyncpg.Pool
    runtime_login: str
    admin_url: str | None


class _State:
    def __init__(self) -> None:
        self.primary_pool: Callable[[], asyncpg.Pool | None] = lambda: None
        self.primary_login: str | None = None
        self.primary_url: str | None = None
        self.pool_min = 2
        self.pool_max = 10
        self.statement_cache = True
        self.app_role = "odr_app"
        self.admin_role = "odr_admin"
        self.placements: dict[str, tuple[float, Placement]] = {}
        self.pools: dict[str, _ClusterPool] = {}
        self.lock: asyncio.Lock | None = None
        self.reset_hook: Callable[[asyncpg.Connection], Awaitable[None]] | None = None
        self.max_lag = 30.0
        self.replica_pools: dict[str, asyncpg.Pool] = {}
        self.replica_lag: dict[str, tuple[float, float | None]] = {}
        self.replica_urls: dict[str, tuple[float, list[str]]] = {}


STATE = _State()


def configure(*, primary_pool: Callable[[], asyncpg.Pool | None], primary_login: str | None, primary_url: str, pool_min: int,
              pool_max: int, statement_cache: bool, app_role: str, admin_role: str,
              reset: Callable[[asyncpg.Connection], Awaitable[None]], max_lag: float = 30.0) -> None:
    """Called by :func:`core.db.engine.connect` once the primary pool is up."""
    STATE.primary_pool = primary_pool
    STATE.primary_login = primary_login
    STATE.primary_url = primary_url
    STATE.pool_min, STATE.pool_max, STATE.statement_cache = pool_min, pool_max, statement_cache
    STATE.app_role, STATE.admin_role = app_role, admin_role
    STATE.reset_hook = reset
    STATE.max_lag = max_lag
    STATE.placements.clear()
    STATE.lock = asyncio.Lock()


def _primary() -> asyncpg.Pool:
    pool = STATE.primary_pool()
    if pool is None:
        raise RuntimeError("the database pool is not started")
    return pool


_PLACEMENT_SQL = "SELECT cluster, writes_paused_at IS NOT NULL AS paused FROM odr.tenants WHERE slug = $1"


async def placement(slug: str) -> Placement:
    """Where tenant ``slug`` lives (cached, see the module's contract)."""
    cached = STATE.placements.get(slug)
    now = time.monotonic()
    if cached is not None and now - cached[0] < PLACEMENT_TTL:
        return cached[1]
    try:
        async with _primary().acquire() as conn:
            row = await conn.fetchrow(_PLACEMENT_SQL, slug)
    except (asyncpg.UndefinedColumnError, asyncpg.UndefinedTableError):  # shared schema before 0002
        row = None
    found = Placement(cluster=row["cluster"], writes_paused=row["paused"]) if row else Placement(cluster=PRIMARY, writes_paused=False)
    if row is not None:
        # a pause is short: re-read it after PAUSED_TTL even when no invalidation arrives
        STATE.placements[slug] = (now - PLACEMENT_TTL + PAUSED_TTL if found.writes_paused else now, found)
    return found


def cached_placement(slug: str) -> Placement | None:
    cached = STATE.placements.get(slug)
    return cached[1] if cached is not None else None


def forget_placement(slug: str | None = None) -> None:
    """Forget one tenant's cached placement (every tenant's with ``None``)."""
    if slug is None:
        STATE.placements.clear()
    else:
        STATE.placements.pop(slug, None)


async def registry(conn: asyncpg.Connection | None = None) -> list[Cluster]:
    """Every cluster of the registry (read on the primary)."""
    sql = "SELECT name, role, url, admin_url, replica_urls FROM odr.clusters ORDER BY role <> 'primary', name"
    if conn is not None:
        rows = await conn.fetch(sql)
    else:
        async with _primary().acquire() as c:
            rows = await c.fetch(sql)
    return [Cluster(**{**dict(r), "replica_urls": list(r["replica_urls"])}) for r in rows]


async def cluster(name: str) -> Cluster:
    for c in await registry():
        if c.name == name:
            return c
    raise ClusterUnknown(f"cluster: no cluster named {name!r} (odr cluster list)")


async def _open(name: str) -> _ClusterPool:
    c = await cluster(name)
    if c.url is None:
        raise RuntimeError("the primary cluster is the platform's own pool")
    logins = await prepare_logins(c.url, app_role=STATE.app_role, admin_role=STATE.admin_role, admin_url=c.admin_url)
    pool = await asyncpg.create_pool(
        logins.runtime, min_size=min(STATE.pool_min, STATE.pool_max), max_size=STATE.pool_max, reset=STATE.reset_hook,
        max_inactive_connection_lifetime=120, max_queries=20_000,
        statement_cache_size=100 if STATE.statement_cache else 0,
        server_settings={"application_name": "odr"},
    )
    try:
        async with pool.acquire() as conn:
            login = await check_runtime_login(conn)
    except BaseException:
        pool.terminate()
        raise
    log.info("cluster %s: pool opened", name)
    return _ClusterPool(pool=pool, runtime_login=login, admin_url=logins.admin)


async def _entry(name: str) -> _ClusterPool:
    entry = STATE.pools.get(name)
    if entry is None:
        assert STATE.lock is not None, "core.db.engine.connect first"
        async with STATE.lock:
            entry = STATE.pools.get(name)
            if entry is None:
                entry = STATE.pools[name] = await _open(name)
    return entry


async def cluster_pool(name: str) -> asyncpg.Pool:
    """The runtime pool of cluster ``name`` (the platform's own for the primary)."""
    if name == PRIMARY:
        return _primary()
    return (await _entry(name)).pool


async def runtime_login(name: str) -> str:
    """The runtime login on cluster ``name`` (tenant runtime roles are granted to it there)."""
    if name == PRIMARY:
        if STATE.primary_login is None:
            raise RuntimeError("onboarding needs the platform's database connection (engine.connect)")
        return STATE.primary_login
    return (await _entry(name)).runtime_login


async def admin_url(name: str) -> str | None:
    """The administration login's URL on cluster ``name`` (not for the primary: ``core.db.admin`` has it)."""
    return (await _entry(name)).admin_url


class SuperuserNeeded(RuntimeError):
    pass


async def superuser_url(name: str) -> str:
    """A superuser URL of cluster ``name`` (moving a tenant needs one on both clusters: publications of
    a whole schema, subscriptions, replication): the platform's own URL for the primary, the registered
    URL for the others; :class:`SuperuserNeeded` when it is not a superuser's."""
    url = STATE.primary_url if name == PRIMARY else (await cluster(name)).url
    if url is None:
        raise SuperuserNeeded(f"cluster {name}: no URL")
    conn = await asyncpg.connect(url)
    try:
        if not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            raise SuperuserNeeded(
                f"cluster {name}: moving a tenant needs a superuser URL of both clusters (ODR_DATABASE_URL for the "
                "primary, the URL of odr cluster add for the others); run odr tenant move where they are set")
    finally:
        await conn.close()
    return url


_LAG_SQL = """SELECT pg_is_in_recovery() AS standby,
       CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END AS lag"""
REPLICA_CHECK_SECONDS = 1.0


async def _replica_urls(name: str) -> list[str]:
    cached = STATE.replica_urls.get(name)
    if cached is not None and time.monotonic() - cached[0] < PLACEMENT_TTL:
        return cached[1]
    urls = next((c.replica_urls for c in await registry() if c.name == name), [])
    STATE.replica_urls[name] = (time.monotonic(), urls)
    return urls


async def _replica_pool(url: str) -> asyncpg.Pool:
    pool = STATE.replica_pools.get(url)
    if pool is None:
        from core.db.logins import with_user

        conn = await asyncpg.connect(url)
        try:
            runtime = with_user(url, STATE.app_role) if await conn.fetchval(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") else url
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(
            runtime, min_size=0, max_size=max(2, STATE.pool_max // 2), reset=STATE.reset_hook,
            max_inactive_connection_lifetime=120, statement_cache_size=100 if STATE.statement_cache else 0,
            server_settings={"application_name": "odr-replica"})
        try:
            async with pool.acquire() as c:
                await check_runtime_login(c)
        except BaseException:
            pool.terminate()
            raise
        STATE.replica_pools[url] = pool
    return pool


async def replica_lag(url: str) -> float | None:
    """Replay lag of the replica at ``url`` in seconds (None: unreachable or not a standby); measured
    at most once every :data:`REPLICA_CHECK_SECONDS`."""
    cached = STATE.replica_lag.get(url)
    if cached is not None and time.monotonic() - cached[0] < REPLICA_CHECK_SECONDS:
        return cached[1]
    lag: float | None = None
    try:
        pool = await _replica_pool(url)
        async with pool.acquire() as conn:
            row = await conn.fetchrow(_LAG_SQL)
        lag = float(row["lag"] or 0.0) if row["standby"] else None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError) as exc:
        log.warning("read replica of a cluster unreachable (%s); reading the primary", type(exc).__name__)
    STATE.replica_lag[url] = (time.monotonic(), lag)
    return lag


async def usable_replica(name: str) -> tuple[asyncpg.Pool, float] | None:
    """A replica of cluster ``name`` lagging less than the bound, with its lag; None otherwise."""
    for url in await _replica_urls(name):
        lag = await replica_lag(url)
        if lag is not None and lag <= STATE.max_lag:
            return STATE.replica_pools[url], lag
    return None


async def close() -> None:
    pools, STATE.pools = STATE.pools, {}
    replicas, STATE.replica_pools = STATE.replica_pools, {}
    for pool in [e.pool for e in pools.values()] + list(replicas.values()):
        try:
            await asyncio.wait_for(pool.close(), 10)
        except asyncio.TimeoutError:
            pool.terminate()
    STATE.placements.clear()
    STATE.replica_lag.clear()
    STATE.replica_urls.clear()
