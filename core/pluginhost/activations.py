"""Plugin activation per tenant and jurisdiction node, with inheritance, and the effective policy.

Rules:
- Defaults are active everywhere unless a node deactivates them, which it may only while another plugin
  of the family stays active there and everywhere below (a node left without a calendar, a deadline
  policy or a standing check could not take a complaint: such a save is refused, 409, naming the family).
  Any other plugin is active only where a node, or an ancestor, activates it.
- The record nearest the node wins (node overrides city overrides province).
- For an exclusive family at most one non-default plugin may be active at any node; a save that would
  break this anywhere in the node's subtree is refused with the conflicting plugins named.
- Configuration is validated against the plugin's config Struct before save; the effective config is
  the nearest saved one, or the Struct's defaults.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import msgspec

from core.pluginhost.host import PluginHost
from odr_plugin_api import Scope
from odr_plugin_api.types import EXCLUSIVE_FAMILIES


class Activation(msgspec.Struct, frozen=True, kw_only=True):
    node_code: str
    plugin: str
    active: bool
    config: dict[str, Any] | None = None
    updated_by: str = ""
    updated_at: dt.datetime | None = None


class EffectiveChoice(msgspec.Struct, frozen=True, kw_only=True):
    plugin: str
    title: str
    families: list[str]
    active: bool
    default: bool
    source: str
    """``"default"`` (nothing saved on the path) or the code of the node whose record decides."""
    config: dict[str, Any] | None = None


class EffectivePolicy(msgspec.Struct, frozen=True, kw_only=True):
    tenant: str
    node_path: tuple[str, ...]
    choices: list[EffectiveChoice]

    @property
    def active(self) -> frozenset[str]:
        return frozenset(c.plugin for c in self.choices if c.active)


class ActivationConflict(ValueError):
    pass


def effective_policy(host: PluginHost, tenant: str, node_path: tuple[str, ...], activations: list[Activation]) -> EffectivePolicy:
    by_node: dict[str, list[Activation]] = {}
    for a in activations:
        by_node.setdefault(a.node_code, []).append(a)
    state: dict[str, tuple[bool, dict | None, str]] = {
        name: (info.default, None, "default") for name, info in host.infos.items()
    }
    for code in node_path:
        for a in by_node.get(code, ()):
            if a.plugin in state:
                state[a.plugin] = (a.active, a.config, code)
    choices = []
    for name, (active, config, source) in sorted(state.items()):
        info = host.infos[name]
        choices.append(
            EffectiveChoice(
                plugin=name,
                title=info.title,
                families=[f.value for f in info.families],
                active=active,
                default=info.default,
                source=source,
                config=msgspec.to_builtins(host.decode_config(name, config)) if info.config else None,
            )
        )
    return EffectivePolicy(tenant=tenant, node_path=node_path, choices=choices)


def conflicts(host: PluginHost, active: frozenset[str]) -> list[str]:
    """Messages for every exclusive family with more than one active non-default plugin."""
    out = []
    for family in sorted(EXCLUSIVE_FAMILIES, key=lambda f: f.value):
        deciders = sorted(
            n for n in active if n in host.infos and not host.infos[n].default and family in host.infos[n].families
        )
        if len(deciders) > 1:
            out.append(f"{family.value}: only one plugin may decide, but {', '.join(deciders)} would all be active")
    return out


def uncovered(host: PluginHost, active: frozenset[str]) -> list[str]:
    """Messages for every family that has a built-in default but no active plugin in ``active``."""
    out = []
    for family in sorted({f for i in host.infos.values() if i.default for f in i.families}, key=lambda f: f.value):
        if not any(n in host.infos and family in host.infos[n].families for n in active):
            defaults = sorted(n for n, i in host.infos.items() if i.default and family in i.families)
            out.append(f"{family.value}: no plugin would be active (keep {', '.join(defaults)} or activate another first)")
    return out


def make_scope(host: PluginHost, policy: EffectivePolicy) -> Scope:
    configs = {}
    for c in policy.choices:
        if c.active and c.config is not None:
            configs[c.plugin] = msgspec.convert(c.config, host.infos[c.plugin].config)
    return Scope(tenant=policy.tenant, node_path=policy.node_path, configs=configs)


ACTIVATIONS_SQL = (
    "SELECT node_code, plugin, active, config, updated_by, updated_at FROM odr.plugin_activations WHERE tenant = $1"
)


async def load_activations(conn: asyncpg.Connection, tenant: str) -> list[Activation]:
    return activations_from_rows(await conn.fetch(ACTIVATIONS_SQL, tenant))


def activations_from_rows(rows) -> list[Activation]:
    return [
        Activation(
            node_code=r["node_code"],
            plugin=r["plugin"],
            active=r["active"],
            config=msgspec.json.decode(r["config"]) if r["config"] else None,
            updated_by=r["updated_by"],
            updated_at=r["updated_at"],
        )
        for r in rows
    ]


async def save_activation(
    conn: asyncpg.Connection,
    host: PluginHost,
    *,
    tenant: str,
    node_code: str,
    plugin: str,
    active: bool,
    config: dict | None,
    actor: str,
    node_paths: dict[str, tuple[str, ...]],
) -> Activation:
    """Validate and upsert one activation inside the caller's platform transaction, with its audit row.

    Raises ``KeyError`` (unknown plugin or node), ``msgspec.ValidationError`` (bad config, naming the
    field) or :class:`ActivationConflict`; the caller's transaction then rolls back.
    """
    if plugin not in host.infos:
        raise KeyError(f"plugin {plugin!r} is not installed and loaded")
    if node_code not in node_paths:
        raise KeyError(f"node {node_code!r} is not in this tenant's jurisdiction tree")
    decoded = host.decode_config(plugin, config)
    stored = msgspec.to_builtins(decoded) if decoded is not None else None
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('odr-activation'), hashtext($1))", tenant)
    old = await conn.fetchrow(
        "SELECT active, config FROM odr.plugin_activations WHERE tenant=$1 AND node_code=$2 AND plugin=$3",
        tenant,
        node_code,
        plugin,
    )
    await conn.execute(
        """INSERT INTO odr.plugin_activations (tenant, node_code, plugin, active, config, updated_by, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, now())
           ON CONFLICT (tenant, node_code, plugin)
           DO UPDATE SET active = EXCLUDED.active, config = EXCLUDED.config,
                         updated_by = EXCLUDED.updated_by, updated_at = now()""",
        tenant,
        node_code,
        plugin,
        active,
        msgspec.json.encode(stored).decode() if stored is not None else None,
        actor,
    )
    new = {"active": active, "config": stored}
    await conn.execute(
        "INSERT INTO odr.plugin_activation_audit (tenant, node_code, plugin, actor, old, new) VALUES ($1,$2,$3,$4,$5,$6)",
        tenant,
        node_code,
        plugin,
        actor,
        msgspec.json.encode({"active": old["active"], "config": msgspec.json.decode(old["config"]) if old["config"] else None}).decode() if old else None,
        msgspec.json.encode(new).decode(),
    )
    activations = await load_activations(conn, tenant)
    prefix = node_paths[node_code]
    touched = {node_code} | {a.node_code for a in activations if node_paths.get(a.node_code, ())[: len(prefix)] == prefix}
    for code in sorted(touched):
        active_there = effective_policy(host, tenant, node_paths[code], activations).active
        where = "" if code == node_code else f" at node {code}"
        if problems := conflicts(host, active_there):
            raise ActivationConflict("; ".join(problems) + where + ". Deactivate the other plugin first.")
        if problems := uncovered(host, active_there):
            raise ActivationConflict("; ".join(problems) + where + ".")
    return Activation(node_code=node_code, plugin=plugin, active=active, config=stored, updated_by=actor)
