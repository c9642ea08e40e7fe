"""The shared schema (``odr``: tenant registry, accounts, plugin activations ...) brought to its newest
migration (``core/db/shared_migrations``).

Contract: :func:`migrate_shared` runs in one platform transaction, serialised across processes by an
advisory lock, creates the schema if missing and returns the names of the migrations it applied (none
when up to date). Every process start (:meth:`core.runtime.Platform.start`) and ``odr migrate``
(:func:`tenants.migrate.migrate_all`) call it; it knows nothing of tenants.
"""

from __future__ import annotations

from core.db.engine import SHARED_SCHEMA, platform_transaction
from core.db.migrations import apply_pending, discover

SHARED_MIGRATIONS = "core.db.shared_migrations"


async def migrate_shared() -> list[str]:
    async with platform_transaction() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('odr-migrate-shared'))")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SHARED_SCHEMA}")
        return await apply_pending(conn, discover(SHARED_MIGRATIONS))
