"""Plugin activation per tenant and jurisdiction node, with inheritance, and the effective policy.

Rules:
- Defaults are active everywhere unless a node deactivates them, which it may only while another plugin
  of the family stays active there and everywhere below (a node left without a calendar, a deadline
  policy or a standing check could not take a complaint: such a save is refused, 409, naming the family).
  Any other plugin is active only where a node, or an ancestor, activates it.
- The record nearest the node wins (node overrides city overrides province).
- For an exclusive family at most one non-default plugin may be active at any node; a save that would
  break this anywhere in the node's subtree is refused with the conflicting plugins named.
- Configuration is validated against the plugin's config Struct before save (strictly: ``"2"`` is no
  integer); the effective config is the nearest saved one, or the Struct's defaults.
- Before a non-default plugin is saved active, it is tried once with that configuration on the sample
  inputs of :func:`odr_plugin_api.samples.trial_inputs` (each of its hooks that has one); an exception
  or an answer out of contract refuses the save (:class:`ActivationTrialFailed`, 422 naming ``config``,
  with the plugin's error type and its message scrubbed of digit runs and e-mail addresses).
- Secret fields (``odr_plugin_api.Secret``) are write-only: a save that leaves one out, or sends
  ``SECRET_MASK``, keeps the value in force at the node (its own record's or the inherited one); the
  audit rows hold ``SECRET_MASK`` / ``""`` and the names of the secrets changed, never a value; what is
  shown (:func:`masked_policy`, :func:`masked_audit_config`) is masked. The hooks get the real values
  (:func:`make_scope`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import asyncpg
import msgspec

from core.pluginhost.calling import scrub
from core.pluginhost.health import PluginHealth
from core.pluginhost.host import PluginHost
from odr_plugin_api import SECRET_MASK, Scope
from odr_plugin_api.contracts import ContractViolation
from odr_plugin_api.samples import trial_inputs
from odr_plugin_api.secrets import changed_secrets, keep_secrets, mask_config, secret_fields
from odr_plugin_api.types import EXCLUSIVE_FAMILIES

SHOWN_CONFIG = (
    f"The configuration in force (defaults filled in). Secret fields (listed in `secrets`) are never shown:"
    f" {SECRET_MASK!r} when set, '' when empty."
)


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
    config: Annotated[dict[str, Any] | None, msgspec.Meta(description=SHOWN_CONFIG)] = None
    secrets: list[str] = []
    """The write-only fields of the plugin's configuration (shown masked; left out of a save they keep their value)."""


class EffectivePolicy(msgspec.Struct, frozen=True, kw_only=True):
    tenant: str
    node_path: tuple[str, ...]
    choices: list[EffectiveChoice]
    health: list[PluginHealth] = []
    """Filled in the API's answers: plugins that failed or overran their time budget at this node or
    below, in the process that answered (failures, overruns, circuit breaker state, last reason)."""

    @property
    def active(self) -> frozenset[str]:
        return frozenset(c.plugin for c in self.choices if c.active)


class ActivationConflict(ValueError):
    pass


class ActivationTrialFailed(ValueError):
    """The plugin failed when tried on sample inputs before activation; the message starts with
    ``config: `` and names the plugin, the hook and the error."""


def try_plugin(host: PluginHost, plugin: str, tenant: str, node_path: tuple[str, ...], config: Any) -> None:
    """Call each hook of ``plugin`` that has a trial input once, in a scope holding only its own decoded
    ``config``; :class:`ActivationTrialFailed` on an exception or an answer out of contract."""
    scope = Scope(tenant=tenant, node_path=node_path, configs={plugin: config} if config is not None else {})
    for hook, kwargs in trial_inputs().items():
        if not host.has_active_impl(hook, {plugin}):
            continue
        try:
            host.call_plugin(hook, plugin=plugin, scope=scope, **kwargs)
        except Exception as exc:
            detail = "; ".join(exc.problems) if isinstance(exc, ContractViolation) else str(exc)
            raise ActivationTrialFailed(
                f"config: plugin {plugin} failed when tried once with this configuration on a sample input of {hook}"
                f" ({type(exc).__name__}: {scrub(detail)[:300]}); it was not activated"
            ) from None


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
                secrets=sorted(secret_fields(info.config)),
            )
        )
    return EffectivePolicy(tenant=tenant, node_path=node_path, choices=choices)


def masked_policy(host: PluginHost, policy: EffectivePolicy) -> EffectivePolicy:
    """``policy`` as it may be shown to anyone: every secret configuration field masked."""
    return msgspec.structs.replace(policy, choices=[
        msgspec.structs.replace(c, config=mask_config(host.infos[c.plugin].config, c.config)) if c.secrets else c
        for c in policy.choices
    ])


def masked_audit_config(host: PluginHost, plugin: str, state: dict | None) -> dict | None:
    """An audit row's ``old`` / ``new`` (``{"active", "config", ...}``) with the loaded plugin's secrets
    masked: rows are written masked, and this covers rows written before that too (a plugin no longer
    loaded is shown as stored; shared migration 0003 masked the built-ins' older rows in place)."""
    if not state or not isinstance(state.get("config"), dict):
        return state
    info = host.infos.get(plugin)
    if info is not None:
        return {**state, "config": mask_config(info.config, state["config"])}
    return state


def conflicts(host: PluginHost, active: frozenset[str], policy: EffectivePolicy | None = None) -> list[str]:
    """Messages for every exclusive family with more than one active non-default plugin. With the
    node's ``policy`` each plugin is said to be set at this node or inherited from the node whose record
    decides, and the fix is named: an inherited one is switched off at this node (it stays in force
    above and elsewhere), one set here is deactivated here."""
    sources = {c.plugin: c.source for c in policy.choices} if policy is not None else {}
    node = policy.node_path[-1] if policy is not None else ""
    out = []
    for family in sorted(EXCLUSIVE_FAMILIES, key=lambda f: f.value):
        deciders = sorted(
            n for n in active if n in host.infos and not host.infos[n].default and family in host.infos[n].families
        )
        if len(deciders) <= 1:
            continue
        if not sources:
            out.append(f"{family.value}: only one plugin may decide, but {', '.join(deciders)} would all be active")
            continue
        named = [f"{n} ({'set at this node' if sources.get(n) == node else f'inherited from node {sources.get(n)}'})"
                 for n in deciders]
        fixes = [f"{n} is inherited from node {sources[n]}: switch it off at node {node}"
                 f" (PUT .../policy/{node}/plugins/{n} {{\"active\": false}}; it stays in force elsewhere)"
                 for n in deciders if sources.get(n) not in (node, None)]
        out.append(f"{family.value}: only one plugin may decide, but {', '.join(named)} would all be active at node"
                   f" {node}" + (". " + "; ".join(fixes) if fixes else ""))
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


async def config_in_force(conn: asyncpg.Connection, *, tenant: str, plugin: str, path: tuple[str, ...]) -> dict | None:
    """The stored configuration of ``plugin`` that decides at the node of ``path`` (its own record, else
    the nearest ancestor's), or None when nothing is saved on the path."""
    rows = await conn.fetch(
        "SELECT node_code, config FROM odr.plugin_activations WHERE tenant=$1 AND plugin=$2 AND node_code = ANY($3)",
        tenant, plugin, list(path),
    )
    by_node = {r["node_code"]: r["config"] for r in rows}
    for code in reversed(path):
        if code in by_node:
            return msgspec.json.decode(by_node[code]) if by_node[code] else None
    return None


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
    config_type = host.infos[plugin].config
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('odr-activation'), hashtext($1))", tenant)
    old = await conn.fetchrow(
        "SELECT active, config FROM odr.plugin_activations WHERE tenant=$1 AND node_code=$2 AND plugin=$3",
        tenant,
        node_code,
        plugin,
    )
    in_force = None
    if secret_fields(config_type):
        in_force = await config_in_force(conn, tenant=tenant, plugin=plugin, path=node_paths[node_code])
        if config is not None or active:
            config = keep_secrets(config_type, config or {}, in_force)
    decoded = host.decode_config(plugin, config)
    if active and not host.infos[plugin].default:
        try_plugin(host, plugin, tenant, node_paths[node_code], decoded)
    stored = msgspec.to_builtins(decoded) if decoded is not None else None
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
    new: dict[str, Any] = {"active": active, "config": mask_config(config_type, stored)}
    if changed := changed_secrets(config_type, in_force, stored):
        new["secrets_changed"] = changed
    old_state = None
    if old:
        old_state = {"active": old["active"], "config": mask_config(config_type, msgspec.json.decode(old["config"]) if old["config"] else None)}
    await conn.execute(
        "INSERT INTO odr.plugin_activation_audit (tenant, node_code, plugin, actor, old, new) VALUES ($1,$2,$3,$4,$5,$6)",
        tenant,
        node_code,
        plugin,
        actor,
        msgspec.json.encode(old_state).decode() if old_state else None,
        msgspec.json.encode(new).decode(),
    )
    activations = await load_activations(conn, tenant)
    prefix = node_paths[node_code]
    touched = {node_code} | {a.node_code for a in activations if node_paths.get(a.node_code, ())[: len(prefix)] == prefix}
    for code in sorted(touched):
        there = effective_policy(host, tenant, node_paths[code], activations)
        active_there = there.active
        where = "" if code == node_code else f" at node {code}"
        if problems := conflicts(host, active_there, there):
            raise ActivationConflict("; ".join(problems) + ". Deactivate the other plugin first.")
        if problems := uncovered(host, active_there):
            raise ActivationConflict("; ".join(problems) + where + ".")
    return Activation(node_code=node_code, plugin=plugin, active=active, config=stored, updated_by=actor)
