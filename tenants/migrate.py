"""``odr migrate``: the shared schema, then every tenant schema, tenants in parallel with a bound.

Each tenant migrates in its own transaction on the administration login, each migration as the
schema's owner role (or as the administration login itself where the migration says ``RUNS_AS =
"admin"``), and ends with the runtime role's grants set to the declared table
(:func:`tenants.roles.apply_runtime_grants`). Its version is recorded in its schema (``_migrations``)
and in the registry (``odr.tenants.schema_version``). A failing tenant is reported with its error and
recorded in ``odr.tenants.migration_error``; the others go on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Sequence

import msgspec

import asyncpg

from core.db.admin import admin_transaction, owner_role
from core.db.clusters import placement
from core.db.engine import CURRENT_MIGRATION_TENANT, SHARED_SCHEMA, platform_transaction, tenant_role
from core.db.migrations import Migration, apply_pending, discover, latest, revert
from core.notifications.feed_clock import advance_feed_clock

log = logging.getLogger(__name__)
from core.db.shared_schema import migrate_shared
from tenants.roles import apply_runtime_grants, runtime_grants_match

TENANT_MIGRATIONS = "tenants.migrations"


class TenantMigration(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    ok: bool
    applied: list[str]
    version: str | None
    error: str | None = None


class MigrateReport(msgspec.Struct, frozen=True, kw_only=True):
    shared_applied: list[str]
    tenants: list[TenantMigration]
    seconds: float

    @property
    def failed(self) -> list[TenantMigration]:
        return [t for t in self.tenants if not t.ok]


async def apply_tenant_migrations(conn: asyncpg.Connection, slug: str, migrations: list[Migration]) -> list[str]:
    """Apply the pending ``migrations`` to tenant ``slug``'s schema inside the caller's administration-
    login transaction (serialised per tenant by an advisory lock), each as the schema's owner role or as
    the login itself (``RUNS_AS = "admin"``), then set the runtime role's grants where they differ from
    the declared table; the role and search_path are the login's again on return."""
    schema = tenant_role(slug)

    async def as_owner() -> str | None:
        """search_path the schema, role its current owner (one round trip); the owner's name."""
        return await conn.fetchval(
            """SELECT set_config('role', n.nspowner::regrole::text, true)
               FROM (SELECT set_config('search_path', $1, true)) p, pg_namespace n WHERE n.nspname = $1""", schema)

    async def before_each(migration: Migration) -> None:
        if getattr(migration.module, "RUNS_AS", "owner") == "admin":
            await conn.execute("SELECT set_config('role', 'none', true)")
        else:
            await as_owner()

    token = CURRENT_MIGRATION_TENANT.set(slug)
    try:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('odr-migrate-tenant'), hashtext($1))", slug)
        if await as_owner() is None:
            raise LookupError(f"schema {schema} does not exist")
        applied = await apply_pending(conn, migrations, before_each=before_each)
        if await as_owner() == owner_role(slug) and not await runtime_grants_match(conn, slug):
            await apply_runtime_grants(conn, slug)
    finally:
        CURRENT_MIGRATION_TENANT.reset(token)
    await conn.execute("SELECT set_config('role', 'none', true), set_config('search_path', $1, true)", SHARED_SCHEMA)
    return applied


async def revert_tenant_migration(conn: asyncpg.Connection, slug: str, migration: Migration) -> None:
    """Run ``migration`` backwards on tenant ``slug``'s schema inside the caller's administration-login
    transaction, as the role it runs as (see :func:`apply_tenant_migrations`)."""
    schema = tenant_role(slug)
    role = ("none" if getattr(migration.module, "RUNS_AS", "owner") == "admin"
            else await conn.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", schema))
    await conn.execute("SELECT set_config('search_path', $1, true), set_config('role', $2, true)", schema, role)
    token = CURRENT_MIGRATION_TENANT.set(slug)
    try:
        await revert(conn, migration)
    finally:
        CURRENT_MIGRATION_TENANT.reset(token)
    await conn.execute("SELECT set_config('role', 'none', true), set_config('search_path', $1, true)", SHARED_SCHEMA)


async def migrate_tenant(slug: str, package: str = TENANT_MIGRATIONS) -> TenantMigration:
    """Migrate one tenant to the newest migration of ``package`` (a migrations package name), then
    advance its events-feed clock if its schema came from another cluster (a restored dump; a no-op
    otherwise, see :mod:`core.notifications.feed_clock`)."""
    migrations = discover(package)
    try:
        async with admin_transaction((await placement(slug)).cluster) as conn:
            applied = await apply_tenant_migrations(conn, slug, migrations)
            await advance_feed_clock(conn, tenant_role(slug))
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.warning("tenant %s: migration failed, rolled back: %s", slug, error, exc_info=True)
        async with platform_transaction() as conn:
            await conn.execute("UPDATE odr.tenants SET migration_error = $2 WHERE slug = $1", slug, error)
        return TenantMigration(slug=slug, ok=False, applied=[], version=None, error=error)
    async with platform_transaction() as conn:
        await conn.execute(
            "UPDATE odr.tenants SET schema_version = $2, migrated_at = now(), migration_error = NULL WHERE slug = $1",
            slug,
            latest(migrations),
        )
    return TenantMigration(slug=slug, ok=True, applied=applied, version=latest(migrations))


async def migrate_all(
    concurrency: int = 4, *, package: str = TENANT_MIGRATIONS, slugs: Sequence[str] | None = None
) -> MigrateReport:
    """Migrate the shared schema, then every registered tenant (or only those of ``slugs`` that are
    registered) to the newest migration of ``package``, ``concurrency`` tenants at a time.

    ``package`` and ``slugs`` exist for the benchmark and tests; ``odr migrate`` uses the defaults.
    """
    started = time.perf_counter()
    shared = await migrate_shared()
    async with platform_transaction() as conn:
        if slugs is None:
            rows = await conn.fetch("SELECT slug FROM odr.tenants ORDER BY slug")
        else:
            rows = await conn.fetch("SELECT slug FROM odr.tenants WHERE slug = ANY($1::text[]) ORDER BY slug", list(slugs))
    selected = [r["slug"] for r in rows]
    bound = asyncio.Semaphore(max(1, concurrency))

    async def one(slug: str) -> TenantMigration:
        async with bound:
            return await migrate_tenant(slug, package)

    results = await asyncio.gather(*(one(s) for s in selected))
    return MigrateReport(shared_applied=shared, tenants=list(results), seconds=time.perf_counter() - started)
