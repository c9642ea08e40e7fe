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
from core.db import clusters, engine
from core.db.clusters import PRIMARY
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
    cluster: str = "primary"


class OnboardingError(ValueError):
    pass


async def _create_schema(conn, manifest: Manifest, migrations, *, runtime_login: str, actor: str) -> None:
    """Roles, schema, tenant migrations and jurisdiction tree of a new tenant, in the caller's
    administration-login transaction on the tenant's cluster."""
    role, owner = tenant_role(manifest.slug), owner_role(manifest.slug)
    taken = await conn.fetchval("SELECT string_agg(rolname, ', ') FROM pg_roles WHERE rolname IN ($1, $2)", role, owner)
    if taken:
        raise OnboardingError(f"slug: database role {taken} already exists outside the registry; choose another slug")
    await create_roles(conn, manifest.slug, runtime_login=runtime_login)
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


async def drop_schema_and_roles(conn, slug: str) -> None:
    """Drop tenant ``slug``'s schema and both roles on the cluster of ``conn`` (an administration-login
    transaction), whatever of them exists."""
    role, owner = tenant_role(slug), owner_role(slug)
    if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", role):
        await conn.execute(f"DROP SCHEMA {role} CASCADE")
    for name in (role, owner):
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
            await conn.execute(f"DROP OWNED BY {name}")
            await conn.execute(f"DROP ROLE {name}")


async def onboard(manifest: Manifest, *, host: PluginHost, actor: str = "operator", demo: bool = False,
                  cluster: str = PRIMARY) -> OnboardResult:
    """Onboard ``manifest``'s province on ``cluster`` (a name of ``odr.clusters``). On the primary all is
    one transaction; on another cluster the tenant's side (roles, schema, tree) commits just before the
    registry's on the primary and is dropped again if the registry's fails, so nothing half-made stays."""
    manifest.validate()
    started = time.perf_counter()
    role = tenant_role(manifest.slug)
    migrations = discover(TENANT_MIGRATIONS)
    target_committed = False
    try:
        async with admin_transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('odr-onboard'), hashtext($1))", manifest.slug)
            existing = await conn.fetchrow("SELECT schema_version, cluster FROM odr.tenants WHERE slug = $1", manifest.slug)
            if existing is not None:
                return OnboardResult(
                    slug=manifest.slug,
                    created=False,
                    schema=role,
                    schema_version=existing["schema_version"],
                    nodes=0,
                    milliseconds=(time.perf_counter() - started) * 1000,
                    cluster=existing["cluster"],
                )
            if not await conn.fetchval("SELECT 1 FROM odr.clusters WHERE name = $1", cluster):
                raise OnboardingError(f"cluster: no cluster named {cluster!r} (odr cluster list)")
            if engine.RUNTIME_LOGIN is None:
                raise RuntimeError("onboarding needs the platform's database connection (engine.connect)")
            if cluster == PRIMARY:
                await _create_schema(conn, manifest, migrations, runtime_login=engine.RUNTIME_LOGIN, actor=actor)
                await _register(conn, manifest, migrations, host=host, actor=actor, demo=demo, cluster=cluster)
            else:
                async with admin_transaction(cluster) as tconn:
                    await _create_schema(tconn, manifest, migrations, runtime_login=await clusters.runtime_login(cluster), actor=actor)
                    await _register(conn, manifest, migrations, host=host, actor=actor, demo=demo, cluster=cluster)
                target_committed = True
    except BaseException:
        if target_committed:  # the registry's commit failed after the tenant's side committed
            async with admin_transaction(cluster) as tconn:
                await drop_schema_and_roles(tconn, manifest.slug)
        raise
    clusters.forget_placement(manifest.slug)
    log.info("tenant %s onboarded on cluster %s (%d nodes)", manifest.slug, cluster, len(manifest.nodes))
    return OnboardResult(
        slug=manifest.slug,
        created=True,
        schema=role,
        schema_version=latest(migrations),
        nodes=len(manifest.nodes),
        milliseconds=(time.perf_counter() - started) * 1000,
        cluster=cluster,
    )


async def _register(conn, manifest: Manifest, migrations, *, host: PluginHost, actor: str, demo: bool, cluster: str) -> None:
    """The registry row, plugin choices and demo accounts, on the primary's administration transaction."""
    role = tenant_role(manifest.slug)
    await conn.execute(
        """INSERT INTO odr.tenants (slug, name, name_en, schema_name, role_name, schema_version, migrated_at, manifest, cluster)
           VALUES ($1, $2, $3, $4, $4, $5, now(), $6, $7)""",
        manifest.slug,
        manifest.name,
        manifest.name_en,
        role,
        latest(migrations),
        msgspec.json.encode(manifest).decode(),
        cluster,
    )
    paths = manifest.paths()
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


async def offboard(slug: str) -> bool:
    """Drop a tenant's schema, roles and registry row (tests and benchmarks): one transaction on the
    primary; for a tenant on another cluster, its schema and roles there in a second one first."""
    tenant_role(slug)
    async with admin_transaction() as conn:
        where = await conn.fetchval("DELETE FROM odr.tenants WHERE slug = $1 RETURNING cluster", slug)
        if where is None:
            return False
        await conn.execute("DELETE FROM odr.accounts WHERE tenant = $1", slug)
        if where != PRIMARY:
            async with admin_transaction(where) as tconn:
                await drop_schema_and_roles(tconn, slug)
        await drop_schema_and_roles(conn, slug)
    clusters.forget_placement(slug)
    return True
