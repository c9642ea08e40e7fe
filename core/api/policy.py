"""Jurisdictions and plugin policy per node: effective policy with sources, toggles, audit.

Secret configuration fields (``odr_plugin_api.Secret``) are write-only: every answer here shows them
as ``SECRET_MASK`` when set and ``""`` when empty (:func:`core.pluginhost.activations.masked_policy`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.params import FromPath, JSONBody

from core.api.access import bureau_node, tenant_member
from core.api.errors import Forbidden
from core.auth.principal import POLICY_ROLES, Principal, Role
from core.db.engine import platform_transaction
from core.notifications.outbound import check_config
from core.pluginhost.activations import SHOWN_CONFIG, EffectivePolicy, masked_audit_config, masked_policy, save_activation
from core.runtime import Node
from odr_plugin_api import SECRET_MASK, DayInfo


class ActivationChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    active: bool
    config: Annotated[dict[str, Any] | None, msgspec.Meta(description=(
        "The plugin's configuration (validated against its config Struct; missing fields take their defaults)."
        f" A secret field left out or sent as {SECRET_MASK!r} keeps the value in force; '' clears it."))] = None


class AuditEntry(msgspec.Struct, kw_only=True):
    node_code: str
    plugin: str
    actor: str
    at: dt.datetime
    old: Annotated[dict | None, msgspec.Meta(description=(
        "`{active, config}` before the change; secret fields as " f"{SECRET_MASK!r} (set) or '' (empty), never a value"))]
    new: Annotated[dict | None, msgspec.Meta(description=(
        "`{active, config, secrets_changed?}` after it: secrets masked the same way; `secrets_changed` names the"
        " secret fields whose value changed"))]


async def shown_policy(platform, tenant: str, n: Node) -> EffectivePolicy:
    """The effective policy at ``n`` as answered: secrets masked, with the health records of the
    plugins that failed at ``n`` or below in this process (circuit breaker, last reason)."""
    policy = masked_policy(platform.host, await platform.policy(tenant, n.code))
    below = {c for c, x in (await platform.nodes(tenant)).items() if x.path[: len(n.path)] == n.path}
    return msgspec.structs.replace(policy, health=platform.host.health.within(tenant, below))


class PolicyController(Controller):
    path = "/api/tenants/{tenant:str}"
    tags = ["jurisdictions and policy"]

    @get("/jurisdictions")
    async def jurisdictions(self, request: Request[Principal, Any, Any], tenant: FromPath[str]) -> list[Node]:
        """The jurisdiction nodes the caller may act on (bureau roles: their subtree)."""
        platform, principal = await tenant_member(request, tenant)
        nodes = (await platform.nodes(tenant)).values()
        if principal.role not in (Role.PROVINCE_ADMIN, Role.BUREAU_OFFICER, Role.OFFICE_HEAD):
            raise Forbidden("bureau roles only")
        return sorted((n for n in nodes if principal.covers(n.path)), key=lambda n: n.path)

    @get("/policy/{node:str}")
    async def effective(self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: FromPath[str]) -> EffectivePolicy:
        """Every plugin's state at ``node`` and where it comes from (``default`` or a node code)."""
        platform, _, n = await bureau_node(request, tenant, node)
        return await shown_policy(platform, tenant, n)

    @put("/policy/{node:str}/plugins/{plugin:str}")
    async def change(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: FromPath[str], plugin: FromPath[str], data: JSONBody[ActivationChange]
    ) -> EffectivePolicy:
        """Activate, configure or deactivate a plugin at ``node`` (inherited by its subtree)."""
        platform, principal, n = await bureau_node(request, tenant, node, POLICY_ROLES)
        node_paths = {c: x.path for c, x in (await platform.nodes(tenant)).items()}
        try:
            if data.config is not None and plugin in platform.host.infos:
                # a channel's destination must not resolve to an internal address (checked before the
                # transaction: DNS may take a moment)
                await check_config(platform.outbound, platform.host.infos[plugin].config,
                                   platform.host.decode_config(plugin, data.config))
            async with platform_transaction() as conn:
                await save_activation(
                    conn,
                    platform.host,
                    tenant=tenant,
                    node_code=n.code,
                    plugin=plugin,
                    active=data.active,
                    config=data.config,
                    actor=principal.username,
                    node_paths=node_paths,
                )
        except msgspec.ValidationError as exc:
            message = str(exc)  # msgspec names no path for the config object itself: then it is ``config``
            raise msgspec.ValidationError(message.replace("- at `$", "- at `$.config") if " - at `$" in message
                                          else f"{message} - at `$.config`") from None
        platform.forget_activations(tenant)
        invalidation = getattr(request.app.state, "policy_invalidation", None)
        if invalidation is not None:  # every other process forgets too (Valkey pub/sub; TTL otherwise)
            await invalidation.publish(tenant)
        return await shown_policy(platform, tenant, n)

    @get("/policy/{node:str}/audit")
    async def audit(self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: FromPath[str]) -> list[AuditEntry]:
        """Past toggles and configuration changes at ``node`` and below, newest first."""
        platform, _, n = await bureau_node(request, tenant, node)
        codes = [c for c, x in (await platform.nodes(tenant)).items() if x.path[: len(n.path)] == n.path]
        async with platform_transaction() as conn:
            rows = await conn.fetch(
                "SELECT node_code, plugin, actor, at, old, new FROM odr.plugin_activation_audit"
                " WHERE tenant = $1 AND node_code = ANY($2) ORDER BY id DESC LIMIT 500",
                tenant,
                codes,
            )
        host = platform.host
        return [
            AuditEntry(**{
                **dict(r),
                "old": masked_audit_config(host, r["plugin"], msgspec.json.decode(r["old"]) if r["old"] else None),
                "new": masked_audit_config(host, r["plugin"], msgspec.json.decode(r["new"]) if r["new"] else None),
            })
            for r in rows
        ]

    @get("/calendar/{node:str}/{day:date}")
    async def calendar_day(self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: FromPath[str], day: FromPath[dt.date]) -> DayInfo:
        """Whether ``day`` is a working day at ``node``, by the calendar plugins active there."""
        platform, _, n = await bureau_node(request, tenant, node)
        scope, active = await platform.scope(tenant, n.code)
        info, _ = await platform.host.off_loop(active, platform.host.call_first, "odr_calendar_day", active=active,
                                               scope=scope, day=day)
        return info
