"""Ordered piccolo migrations for one schema (the shared one, or one tenant's).

A migration is a module named ``mNNNN_<what>.py`` in a migrations package, defining ``ID``,
``DESCRIPTION`` and ``async def forwards() -> MigrationManager`` (piccolo's format; raw SQL through
``add_raw``). :func:`apply_pending` runs the missing ones, in order, inside the caller's transaction,
recording each in the schema's own ``_migrations`` table, so a schema's version always commits or
rolls back together with its DDL.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Awaitable, Callable

import asyncpg
from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db.engine import MIGRATION_CONNECTION, run_sql


@dataclass(frozen=True)
class Migration:
    id: str
    description: str
    module: ModuleType


def discover(package: str) -> list[Migration]:
    pkg = importlib.import_module(package)
    found = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("m") and info.name[1:5].isdigit():
            module = importlib.import_module(f"{package}.{info.name}")
            found.append(Migration(module.ID, module.DESCRIPTION, module))
    found.sort(key=lambda m: m.id)
    ids = [m.id for m in found]
    if len(set(ids)) != len(ids):
        raise RuntimeError(f"duplicate migration ids in {package}: {ids}")
    return found


def sql_migration(migration_id: str, description: str, *statements: str) -> Callable:
    """Build a piccolo ``forwards()`` running ``statements`` as raw SQL."""

    async def forwards() -> MigrationManager:
        # The caller's transaction is the migration's (piccolo's own would open one on the pool).
        manager = MigrationManager(migration_id=migration_id, app_name="odr", description=description,
                                   wrap_in_transaction=False)
        for statement in statements:

            async def run(statement: str = statement) -> None:
                await run_sql(statement)

            manager.add_raw(run)
        return manager

    return forwards


async def applied_ids(conn: asyncpg.Connection) -> list[str]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (id text PRIMARY KEY, description text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    return [r["id"] for r in await conn.fetch("SELECT id FROM _migrations ORDER BY id")]


async def apply_pending(
    conn: asyncpg.Connection,
    migrations: list[Migration],
    *,
    before_each: Callable[[Migration], Awaitable[None]] | None = None,
) -> list[str]:
    """Apply the migrations missing from the current schema (``search_path``) on ``conn``, in the
    caller's transaction; return their ids. ``before_each`` runs before each one applied (e.g. to set
    the role it runs as)."""
    done = set(await applied_ids(conn))
    applied = []
    token = MIGRATION_CONNECTION.set(conn)
    try:
        for migration in migrations:
            if migration.id in done:
                continue
            if before_each is not None:
                await before_each(migration)
            manager: MigrationManager = await migration.module.forwards()
            with contextlib.redirect_stdout(io.StringIO()):  # piccolo prints progress; our callers report
                await manager.run()
            await conn.execute(
                "INSERT INTO _migrations (id, description) VALUES ($1, $2)", migration.id, migration.description
            )
            applied.append(migration.id)
    finally:
        MIGRATION_CONNECTION.reset(token)
    return applied


async def revert(conn: asyncpg.Connection, migration: Migration) -> None:
    """Run ``migration`` backwards on ``conn`` (its ``backwards()`` manager) and forget it in
    ``_migrations``, in the caller's transaction. Only migrations that define ``backwards`` can."""
    if not hasattr(migration.module, "backwards"):
        raise RuntimeError(f"migration {migration.id} cannot be reverted")
    token = MIGRATION_CONNECTION.set(conn)
    try:
        manager: MigrationManager = await migration.module.backwards()
        with contextlib.redirect_stdout(io.StringIO()):
            await manager.run(backwards=True)
        await conn.execute("DELETE FROM _migrations WHERE id = $1", migration.id)
    finally:
        MIGRATION_CONNECTION.reset(token)


def latest(migrations: list[Migration]) -> str | None:
    return migrations[-1].id if migrations else None
