"""Onboard a province: role, schema, tenant migrations, jurisdiction tree, registry row, plugin
choices and (demo only) accounts, all in ONE transaction.

PostgreSQL DDL, CREATE ROLE included, is transactional: a failure or a killed process anywhere
leaves no schema, role or registry row. Onboarding an existing tenant is a no-op (``created=False``).
"""

from __future__ import annotations

import logging
import time

import msgspec

from core.auth.accounts import create_account
from core.auth.principal import Role
from core.db.engine import platform_transaction, tenant_role
from core.db.migrations import apply_pending, discover, latest
from core.pluginhost.activations import save_activation
from core.pluginhost.host import PluginHost
from tenants.manifest import Manifest

log = logging.getLogger(__name__)
TENANT_MIGRATIONS = "tenants.migrations"


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
    async with platform_transaction() as conn:
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
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            raise OnboardingError(f"slug: database role {role} already exists outside the registry; choose another slug")
        modern = await conn.fetchval("SELECT current_setting('server_version_num')::int >= 160000")
        await conn.execute(f"CREATE ROLE {role} NOLOGIN")
        await conn.execute(f"GRANT {role} TO CURRENT_USER" + (" WITH INHERIT FALSE, SET TRUE" if modern else ""))
        await conn.execute(f"CREATE SCHEMA {role} AUTHORIZATION {role}")
        # Everything below runs as the tenant role, inside its own schema.
        await conn.execute("SELECT set_config('search_path', $1, true), set_config('role', $1, true)", role)
        await apply_pending(conn, migrations)
        paths = manifest.paths()
        await conn.executemany(
            "INSERT INTO jurisdictions (code, parent_code, level, name, name_en, path) VALUES ($1,$2,$3,$4,$5,$6)",
            [(n.code, n.parent, n.level, n.name, n.name_en, paths[n.code]) for n in manifest.nodes],
        )
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
    """Drop a tenant's schema, role and registry row in one transaction (tests and benchmarks)."""
    role = tenant_role(slug)
    async with platform_transaction() as conn:
        if not await conn.fetchval("DELETE FROM odr.tenants WHERE slug = $1 RETURNING 1", slug):
            return False
        await conn.execute("DELETE FROM odr.accounts WHERE tenant = $1", slug)
        await conn.execute("SELECT set_config('role', $1, true)", role)
        await conn.execute(f"DROP SCHEMA {role} CASCADE")
        await conn.execute("SELECT set_config('role', 'none', true)")
        await conn.execute(f"DROP ROLE {role}")
    return True
