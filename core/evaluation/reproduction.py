"""Reproducing a stored evaluation run: its stored indicators scored again with the stored plugins and
configurations, read-only; the contract is :mod:`core.evaluation.service`'s.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core.api.backpressure import expensive_slot
from core.api.errors import NotFound
from core.auth.principal import Principal
from core.db.engine import tenant_transaction
from core.evaluation import schemas as S
from core.evaluation.access import parse_id, require_bureau
from core.pluginhost.host import PluginUnavailable
from core.runtime import Platform
from odr_plugin_api import Indicators, Scope


async def reproduce(platform: Platform, tenant: str, principal: Principal, evaluation_id: str) -> S.Reproduction:
    """Score the stored indicators again with the stored plugins and configurations; read-only. Expensive
    work of the province (:func:`~core.api.backpressure.expensive_slot`)."""
    require_bureau(principal, tenant)
    async with expensive_slot(platform.settings, tenant, "reproduction"):
        return await _reproduce(platform, tenant, principal, evaluation_id)


async def _reproduce(platform: Platform, tenant: str, principal: Principal, evaluation_id: str) -> S.Reproduction:
    eid = parse_id("evaluation", evaluation_id)
    await platform.tenant(tenant)
    host = platform.host
    async with tenant_transaction(tenant) as conn:
        if not await conn.fetchval("SELECT 1 FROM evaluations WHERE id = $1", eid):
            raise NotFound("evaluation not found")
        policies = {
            (p["node_code"], p["plugin"]): p
            for p in await conn.fetch(
                "SELECT node_code, plugin, plugin_version, config FROM evaluation_policies WHERE evaluation_id = $1", eid)
        }
        rows = await conn.fetch(
            """SELECT enterprise_id, node_code, node_path, indicators, score, score_parts, plugin
               FROM evaluation_results WHERE evaluation_id = $1 AND plugin IS NOT NULL""", eid)
        unscored = await conn.fetchval(
            """SELECT count(*) FROM evaluation_results
               WHERE evaluation_id = $1 AND score IS NULL AND score_failure IS NOT NULL""", eid)
    version_changes = sorted({
        f"{name}: run used {p['plugin_version']}, installed "
        f"{host.infos[name].version if name in host.infos else 'none'}"
        for (_, name), p in policies.items()
        if name not in host.infos or host.infos[name].version != p["plugin_version"]
    })
    differences: list[dict[str, Any]] = []
    different = 0
    configs: dict[tuple[str, str], Any] = {}
    for row in rows:
        key = (row["node_code"], row["plugin"])
        stored = policies.get(key)
        problem = None
        result = None
        if stored is None or row["plugin"] not in host.infos:
            problem = "plugin not installed" if stored is not None else "no stored policy"
        else:
            if key not in configs:
                raw = msgspec.json.decode(stored["config"]) if stored["config"] else None
                configs[key] = host.decode_config(row["plugin"], raw)
            scope = Scope(tenant=tenant, node_path=tuple(row["node_path"].split("/")), configs={row["plugin"]: configs[key]})
            indicators = msgspec.json.decode(row["indicators"], type=Indicators)
            try:
                result, _ = host.call_first("odr_score_enterprise", active=frozenset({row["plugin"]}), scope=scope,
                                              indicators=indicators)
            except PluginUnavailable:
                problem = "plugin gave no score"
        if result is not None:
            parts = dict(result.parts)
            if result.score != row["score"] or parts != msgspec.json.decode(row["score_parts"] or "{}"):
                problem = f"score {result.score} (stored {row['score']})"
        if problem:
            different += 1
            if len(differences) < 100:
                differences.append({"enterprise_id": str(row["enterprise_id"]), "plugin": row["plugin"],
                                    "problem": problem})
    return S.Reproduction(evaluation_id=str(eid), units=len(rows), identical=not different, differences=differences,
                          version_changes=version_changes, unscored=unscored)
