"""The running platform in one process: settings, database, plugin host and the per-tenant caches.

One :class:`Platform` per process (each web worker, the timer worker, a CLI command). Caches hold only
non-personal, small data (tenant registry, jurisdiction trees, plugin activations); activations are
re-read at most ``ACTIVATION_TTL`` seconds after a change made in another process.
"""

from __future__ import annotations

import logging
import time

import msgspec

from core.db import engine as db
from core.db.embedded import EmbeddedPostgres
from core.pluginhost.activations import (
    ACTIVATIONS_SQL,
    EffectivePolicy,
    activations_from_rows,
    effective_policy,
    make_scope,
)
from core.notifications.outbound import Outbound
from core.pluginhost.host import PluginHost
from core.pluginhost.limits import PluginLimits
from core.settings import Settings
from odr_plugin_api import Scope

log = logging.getLogger(__name__)
ACTIVATION_TTL = 1.0


class TenantInfo(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    name: str
    name_en: str
    status: str
    schema_version: str | None


class Node(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    parent_code: str | None
    level: str
    name: str
    name_en: str
    path: tuple[str, ...]


class Platform:
    def __init__(self, settings: Settings | None = None, host: PluginHost | None = None) -> None:
        self.settings = settings or Settings.from_env()
        if host is None:
            host = PluginHost(self.settings.plugins_allow, trusted=self.settings.plugins_trusted,
                              limits=PluginLimits.from_settings(self.settings))
            host.load_entry_points()
        self.host = host
        self.embedded: EmbeddedPostgres | None = None
        self.started = False
        self._tenants: dict[str, TenantInfo] = {}
        self._nodes: dict[str, dict[str, Node]] = {}
        self._activations: dict[str, tuple[float, list]] = {}
        self._reloading: set[str] = set()
        self._calendars: dict[tuple, tuple[list | None, dict]] = {}
        self._policies: dict[tuple[str, str], tuple[list, EffectivePolicy]] = {}
        self._scopes: dict[int, tuple] = {}
        self.outbound = Outbound.from_settings(self.settings)
        """The checked outbound client every channel plugin sends through (ODR_OUTBOUND_ALLOW_HOSTS)."""

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, *, migrate: bool = True) -> None:
        if self.started:
            return
        url = self.settings.database_url
        if not url:
            self.embedded = EmbeddedPostgres(self.settings.data_path)
            url = self.embedded.start()
        await db.connect(self.settings, url)
        if migrate:
            from core.db.shared_schema import migrate_shared

            await migrate_shared()
            await self.record_plugins()
        self.started = True

    async def stop(self) -> None:
        self.host.close()
        await db.disconnect()
        if self.embedded is not None:
            self.embedded.stop()
        self.started = False

    async def record_plugins(self) -> None:
        """Write what this process discovered into ``odr.plugin_packages`` (the installed list)."""
        async with db.platform_transaction() as conn:
            for d in self.host.discovered.values():
                await conn.execute(
                    """INSERT INTO odr.plugin_packages (name, distribution, version, title, families, is_default, allowed, loaded, error, seen_at)
                       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9, now())
                       ON CONFLICT (name) DO UPDATE SET distribution=EXCLUDED.distribution, version=EXCLUDED.version,
                         title=EXCLUDED.title, families=EXCLUDED.families, is_default=EXCLUDED.is_default,
                         allowed=EXCLUDED.allowed, loaded=EXCLUDED.loaded, error=EXCLUDED.error, seen_at=now()""",
                    d.name,
                    d.distribution,
                    d.version,
                    d.info.title if d.info else "",
                    [f.value for f in d.info.families] if d.info else [],
                    bool(d.info and d.info.default),
                    d.allowed,
                    d.loaded,
                    d.error,
                )

    # -- tenants (fail closed) -------------------------------------------------------------------
    async def tenant(self, slug: str) -> TenantInfo:
        """The active tenant ``slug``; :class:`~core.db.engine.TenantNotFound` otherwise."""
        info = self._tenants.get(slug)
        if info is None:
            if not db.SLUG_RE.match(slug):
                raise db.TenantNotFound(slug)
            rows = await db.shared_fetch(
                "SELECT slug, name, name_en, status, schema_version FROM odr.tenants WHERE slug = $1", slug
            )
            row = rows[0] if rows else None
            if row is None:
                raise db.TenantNotFound(slug)
            info = TenantInfo(**dict(row))
            self._tenants[slug] = info
        if info.status != "active":
            raise db.TenantNotFound(slug)
        return info

    def forget_tenant(self, slug: str) -> None:
        self._tenants.pop(slug, None)
        self._nodes.pop(slug, None)
        self._activations.pop(slug, None)

    async def nodes(self, slug: str) -> dict[str, Node]:
        nodes = self._nodes.get(slug)
        if nodes is None:
            await self.tenant(slug)
            sql = "SELECT code, parent_code, level, name, name_en, path FROM jurisdictions"
            tx = db.ENGINE.current_transaction.get()
            if tx is not None and db.CURRENT_TENANT.get() == slug:
                rows = await tx.connection.fetch(sql)
            else:
                async with db.tenant_transaction(slug) as conn:
                    rows = await conn.fetch(sql)
            nodes = {
                r["code"]: Node(**{**dict(r), "path": tuple(r["path"].split("/"))}) for r in rows
            }
            self._nodes[slug] = nodes
        return nodes

    async def node(self, slug: str, code: str) -> Node:
        node = (await self.nodes(slug)).get(code)
        if node is None:
            raise KeyError(f"node {code!r} is not in tenant {slug!r}")
        return node

    # -- plugins per node ------------------------------------------------------------------------
    async def activations(self, slug: str) -> list:
        """The tenant's activation records, re-read at most ``ACTIVATION_TTL`` seconds after the last
        read. One re-read at a time: while it runs, other callers get the previous records. Records
        read again unchanged keep their list's identity, so the policies, scopes and calendars
        memoised on it stay valid."""
        cached = self._activations.get(slug)
        if cached is None or time.monotonic() - cached[0] > ACTIVATION_TTL:
            if cached is not None and slug in self._reloading:
                return cached[1]
            self._reloading.add(slug)
            try:
                rows = await db.shared_fetch(ACTIVATIONS_SQL, slug)  # callable inside a tenant transaction
            finally:
                self._reloading.discard(slug)
            fresh = activations_from_rows(rows)
            if cached is not None and fresh == cached[1]:
                fresh = cached[1]
            cached = (time.monotonic(), fresh)
            self._activations[slug] = cached
        return cached[1]

    def forget_activations(self, slug: str) -> None:
        self._activations.pop(slug, None)

    async def policy(self, slug: str, node_code: str) -> EffectivePolicy:
        node = await self.node(slug, node_code)
        activations = await self.activations(slug)
        cached = self._policies.get((slug, node_code))
        if cached is None or cached[0] is not activations:  # identity: re-read activations mean new ones
            cached = self._policies[(slug, node_code)] = (activations, effective_policy(self.host, slug, node.path, activations))
        return cached[1]

    async def scope(self, slug: str, node_code: str) -> tuple[Scope, frozenset[str]]:
        """The hook scope of a node and the plugins active there (memoised with the policy)."""
        policy = await self.policy(slug, node_code)
        cached = self._scopes.get(id(policy))
        if cached is None or cached[0] is not policy:
            cached = self._scopes[id(policy)] = (policy, make_scope(self.host, policy), policy.active)
            if len(self._scopes) > 4096:
                self._scopes.clear()
        return cached[1], cached[2]

    def calendar(self, scope: Scope, active: frozenset[str]):
        """``day -> DayInfo`` on the calendar plugins active in ``scope``, memoised until the tenant's
        activations are next re-read (so a toggle takes effect within ``ACTIVATION_TTL``)."""
        loaded = self._activations.get(scope.tenant)
        current = loaded[1] if loaded else None
        key = (scope.tenant, scope.node_path, active)
        cached = self._calendars.get(key)
        if cached is None or cached[0] is not current:  # identity: re-read activations mean new ones
            if len(self._calendars) > 2048:
                self._calendars.clear()
            cached = self._calendars[key] = (current, {}, {})
        memo = cached[1]
        host = self.host

        def day_info(day):
            info = memo.get(day)
            if info is None:
                info, _ = host.call_first("odr_calendar_day", active=active, scope=scope, day=day)
                memo[day] = info
            return info

        day_info.periods = cached[2]  # periods counted on this calendar (core.deadlines.counting.count_period)
        return day_info
