"""Scoring replay: each ODR unit's period indicators scored and ranked by the current and the candidate formula.

Contract:

- :data:`INDICATORS_SQL` aggregates, in one query in the tenant schema, each unit's indicators over the
  complaints that entered ODR in the period (``$1`` node path, ``$2`` since, ``$3`` until);
  :func:`indicators_from_row` turns a row into :class:`odr_plugin_api.Indicators` (None: nothing handled).
- :func:`score_ranks` is the competition ranking by score (highest first, None unranked).
- :func:`replay_scoring` (a runner for :func:`core.policy_replay.common.rolled_back`): every unit's
  indicators, its current class, scores and ranks on both sides, the rank changes. Reads only.
"""

from __future__ import annotations

from typing import Any

from core.pluginhost.host import PluginUnavailable
from core.policy_replay.classification import classify, units_sql
from core.policy_replay.common import Hypothetical, ReplayRun, competition_ranks, entered_odr_between_sql
from core.policy_replay.schemas import ScoringReplayResult, UnitScoreReplay
from core.runtime import Node, Platform
from odr_plugin_api import Indicators

SCORING_NOTE = (
    "Scoring replay: each ODR unit's indicators over the period (complaints that entered ODR in it), its class"
    " under the current policy, scored by the current and the candidate formula; untrue-feedback findings are the"
    " spot checks' findings on the period's feedback; the previous period is not counted (None). Units that handled"
    " no complaint get no score."
)

INDICATORS_SQL = f"""
WITH units AS (
    {units_sql("('active', 'suspended', 'revoked')")}
), period AS (
    SELECT c.id, c.enterprise_id, c.entered_odr_at, c.contacted_at, c.contact_due, c.closed_at, c.close_due,
           c.feedback, c.settled, c.rating, c.breaches, c.feedback_untrue
    FROM complaints c
    WHERE c.enterprise_id IN (SELECT id FROM units) AND c.entered_odr_at IS NOT NULL
      {entered_odr_between_sql('      ')}
), fed AS (
    SELECT ev.complaint_id, min(ev.at) AS at FROM complaint_events ev
    WHERE ev.kind = 'feedback' AND ev.complaint_id IN (SELECT id FROM period)
    GROUP BY ev.complaint_id
)
SELECT u.id, u.name, u.node_code, u.unit_type, u.status, u.industry, u.employees, u.annual_revenue_cny, u.business_scope,
       count(p.id) AS handled,
       count(p.id) FILTER (WHERE p.feedback IS NOT NULL) AS with_feedback,
       count(p.id) FILTER (WHERE p.feedback IS NOT NULL AND p.settled) AS settled,
       avg(p.rating)::float8 AS satisfaction,
       (avg(extract(epoch FROM coalesce(p.closed_at, f.at) - p.entered_odr_at))
            FILTER (WHERE coalesce(p.closed_at, f.at) IS NOT NULL) / 86400.0)::float8 AS avg_cycle_days,
       count(p.id) FILTER (WHERE p.contacted_at IS NOT NULL) AS contacted,
       count(p.id) FILTER (WHERE p.contacted_at <= p.contact_due) AS contacted_on_time,
       count(p.id) FILTER (WHERE p.closed_at IS NOT NULL) AS closed,
       count(p.id) FILTER (WHERE p.closed_at <= p.close_due) AS closed_on_time,
       coalesce(sum(coalesce(array_length(p.breaches, 1), 0)), 0)::int AS breaches,
       count(p.id) FILTER (WHERE p.feedback_untrue) AS untrue_feedback
FROM units u
LEFT JOIN period p ON p.enterprise_id = u.id
LEFT JOIN fed f ON f.complaint_id = p.id
GROUP BY u.id, u.name, u.node_code, u.unit_type, u.status, u.industry, u.employees, u.annual_revenue_cny, u.business_scope
ORDER BY u.name, u.id
"""


def _rate(part: int, whole: int) -> float:
    """A rate for :class:`Indicators` (which wants a number): 0.0 without a denominator."""
    return part / whole if whole else 0.0


def indicators_from_row(row, enterprise_class: str | None) -> Indicators | None:
    """One unit's period indicators from a row of :data:`INDICATORS_SQL`; None when it handled nothing."""
    if not row["handled"]:
        return None
    return Indicators(
        handled=row["handled"],
        settlement_rate=_rate(row["settled"], row["with_feedback"]),
        satisfaction=row["satisfaction"],
        avg_cycle_days=row["avg_cycle_days"],
        on_time_contact_rate=_rate(row["contacted_on_time"], row["contacted"]),
        on_time_close_rate=_rate(row["closed_on_time"], row["closed"]),
        breaches=row["breaches"],
        untrue_feedback_findings=row["untrue_feedback"],
        enterprise_class=enterprise_class,
    )


def _score(platform: Platform, side: Hypothetical, node: Node, indicators: Indicators | None):
    """(score result, formula) under ``side``; (None, None) without indicators or an active formula."""
    if indicators is None:
        return None, None
    scope, active = side.scope(node)
    try:
        return platform.host.call_first("odr_score_enterprise", active=active, scope=scope, indicators=indicators)
    except PluginUnavailable:
        return None, None


def score_ranks(scores: dict[Any, float | None]) -> dict[Any, int | None]:
    """Competition ranking (1, 1, 3) by score, highest first; None for no score."""
    ordered = sorted((v, k) for k, v in scores.items() if v is not None)
    ordered.reverse()
    ranks: dict[Any, int | None] = {k: None for k in scores}
    ranks.update(competition_ranks((k, v) for v, k in ordered))
    return ranks


async def replay_scoring(run: ReplayRun) -> ScoringReplayResult:
    platform = run.platform
    rows = await run.conn.fetch(INDICATORS_SQL, run.path, run.since, run.until)
    entries = []
    for row in rows:
        where = run.nodes.get(row["node_code"])
        if where is None or (row["status"] == "revoked" and not row["handled"]):
            continue
        cls = classify(platform, run.current, where, row)
        indicators = indicators_from_row(row, cls["code"] if cls else None)
        cur, cur_formula = _score(platform, run.current, where, indicators)
        cand, cand_formula = _score(platform, run.hypo, where, indicators)
        entries.append((row, cls, indicators, cur, cur_formula, cand, cand_formula))
    cur_ranks = score_ranks({e[0]["id"]: e[3].score if e[3] else None for e in entries})
    cand_ranks = score_ranks({e[0]["id"]: e[5].score if e[5] else None for e in entries})
    units = []
    for row, cls, indicators, cur, cur_formula, cand, cand_formula in entries:
        cr, xr = cur_ranks[row["id"]], cand_ranks[row["id"]]
        units.append(
            UnitScoreReplay(
                enterprise_id=str(row["id"]),
                name=row["name"],
                node_code=row["node_code"],
                status=row["status"],
                enterprise_class=cls["code"] if cls else None,
                indicators=indicators,
                current_formula=cur_formula,
                current_score=cur.score if cur else None,
                current_parts=dict(cur.parts) if cur else None,
                candidate_formula=cand_formula,
                candidate_score=cand.score if cand else None,
                candidate_parts=dict(cand.parts) if cand else None,
                current_rank=cr,
                candidate_rank=xr,
                rank_change=(cr - xr) if cr is not None and xr is not None else None,
            )
        )
    units.sort(key=lambda u: (u.current_rank is None, u.current_rank or 0, u.candidate_rank is None,
                              u.candidate_rank or 0, u.name))
    return ScoringReplayResult(
        **run.header(SCORING_NOTE),
        current_formulas=sorted({u.current_formula for u in units if u.current_formula}),
        candidate_formulas=sorted({u.candidate_formula for u in units if u.candidate_formula}),
        units=units,
        rank_changes=sum(1 for u in units if u.current_rank != u.candidate_rank),
    )
