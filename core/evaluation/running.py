"""Running an evaluation (Art. 20-21) and the Art. 22(3) exit proposals that follow it; the contract is
:mod:`core.evaluation.service`'s.
"""

from __future__ import annotations

import datetime as dt
import operator
import time
import uuid

import msgspec

from core.api.backpressure import expensive_slot
from core.api.errors import Conflict, NotFound
from core.auth.principal import Principal
from core.db.engine import tenant_read, tenant_transaction
from core.enterprises.common import FieldError
from core.evaluation import schemas as S
from core.evaluation.access import parse_id, require_province_admin
from core.evaluation.periods import MONTHS, PERIOD_COLUMNS, TZ, add_months, day_start
from core.evaluation.reading import load_evaluation
from core.evaluation.scoring import NodeScorer, rank_within_class, rate, unit_indicators
from core.evaluation.sql import RESULT_COLUMNS, UNIT_INDICATORS_SQL, WORK_MEM
from core.runtime import Platform


async def run_evaluation(
    platform: Platform, tenant: str, principal: Principal, period_id: str, settings: S.EvaluationSettings
) -> S.Evaluation:
    """Run an evaluation of the period (see :func:`_run_evaluation`), as expensive work of the province
    (:func:`~core.api.backpressure.expensive_slot`: 503 with Retry-After when its share is running)."""
    require_province_admin(principal, tenant)
    async with expensive_slot(platform.settings, tenant, "evaluation run"):
        return await _run_evaluation(platform, tenant, principal, period_id, settings)


async def _run_evaluation(
    platform: Platform, tenant: str, principal: Principal, period_id: str, settings: S.EvaluationSettings
) -> S.Evaluation:
    pid = parse_id("period", period_id)
    await platform.tenant(tenant)
    started_at = dt.datetime.now(dt.timezone.utc)
    async with tenant_transaction(tenant) as conn:
        period = await conn.fetchrow(f"SELECT {PERIOD_COLUMNS} FROM evaluation_periods WHERE id = $1 FOR UPDATE", pid)
        if period is None:
            raise NotFound("evaluation period not found")
        if period["status"] == "closed":
            raise Conflict(f"period {period['label']} is closed: its result is kept; reproduce it instead",
                           ["reproduce"])
        if period["starts_on"] > dt.datetime.now(TZ).date():
            raise FieldError("period", f"period {period['label']} has not started yet", 409)
        kind = S.PeriodKind(period["kind"])
        start, end = day_start(period["starts_on"]), day_start(period["ends_on"] + dt.timedelta(days=1))
        previous_start = day_start(add_months(period["starts_on"], -MONTHS[kind]))
        await conn.execute(f"SELECT set_config('work_mem', '{WORK_MEM}', true), set_config('jit', 'off', true)")
        clock = time.perf_counter()
        phases: dict[str, float] = {}
        async with tenant_read(tenant, within=conn) as (reader, read_from):
            if reader is not conn:
                await reader.execute(f"SELECT set_config('work_mem', '{WORK_MEM}', true), set_config('jit', 'off', true)")
            rows = await reader.fetch(UNIT_INDICATORS_SQL, start, end, previous_start)
        phases["indicators_sql"], clock = time.perf_counter() - clock, time.perf_counter()

        scorers: dict[str, NodeScorer] = {}
        eligible: dict[str, list[int]] = {}
        all_indicators = [unit_indicators(row) for row in rows]
        for i, row in enumerate(rows):
            node_code = row["node_code"]
            if node_code not in scorers:
                scope, active = await platform.scope(tenant, node_code)
                scorers[node_code] = NodeScorer(platform, scope, active)
            if row["handled"] >= settings.min_handled:
                eligible.setdefault(node_code, []).append(i)
        scored: dict[int, tuple] = {}
        for node_code, indices in eligible.items():  # one batch per node (one round trip to an isolated plugin)
            scorer = scorers[node_code]
            answers = await platform.host.off_loop(scorer.active, scorer.score_many, [all_indicators[i] for i in indices])
            scored.update(zip(indices, answers))
        entries: list[dict] = []
        for i, row in enumerate(rows):
            node_code = row["node_code"]
            indicators = all_indicators[i]
            result, plugin, failure = scored.get(i, (None, None, None))
            score = result.score if result is not None else None
            entries.append({
                "enterprise_id": row["id"], "name": row["name"], "credit_code": row["credit_code"],
                "node_code": node_code, "node_path": row["node_path"], "enterprise_class": row["cls"],
                "handled": row["handled"], "with_feedback": row["with_feedback"], "settled": row["settled"],
                "settlement_rate": rate(row["settled"], row["with_feedback"]), "rated": row["rated"],
                "satisfaction": row["satisfaction"], "closed": row["closed"],
                "avg_cycle_days": row["avg_cycle_days"], "p90_cycle_days": row["p90_cycle_days"],
                "on_time_contact_rate": rate(row["contact_on_time"], row["contact_judged"]),
                "on_time_close_rate": rate(row["close_on_time"], row["close_judged"]),
                "breaches": row["breaches"], "amount_recovered": row["amount_recovered"],
                "complaints_previous_period": row["previous"],
                "indicators": msgspec.json.encode(indicators).decode(),
                "score": score,
                "score_parts": msgspec.json.encode(dict(result.parts)).decode() if result is not None else None,
                "score_failure": msgspec.json.encode(failure).decode() if failure else None,
                "plugin": plugin, "plugin_version": platform.host.infos[plugin].version if plugin else None,
                "class_rank": None, "class_size": None,
                "candidate": False,
                "below_threshold": score is not None and score < settings.exit_threshold,
            })
        phases["scoring"], clock = time.perf_counter() - clock, time.perf_counter()
        rank_within_class(entries)
        for e in entries:
            e["candidate"] = (e["class_rank"] is not None and e["class_rank"] <= settings.candidate_top
                              and e["score"] >= settings.candidate_min_score)

        phases["ranking"], clock = time.perf_counter() - clock, time.perf_counter()
        evaluation_id = uuid.uuid4()
        run_no = await conn.fetchval(
            "SELECT coalesce(max(run_no), 0) + 1 FROM evaluations WHERE period_id = $1", pid)
        await conn.execute(
            """INSERT INTO evaluations (id, period_id, run_no, settings, started_by, started_at, finished_at, units, scored,
                                          unscored)
               VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp(), $7, $8, $9)""",
            evaluation_id, pid, run_no, msgspec.json.encode(settings).decode(), principal.id, started_at,
            len(entries), sum(1 for e in entries if e["score"] is not None),
            sum(1 for e in entries if e["score"] is None and e["score_failure"] is not None),
        )
        for e in entries:
            e["evaluation_id"] = evaluation_id
        record = operator.itemgetter(*RESULT_COLUMNS)
        await conn.copy_records_to_table(
            "evaluation_results", records=[record(e) for e in entries],
            columns=list(RESULT_COLUMNS),
        )
        await conn.executemany(
            "INSERT INTO evaluation_policies (evaluation_id, node_code, plugin, plugin_version, config) VALUES ($1, $2, $3, $4, $5)",
            [(evaluation_id, code, *p) for code, scorer in scorers.items() for p in scorer.policies()],
        )
        phases["storing"], clock = time.perf_counter() - clock, time.perf_counter()
        raised = await _propose_exits(conn, principal, period, evaluation_id, settings)
        view = await load_evaluation(conn, evaluation_id, platform.host)
        phases["proposals_and_summary"], clock = time.perf_counter() - clock, time.perf_counter()
    phases["commit"] = time.perf_counter() - clock
    view.proposals_raised = raised
    view.phase_seconds = {k: round(v, 3) for k, v in phases.items()}
    view.read_from = read_from
    return view


async def _propose_exits(conn, principal: Principal, period, evaluation_id: uuid.UUID,
                         settings: S.EvaluationSettings) -> int:
    """Art. 22(3) proposals for units low in ``exit_consecutive_periods`` contiguous periods; their number."""
    needed = settings.exit_consecutive_periods - 1
    chain: list[uuid.UUID] = []
    labels = [period["label"]]
    if needed:
        earlier = await conn.fetch(
            """SELECT p.label, p.starts_on, p.ends_on,
                      coalesce(p.final_evaluation_id,
                               (SELECT id FROM evaluations e WHERE e.period_id = p.id ORDER BY run_no DESC LIMIT 1)) AS result
               FROM evaluation_periods p WHERE p.kind = $1 AND p.starts_on < $2 ORDER BY p.starts_on DESC LIMIT $3""",
            period["kind"], period["starts_on"], needed,
        )
        expected_end = period["starts_on"] - dt.timedelta(days=1)
        for p in earlier:
            if p["ends_on"] != expected_end or p["result"] is None:
                break
            chain.append(p["result"])
            labels.append(p["label"])
            expected_end = p["starts_on"] - dt.timedelta(days=1)
        if len(chain) < needed:
            return 0
    detail = (f"Art. 22(3): score below {settings.exit_threshold:g} in {settings.exit_consecutive_periods} consecutive "
              f"{period['kind']} period(s) ({', '.join(reversed(labels))})")
    status = await conn.execute(
        """INSERT INTO revocation_proposals (enterprise_id, ground, source, evaluation_id, detail, raised_by)
           SELECT r.enterprise_id, 'low_settlement_rate', 'evaluation', $1, $2, $3
           FROM evaluation_results r
           WHERE r.evaluation_id = $1 AND r.below_threshold
             AND (cardinality($4::uuid[]) = 0 OR r.enterprise_id IN (
                   SELECT enterprise_id FROM evaluation_results
                   WHERE evaluation_id = ANY ($4::uuid[]) AND below_threshold
                   GROUP BY enterprise_id HAVING count(*) = cardinality($4::uuid[])))
             AND NOT EXISTS (SELECT 1 FROM revocation_proposals x
                             WHERE x.enterprise_id = r.enterprise_id AND x.status = 'proposed'
                               AND x.ground = 'low_settlement_rate')""",
        evaluation_id, detail, principal.id, chain,
    )
    return int(status.split()[-1])
