"""Reading evaluation runs: one run with its summary and scoring policies, the runs of a period, and a
run's results per unit (paged, filtered by node, class, name or credit code); bureau roles only.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from core.api.errors import NotFound
from core.auth.principal import Principal
from core.db.engine import tenant_transaction
from core.enterprises.common import FieldError
from core.evaluation import schemas as S
from core.evaluation.access import parse_id, require_bureau
from core.evaluation.periods import PERIOD_COLUMNS, period_of
from core.evaluation.sql import CLASS_SUMMARY_SQL
from core.pluginhost.host import PluginHost
from core.runtime import Node, Platform
from odr_plugin_api.secrets import mask_config


RESULT_READ = """enterprise_id, name, credit_code, node_code, enterprise_class, handled, with_feedback, settled,
    settlement_rate, rated, satisfaction, closed, avg_cycle_days, p90_cycle_days, on_time_contact_rate,
    on_time_close_rate, breaches, amount_recovered, complaints_previous_period, score, score_parts, score_failure, plugin,
    plugin_version, class_rank, class_size, candidate, below_threshold,
    coalesce((indicators->>'untrue_feedback_findings')::int, 0) AS untrue_feedback_findings"""


async def load_evaluation(conn, evaluation_id: uuid.UUID, host: PluginHost) -> S.Evaluation:
    """The run as shown: the configurations used per node with their secret fields masked (``host``
    knows which fields are secret; the stored ones stay whole for a reproduction)."""
    row = await conn.fetchrow("SELECT * FROM evaluations WHERE id = $1", evaluation_id)
    if row is None:
        raise NotFound("evaluation not found")
    period = await conn.fetchrow(f"SELECT {PERIOD_COLUMNS} FROM evaluation_periods WHERE id = $1", row["period_id"])
    policies = await conn.fetch(
        "SELECT node_code, plugin, plugin_version, config FROM evaluation_policies WHERE evaluation_id = $1 ORDER BY 1, 2",
        evaluation_id)
    classes = await conn.fetch(CLASS_SUMMARY_SQL, evaluation_id)
    return S.Evaluation(
        id=str(row["id"]), period=period_of(period), run_no=row["run_no"],
        settings=msgspec.json.decode(row["settings"], type=S.EvaluationSettings),
        started_by=row["started_by"], started_at=row["started_at"], finished_at=row["finished_at"],
        units=row["units"], scored=row["scored"], published_at=row["published_at"],
        policies=[{"node_code": p["node_code"], "plugin": p["plugin"], "plugin_version": p["plugin_version"],
                   "config": _shown_config(host, p["plugin"], p["config"])} for p in policies],
        classes=[S.ClassSummary(**dict(c)) for c in classes],
        unscored=row["unscored"],
        unscored_accepted=S.UnscoredAccepted(by=row["unscored_accepted_by"], at=row["unscored_accepted_at"],
                                             reason=row["unscored_accepted_reason"] or "")
        if row["unscored_accepted_by"] else None,
    )


def _shown_config(host: PluginHost, plugin: str, raw: str | None) -> dict | None:
    config = msgspec.json.decode(raw) if raw else None
    info = host.infos.get(plugin)
    return mask_config(info.config, config) if info is not None else config


async def get_evaluation(platform: Platform, tenant: str, principal: Principal, evaluation_id: str) -> S.Evaluation:
    require_bureau(principal, tenant)
    eid = parse_id("evaluation", evaluation_id)
    await platform.tenant(tenant)
    async with tenant_transaction(tenant) as conn:
        return await load_evaluation(conn, eid, platform.host)


async def list_evaluations(platform: Platform, tenant: str, principal: Principal, period_id: str) -> list[dict]:
    require_bureau(principal, tenant)
    pid = parse_id("period", period_id)
    await platform.tenant(tenant)
    async with tenant_transaction(tenant) as conn:
        rows = await conn.fetch(
            """SELECT id, run_no, started_by, started_at, finished_at, units, scored, unscored, published_at
               FROM evaluations WHERE period_id = $1 ORDER BY run_no""", pid)
    return [{**dict(r), "id": str(r["id"])} for r in rows]


def _result(row, nodes: dict[str, Node]) -> S.Result:
    values = dict(row)
    values["enterprise_id"] = str(values["enterprise_id"])
    values["amount_recovered"] = float(values["amount_recovered"])
    values["score_parts"] = msgspec.json.decode(values["score_parts"]) if values["score_parts"] else None
    values["score_failure"] = msgspec.json.decode(values["score_failure"]) if values["score_failure"] else None
    node = nodes.get(row["node_code"])
    return S.Result(node_name=node.name if node else row["node_code"], **values)


def result_filters(nodes: dict[str, Node], *, start: int, node: str | None, cls: str | None, q: str | None
                   ) -> tuple[str, list[Any]]:
    """SQL conditions (after ``evaluation_id = $1``) for a node subtree, a class and a name/credit-code search."""
    where, args = [], []
    if node:
        n = nodes.get(node)
        if n is None:
            raise FieldError("node", f"unknown jurisdiction node {node!r}")
        args.append("/".join(n.path))
        where.append(f"(node_path = ${start + len(args)} OR node_path LIKE ${start + len(args)} || '/%')")
    if cls:
        args.append(cls)
        where.append(f"coalesce(enterprise_class, '') = ${start + len(args)}")
    if q:
        args.append(q.strip())
        where.append(f"(strpos(name, ${start + len(args)}) > 0 OR credit_code = upper(${start + len(args)}))")
    return "".join(f" AND {w}" for w in where), args


async def results(platform: Platform, tenant: str, principal: Principal, evaluation_id: str, *, offset: int,
                  limit: int, node: str | None, cls: str | None, q: str | None) -> S.ResultPage:
    require_bureau(principal, tenant)
    eid = parse_id("evaluation", evaluation_id)
    nodes = await platform.nodes(tenant)
    where, args = result_filters(nodes, start=1, node=node, cls=cls, q=q)
    async with tenant_transaction(tenant) as conn:
        if not await conn.fetchval("SELECT 1 FROM evaluations WHERE id = $1", eid):
            raise NotFound("evaluation not found")
        total = await conn.fetchval(f"SELECT count(*) FROM evaluation_results WHERE evaluation_id = $1{where}", eid, *args)
        rows = await conn.fetch(
            f"""SELECT {RESULT_READ} FROM evaluation_results WHERE evaluation_id = $1{where}
                ORDER BY coalesce(enterprise_class, '') = '', enterprise_class, class_rank NULLS LAST, name, enterprise_id
                OFFSET {offset} LIMIT {limit}""", eid, *args)
    return S.ResultPage(evaluation_id=str(eid), total=total, offset=offset, limit=limit,
                        results=[_result(r, nodes) for r in rows])
