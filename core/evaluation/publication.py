"""Publishing an evaluation run (Art. 23: it closes its period with that run) and the published runs and
their results as the public pages show them, nothing personal.
"""

from __future__ import annotations

import logging

from core.api.errors import Conflict, NotFound
from core.auth.principal import Principal
from core.db.engine import tenant_transaction
from core.evaluation import schemas as S
from core.evaluation.access import parse_id, require_province_admin
from core.evaluation.reading import load_evaluation, result_filters
from core.enterprises.common import FieldError
from core.runtime import Platform

log = logging.getLogger(__name__)


async def publish(platform: Platform, tenant: str, principal: Principal, evaluation_id: str,
                  request: S.PublishRequest | None = None) -> S.Evaluation:
    """Close the run's period with this run as its result (if still open) and publish it (Art. 23).

    A run with units left unscored by a failing scoring plugin is refused (409, ``unscored``) unless
    ``request.accept_unscored`` with a ``reason``: that decision is stored with the run (who, when, why)
    and logged."""
    require_province_admin(principal, tenant)
    eid = parse_id("evaluation", evaluation_id)
    request = request or S.PublishRequest()
    async with tenant_transaction(tenant) as conn:
        row = await conn.fetchrow(
            """SELECT p.id, p.status, p.final_evaluation_id, e.published_at, e.unscored, e.unscored_accepted_by
               FROM evaluations e JOIN evaluation_periods p ON p.id = e.period_id WHERE e.id = $1 FOR UPDATE OF p""",
            eid)
        if row is None:
            raise NotFound("evaluation not found")
        if row["status"] == "closed" and row["final_evaluation_id"] != eid:
            raise Conflict("the period is closed with another run as its result; publish that one", ["reproduce"])
        if row["unscored"] and row["published_at"] is None and row["unscored_accepted_by"] is None:
            if not request.accept_unscored:
                raise Conflict(
                    f"{row['unscored']} unit(s) are unscored because their scoring plugin failed (each result's"
                    " score_failure says why): fix the plugin and run again, or publish with accept_unscored"
                    " and a reason", ["accept_unscored"])
            if not request.reason.strip():
                raise FieldError("reason", "say why the run may be published with unscored units")
            await conn.execute(
                """UPDATE evaluations SET unscored_accepted_by = $2, unscored_accepted_at = now(),
                       unscored_accepted_reason = $3 WHERE id = $1""", eid, principal.id, request.reason.strip())
            log.warning("evaluation %s published with %d unscored unit(s) by decision of %s", eid, row["unscored"],
                        principal.id)
        if row["status"] == "open":
            await conn.execute(
                """UPDATE evaluation_periods SET status = 'closed', final_evaluation_id = $2, closed_by = $3,
                       closed_at = now() WHERE id = $1""", row["id"], eid, principal.id)
        if row["published_at"] is None:
            await conn.execute("UPDATE evaluations SET published_at = now(), published_by = $2 WHERE id = $1",
                               eid, principal.id)
        return await load_evaluation(conn, eid, platform.host)


_PUBLISHED_SQL = """SELECT e.id, p.label, p.kind, p.starts_on, p.ends_on, e.published_at, e.units, e.scored
    FROM evaluations e JOIN evaluation_periods p ON p.id = e.period_id
    WHERE e.published_at IS NOT NULL AND ($1::uuid IS NULL OR e.id = $1)
    ORDER BY p.starts_on DESC, p.kind"""


def _public_evaluation(r) -> S.PublicEvaluation:
    return S.PublicEvaluation(id=str(r["id"]), period_label=r["label"], period_kind=S.PeriodKind(r["kind"]),
                              starts_on=r["starts_on"], ends_on=r["ends_on"], published_at=r["published_at"],
                              units=r["units"], scored=r["scored"])


async def published(platform: Platform, tenant: str) -> list[S.PublicEvaluation]:
    await platform.tenant(tenant)
    async with tenant_transaction(tenant) as conn:
        rows = await conn.fetch(_PUBLISHED_SQL, None)
    return [_public_evaluation(r) for r in rows]


async def published_results(platform: Platform, tenant: str, evaluation_id: str, *, offset: int, limit: int,
                            node: str | None, cls: str | None, q: str | None) -> S.PublicResultPage:
    eid = parse_id("evaluation", evaluation_id)
    nodes = await platform.nodes(tenant)
    where, args = result_filters(nodes, start=1, node=node, cls=cls, q=q)
    async with tenant_transaction(tenant) as conn:
        found = await conn.fetchrow(_PUBLISHED_SQL, eid)
        if found is None:
            raise NotFound("published evaluation not found")
        evaluation = _public_evaluation(found)
        total = await conn.fetchval(f"SELECT count(*) FROM evaluation_results WHERE evaluation_id = $1{where}", eid, *args)
        rows = await conn.fetch(
            f"""SELECT name, credit_code, node_path, enterprise_class, handled, settlement_rate, satisfaction,
                       avg_cycle_days, score, class_rank, class_size, candidate
                FROM evaluation_results WHERE evaluation_id = $1{where}
                ORDER BY coalesce(enterprise_class, '') = '', enterprise_class, class_rank NULLS LAST, name
                OFFSET {offset} LIMIT {limit}""", eid, *args)

    def district(path: str) -> str:
        names = [nodes[c].name for c in path.split("/") if c in nodes and nodes[c].level in ("city", "district")]
        return " ".join(names)

    return S.PublicResultPage(
        evaluation=evaluation, total=total, offset=offset, limit=limit,
        results=[S.PublicResult(name=r["name"], credit_code=r["credit_code"], district=district(r["node_path"]),
                                enterprise_class=r["enterprise_class"], handled=r["handled"],
                                settlement_rate=r["settlement_rate"], satisfaction=r["satisfaction"],
                                avg_cycle_days=r["avg_cycle_days"], score=r["score"], class_rank=r["class_rank"],
                                class_size=r["class_size"], candidate=r["candidate"]) for r in rows],
    )
