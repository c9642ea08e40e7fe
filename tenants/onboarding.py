"""Onboard a province: its owner and runtime roles, schema, tenant migrations, jurisdiction tree,
registry row, plugin choices and (demo only) accounts, all in ONE transaction on the administration
login (:mod:`core.db.admin`; the schema and its objects are the owner role's, see :mod:`tenants.roles`).

PostgreSQL DDL, CREATE ROLE included, is transactional: a failure or a killed process anywhere
leaves no schema, role or registry row. Onboarding an existing tenant is a no-op (``created=False``).
"""

from __future__ import annotations

import logging
import time

import msgspec

from core.auth.accounts import create_account
from core.auth.principal import Role
from core.db import engine
from core.db.admin import admin_transaction, owner_role
from core.db.engine import tenant_role
from core.db.migrations import discover, latest
from core.imports.mapping import mapping_from_dict, save_mapping
from core.pluginhost.activations import save_activation
from core.pluginhost.host import PluginHost
from tenants.manifest import Manifest
from tenants.migrate import TENANT_MIGRATIONS, apply_tenant_migrations
from tenants.roles import create_roles

log = logging.getLogger(__name__)


class OnboardResult(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    created: bool
    schema: str
    schema_version: str | None
    nodes: int
    milliseconds: float


class OnboardingError(ValueError):
    pass


async def onboard(manifest: Manifest, *, host: PluginHost, actor: str = "operator", demo: bool = False) -> OnboardResult:
    manifest.validate()
    started = time.perf_counter()
    role = tenant_role(manifest.slug)
    migrations = discover(TENANT_MIGRATIONS)
    async with admin_transaction() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('odr-onboard'), hashtext($1))", manifest.slug)
        existing = await conn.fetchrow("SELECT schema_version FROM odr.tenants WHERE slug = $1", manifest.slug)
        if existing is not None:
            return OnboardResult(
                slug=manifest.slug,
                created=False,
                schema=role,
                schema_version=existing["schema_version"],
                nodes=0,
                milliseconds=(time.perf_counter() - started) * 1000,
            )
        owner = owner_role(manifest.slug)
        taken = await conn.fetchval("SELECT string_agg(rolname, ', ') FROM pg_roles WHERE rolname IN ($1, $2)", role, owner)
        if taken:
            raise OnboardingError(f"slug: database role {taken} already exists outside the registry; choose another slug")
        if engine.RUNTIME_LOGIN is None:
            raise RuntimeError("onboarding needs the platform's database connection (engine.connect)")
        await create_roles(conn, manifest.slug, runtime_login=engine.RUNTIME_LOGIN)
        await conn.execute(f"CREATE SCHEMA {role} AUTHORIZATION {owner}")
        await apply_tenant_migrations(conn, manifest.slug, migrations)
        # The tree is written as the owner (the runtime role may only read it).
        await conn.execute("SELECT set_config('search_path', $1, true), set_config('role', $2, true)", role, owner)
        paths = manifest.paths()
        await conn.executemany(
            "INSERT INTO jurisdictions (code, parent_code, level, name, name_en, path) VALUES ($1,$2,$3,$4,$5,$6)",
            [(n.code, n.parent, n.level, n.name, n.name_en, paths[n.code]) for n in manifest.nodes],
        )
        if manifest.import_mapping is not None:
            await save_mapping(conn, mapping_from_dict(manifest.import_mapping), actor=actor)
        await conn.execute("SELECT set_config('role', 'none', true), set_config('search_path', 'odr', true)")
        await conn.execute(
            """INSERT INTO odr.tenants (slug, name, name_en, schema_name, role_name, schema_version, migrated_at, manifest)
               VALUES ($1, $2, $3, $4, $4, $5, now(), $6)""",
            manifest.slug,
            manifest.name,
            manifest.name_en,
            role,
            latest(migrations),
            msgspec.json.encode(manifest).decode(),
        )
        node_paths = {code: tuple(path.split("/")) for code, path in paths.items()}
        for choice in manifest.plugins:
            if choice.plugin not in host.infos:
                log.warning("manifest %s: plugin %s is not loaded; choice skipped", manifest.slug, choice.plugin)
                continue
            await save_activation(
                conn,
                host,
                tenant=manifest.slug,
                node_code=choice.node,
                plugin=choice.plugin,
                active=choice.active,
                config=choice.config,
                actor=actor,
                node_paths=node_paths,
            )
        if demo:
            for account in manifest.demo_accounts:
                await create_account(
                    conn,
                    username=account.username,
                    password=account.password,
                    role=Role(account.role),
                    tenant=manifest.slug,
                    node_code=account.node,
                    display_name=account.display_name,
                    exist_ok=True,
                )
    log.info("tenant %s onboarded (%d nodes)", manifest.slug, len(manifest.nodes))
    return OnboardResult(
        slug=manifest.slug,
        created=True,
        schema=role,
        schema_version=latest(migrations),
        nodes=len(manifest.nodes),
        milliseconds=(time.perf_counter() - started) * 1000,
    )


async def offboard(slug: str) -> bool:
    """Drop a tenant's schema, roles and registry row in one transaction (tests and benchmarks)."""
    role, owner = tenant_role(slug), owner_role(slug)
    async with admin_transaction() as conn:
        if not await conn.fetchval("DELETE FROM odr.tenants WHERE slug = $1 RETURNING 1", slug):
            return False
        await conn.execute("DELETE FROM odr.accounts WHERE tenant = $1", slug)
        if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", role):
            await conn.execute(f"DROP SCHEMA {role} CASCADE")
        for name in (role, owner):
            if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
                await conn.execute(f"DROP OWNED BY {name}")
                await conn.execute(f"DROP ROLE {name}")
    return True
