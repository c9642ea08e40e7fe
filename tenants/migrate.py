"""``odr migrate``: the shared schema, then every tenant schema, tenants in parallel with a bound.

Each tenant migrates in its own transaction as its own role; its version is recorded in its schema
(``_migrations``) and in the registry (``odr.tenants.schema_version``). A failing tenant is reported
with its error and recorded in ``odr.tenants.migration_error``; the others go on.
"""

from __future__ import annotations

import asyncio
import time
from typing import Sequence

import msgspec

from core.db.engine import SHARED_SCHEMA, platform_transaction, tenant_transaction
from core.db.migrations import apply_pending, discover, latest
from tenants.onboarding import TENANT_MIGRATIONS

SHARED_MIGRATIONS = "core.db.shared_migrations"


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


async def migrate_shared() -> list[str]:
    async with platform_transaction() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('odr-migrate-shared'))")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SHARED_SCHEMA}")
        return await apply_pending(conn, discover(SHARED_MIGRATIONS))


async def migrate_tenant(slug: str, package: str = TENANT_MIGRATIONS) -> TenantMigration:
    """Migrate one tenant to the newest migration of ``package`` (a migrations package name)."""
    migrations = discover(package)
    try:
        async with tenant_transaction(slug) as conn:
            applied = await apply_pending(conn, migrations)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
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
