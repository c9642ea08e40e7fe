"""The platform's one database engine and pool, and the transactions that scope work to a tenant.

Contract:
- The application logs in as one non-superuser role without CREATEROLE, the runtime login (``odr_app``
  in the embedded default). It is a member of every tenant's *runtime* role ``t_<slug>`` ``WITH INHERIT
  FALSE, SET TRUE`` and of no tenant's *owner* role: it reaches tenant data only after switching role,
  so isolation is enforced by PostgreSQL, and then holds only the DML that ``tenants/privileges.py``
  declares (no DDL, TRUNCATE, GRANT or trigger control). Owners are reached only through
  :mod:`core.db.admin` (onboarding, migrations).
- :func:`tenant_transaction` is the only way to touch tenant data. It opens a transaction on a pooled
  connection and sets ``search_path`` and ``role`` transaction-locally (safe behind pgbouncer in
  transaction mode); nothing survives the transaction. The pool's reset adds ``RESET ROLE`` as a
  second line of defence.
- Piccolo tables of the tenant schema are unqualified; piccolo queries run on the transaction's
  connection, so they resolve to the tenant's schema.
- Each tenant lives on one cluster (:mod:`core.db.clusters`): :func:`tenant_transaction` takes its
  connection from that cluster's runtime pool (the primary's, :data:`ENGINE`'s own, for most), one code
  path whatever the cluster. The shared schema is on the primary only: on a tenant of another cluster,
  :func:`as_platform` and :func:`shared_fetch` use a companion transaction on the primary, committed
  just before the tenant's (a crash between the two commits leaves the shared side committed alone:
  what runs there — accounts opened or (de)activated — is written to be repeated).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import weakref
from contextlib import asynccontextmanager
from typing import AsyncIterator

import asyncpg
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction

from core.db import admin, clusters
from core.db.logins import check_runtime_login, prepare_logins
from core.settings import Settings

log = logging.getLogger(__name__)

class _Transaction(PostgresTransaction):
    """Piccolo's transaction, with its pooled connection given back to the pool whatever fails.

    Piccolo's own ``__aexit__`` releases the connection only after a successful COMMIT or ROLLBACK, and
    its ``__aenter__`` not at all when BEGIN fails: each COMMIT that fails (a deferred constraint or
    trigger, a serialization failure, a connection lost at that moment) would keep one connection out
    of the pool for good, and after ``ODR_POOL_MAX`` of them every request of the process would wait
    forever (found by the pgbouncer scenario of ``benchmarks/faults.py``, which fails COMMITs on purpose).
    Here the connection is released (the pool then resets or, if broken, replaces it) and the task's
    current transaction cleared in every case; the error still propagates."""

    async def __aenter__(self) -> "_Transaction":
        if self._parent is not None:
            return self._parent
        self.connection = await self.get_connection()
        try:
            self.transaction = self.connection.transaction()
            await self.begin()
        except BaseException:
            await self._give_back()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type, exception, traceback) -> bool:
        if self._parent:
            return exception is None
        try:
            if exception:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
        finally:
            try:
                await self._give_back()
            finally:
                self.engine.current_transaction.reset(self.context)
        return exception is None

    async def _give_back(self) -> None:
        if self.engine.pool:
            await self.engine.pool.release(self.connection)
        else:
            await self.connection.close()


class _Engine(PostgresEngine):
    """Piccolo's engine without its connect-at-construction checks (the DSN is known only at start),
    whose transactions always give their connection back (:class:`_Transaction`)."""

    async def check_version(self) -> None:
        return None

    async def prep_database(self) -> None:
        return None

    def transaction(self, allow_nested: bool = True) -> "_Transaction":
        return _Transaction(engine=self, allow_nested=allow_nested)


ENGINE = _Engine(config={}, extensions=(), log_queries=False)
"""The process-wide engine (also piccolo's ``DB`` via ``core.db.piccolo_conf``); configured by
:func:`connect`."""

SHARED_SCHEMA = "odr"
SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{1,29}$")
CURRENT_TENANT: contextvars.ContextVar[str | None] = contextvars.ContextVar("odr_tenant", default=None)


class TenantNotFound(LookupError):
    pass


def tenant_role(slug: str) -> str:
    """Schema and role name of a tenant. ``slug`` must match ``SLUG_RE`` (checked here)."""
    if not SLUG_RE.match(slug):
        raise ValueError(f"invalid tenant slug {slug!r}: lower-case letters, digits, underscore, 2-30 chars")
    return f"t_{slug}"


_RESET_DONE: "weakref.WeakKeyDictionary[asyncpg.Connection, int]" = weakref.WeakKeyDictionary()
"""Connections whose last statement was the full reset (sent with a transaction's COMMIT/ROLLBACK),
with the connection's query count just after it."""


def _reset_sql(conn: asyncpg.Connection) -> str:
    return conn.get_reset_query() + "\nRESET ROLE;"


def _raw(conn) -> asyncpg.Connection:
    """The asyncpg Connection behind a pool proxy (the object the pool's reset callback receives)."""
    return getattr(conn, "_con", None) or conn


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """Pool reset: asyncpg's default reset query (``RESET ALL``, advisory locks, cursors, listeners)
    plus ``RESET ROLE``, which ``RESET ALL`` leaves alone; one round trip. A second line of defence:
    tenant settings are transaction-local anyway.

    When a tenant transaction already sent exactly this reset in the same round trip as its COMMIT or
    ROLLBACK and nothing ran on the connection since (same query count), it is not sent again."""
    done = _RESET_DONE.pop(conn, None)
    if done is not None and done == conn._protocol.queries_count and not conn.is_in_transaction():
        return
    await conn.execute(_reset_sql(conn))


RUNTIME_LOGIN: str | None = None
"""Name of the runtime login the pool uses (set by :func:`connect`); tenant runtime roles are granted to it."""


async def connect(settings: Settings, url: str) -> None:
    """Configure :data:`ENGINE` for ``url`` and start its pool (bounded, connections recycled); configure
    the administration login's transactions (:mod:`core.db.admin`)."""
    global RUNTIME_LOGIN
    logins = await prepare_logins(url, app_role=settings.app_role, admin_role=settings.admin_role,
                                  admin_url=settings.admin_database_url, statement_cache=settings.statement_cache)
    config: dict = {"dsn": logins.runtime}
    if not settings.statement_cache:
        config["statement_cache_size"] = 0
    ENGINE.config = config
    await ENGINE.start_connection_pool(
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        reset=_reset_connection,
        max_inactive_connection_lifetime=120,
        max_queries=20_000,
        server_settings={"application_name": "odr"},
    )
    try:
        async with ENGINE.pool.acquire() as conn:
            RUNTIME_LOGIN = await check_runtime_login(conn)
    except BaseException:
        await disconnect()
        raise
    admin.configure(logins.admin, pool_max=max(2, settings.migrate_concurrency), statement_cache=settings.statement_cache)
    clusters.configure(primary_pool=lambda: ENGINE.pool, primary_login=RUNTIME_LOGIN, primary_url=url, pool_min=settings.pool_min,
                       pool_max=settings.pool_max, statement_cache=settings.statement_cache,
                       app_role=settings.app_role, admin_role=settings.admin_role, reset=_reset_connection,
                       max_lag=settings.replica_max_lag_seconds)


async def disconnect() -> None:
    await admin.close()
    await clusters.close()
    pool = ENGINE.pool
    if pool is not None:
        try:
            await asyncio.wait_for(pool.close(), 10)
        except asyncio.TimeoutError:
            log.warning("database pool did not close within 10 s; terminating its connections")
            pool.terminate()
        ENGINE.pool = None


class _TenantTransaction(_Transaction):
    """A piccolo transaction on ``pool`` (the tenant's cluster's) whose BEGIN also sets the tenant's
    search_path and role, in one round trip (a simple-protocol script; ``role`` is a validated
    identifier, see :func:`tenant_role`). On a cluster other than the primary, a companion transaction
    on the primary is opened when the shared schema is written or read (:func:`as_platform`)."""

    def __init__(self, engine: PostgresEngine, role: str, pool: asyncpg.Pool, remote: bool) -> None:
        super().__init__(engine, allow_nested=False)
        self._pool = pool
        self.remote = remote
        self.companion = None
        self._companion_tx = None
        self._begin_sql = (
            f"BEGIN; SELECT set_config('search_path', '{role}', true), set_config('role', '{role}', true)"
        )

    async def get_connection(self):
        return await self._pool.acquire()

    async def begin(self) -> None:
        await self.connection.execute(self._begin_sql)

    async def open_companion(self) -> asyncpg.Connection:
        """The companion transaction on the primary (search_path the shared schema), opened once."""
        if self.companion is None:
            conn = await ENGINE.pool.acquire()
            try:
                tx = conn.transaction()
                await tx.start()
                await conn.execute("SELECT set_config('search_path', $1, true)", SHARED_SCHEMA)
            except BaseException:
                await ENGINE.pool.release(conn)
                raise
            self.companion, self._companion_tx = conn, tx
        return self.companion

    async def _close_companion(self, commit: bool) -> None:
        conn, tx = self.companion, self._companion_tx
        if conn is None:
            return
        self.companion = self._companion_tx = None
        try:
            if commit:
                await tx.commit()
            else:
                await tx.rollback()
        finally:
            await ENGINE.pool.release(conn)

    async def commit(self) -> None:
        if self.companion is not None:
            try:
                await self._close_companion(True)
            except BaseException:
                await self.rollback()
                raise
        await self._end("COMMIT")
        self._committed = True

    async def rollback(self) -> None:
        try:
            await self._close_companion(False)
        finally:
            await self._end("ROLLBACK")
            self._rolled_back = True

    async def _end(self, verb: str) -> None:
        """COMMIT or ROLLBACK, followed in the same round trip by the pool's full reset (the connection
        goes back to the pool right after); the pool's reset callback then has nothing to send. If the
        COMMIT fails, the script stops there and the pool sends the reset as usual."""
        conn = _raw(self.connection)
        await conn.execute(f"{verb};\n{_reset_sql(conn)}")
        _RESET_DONE[conn] = conn._protocol.queries_count

    async def _give_back(self) -> None:
        await self._pool.release(self.connection)


class WritesPaused(RuntimeError):
    """The tenant is being switched to another cluster: its requests pause for a moment (answered 503
    with ``Retry-After``; nothing was written)."""

    retry_after = 1


@asynccontextmanager
async def tenant_transaction(slug: str) -> AsyncIterator[asyncpg.Connection]:
    """One transaction scoped to tenant ``slug``: search_path and role set locally, on the tenant's
    cluster.

    Must be outermost (no other transaction open on this task). Yields the asyncpg connection for raw
    SQL; piccolo queries inside the block run on it too. Raises on any error after rolling back.
    While the tenant is being switched to another cluster (``odr tenant move``) it raises
    :class:`WritesPaused` (answered 503 with ``Retry-After``): at once when the registry says so, or
    when the source cluster refuses the tenant's role a privilege the mover took away (a process whose
    cached placement is behind), so nothing is written to a source that is being left.
    """
    role = tenant_role(slug)
    if ENGINE.current_transaction.get() is not None:
        raise RuntimeError("tenant_transaction must not be nested in another transaction")
    where = await clusters.placement(slug)
    if where.writes_paused:
        raise WritesPaused(slug)
    remote = where.cluster != clusters.PRIMARY
    pool = await clusters.cluster_pool(where.cluster) if remote else ENGINE.pool
    try:
        async with _TenantTransaction(ENGINE, role, pool, remote) as tx:
            token = CURRENT_TENANT.set(slug)
            try:
                yield tx.connection
            finally:
                CURRENT_TENANT.reset(token)
    except asyncpg.InsufficientPrivilegeError as exc:
        clusters.forget_placement(slug)
        now = await clusters.placement(slug)
        if now.writes_paused or now.cluster != where.cluster:
            raise WritesPaused(slug) from exc
        raise


@asynccontextmanager
async def tenant_read(slug: str, *, within: asyncpg.Connection | None = None
                      ) -> AsyncIterator[tuple[asyncpg.Connection, clusters.ReadSource]]:
    """A read-only view of tenant ``slug`` for reports and evaluation reads, and where it came from:
    a read replica of the tenant's cluster lagging less than ``ODR_REPLICA_MAX_LAG_SECONDS`` (a
    READ ONLY transaction there, search_path and role set as in :func:`tenant_transaction`; it is not
    the task's piccolo transaction, so it may run inside one), else the primary: ``within`` (the
    caller's open tenant transaction) or a tenant transaction of its own."""
    role = tenant_role(slug)
    where = await clusters.placement(slug)
    replica = await clusters.usable_replica(where.cluster)
    if replica is None:
        source = clusters.ReadSource(server="primary", cluster=where.cluster, lag_seconds=0.0)
        if within is not None:
            yield within, source
        else:
            async with tenant_transaction(slug) as conn:
                yield conn, source
        return
    pool, lag = replica
    async with pool.acquire() as conn:
        async with conn.transaction(readonly=True):
            await conn.execute(f"SELECT set_config('search_path', '{role}', true), set_config('role', '{role}', true)")
            yield conn, clusters.ReadSource(server="replica", cluster=where.cluster, lag_seconds=round(lag, 3))


@asynccontextmanager
async def platform_transaction() -> AsyncIterator[asyncpg.Connection]:
    """One transaction on the shared schema as the application role (no tenant data reachable)."""
    if ENGINE.current_transaction.get() is not None:
        raise RuntimeError("platform_transaction must not be nested in another transaction")
    async with ENGINE.transaction() as tx:
        await tx.connection.execute("SELECT set_config('search_path', $1, true)", SHARED_SCHEMA)
        yield tx.connection


MIGRATION_CONNECTION: contextvars.ContextVar[asyncpg.Connection | None] = contextvars.ContextVar(
    "odr_migration_connection", default=None)
"""The connection migrations run on (set by ``core.db.migrations.apply_pending``)."""
CURRENT_MIGRATION_TENANT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "odr_migration_tenant", default=None)
"""The tenant whose schema the running migration changes (set by ``tenants.migrate``)."""


async def run_sql(sql: str, *args) -> None:
    """Execute SQL on the connection of the migration being applied, else on the current piccolo
    transaction's connection (used by migrations)."""
    conn = MIGRATION_CONNECTION.get()
    if conn is None:
        tx = ENGINE.current_transaction.get()
        if tx is None:
            raise RuntimeError("run_sql needs an open transaction")
        conn = tx.connection
    await conn.execute(sql, *args)


@asynccontextmanager
async def as_platform(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """Inside a :func:`tenant_transaction`, act briefly as the application role on the shared schema
    (e.g. to open an account together with the tenant row that needs it), in the same transaction.
    Use the connection it yields and schema-qualified ``odr.`` names: for a tenant on the primary it
    is ``conn`` itself (the tenant's role and search_path are restored on exit); for a tenant on
    another cluster it is the companion transaction on the primary, committed with the tenant's."""
    slug = CURRENT_TENANT.get()
    if slug is None:
        raise RuntimeError("as_platform is for use inside tenant_transaction")
    tx = ENGINE.current_transaction.get()
    if isinstance(tx, _TenantTransaction) and tx.remote:
        yield await tx.open_companion()
        return
    await conn.execute("SELECT set_config('role', 'none', true)")
    try:
        yield conn
    finally:
        await conn.execute("SELECT set_config('role', $1, true)", tenant_role(slug))


async def shared_fetch(sql: str, *args) -> list[asyncpg.Record]:
    """One read of the shared schema (schema-qualified SQL), usable anywhere: inside a transaction it
    runs on that transaction's connection (as the application role for a moment, if a tenant's; the
    companion transaction on the primary for a tenant of another cluster), so a task never holds one
    pooled connection while waiting for another of the same pool (which deadlocks a full pool)."""
    tx = ENGINE.current_transaction.get()
    if tx is not None:
        if CURRENT_TENANT.get() is not None:
            async with as_platform(tx.connection) as conn:
                return await conn.fetch(sql, *args)
        return await tx.connection.fetch(sql, *args)
    if ENGINE.pool is None:
        raise RuntimeError("the database pool is not started")
    async with ENGINE.pool.acquire() as conn:
        return await conn.fetch(sql, *args)
