"""The evaluation's one aggregate query: every ODR unit of the province with its period indicators.

Read from ``complaint_facts`` (tenant migration 0004) inside the tenant schema; no complaint row leaves
the database. A complaint counts for the period in which it entered ODR (``$1`` <= entered_odr_at <
``$2``, instants); ``complaints_previous_period`` counts those that entered in the period of equal
kind just before (``$3`` <= entered_odr_at < ``$1``).

Per unit:
- ``handled``; ``with_feedback``; ``settled`` (with feedback and settled);
- ``rated``, ``satisfaction`` (mean rating 1-5);
- ``closed``, ``avg_cycle_days``, ``p90_cycle_days`` (entered ODR -> closed; continuous percentile);
- ``contact_judged`` / ``contact_on_time`` and ``close_judged`` / ``close_on_time`` (complaints with a
  verdict on the contact / close clock, and those in time);
- ``breaches`` (deadline breaches recorded), ``amount_recovered``;
- ``untrue_feedback`` (complaints whose feedback a spot check found seriously untrue, Art. 22(2)).

Units: active and suspended ones (revoked units have left ODR), with their current class.

Plan: the plain aggregates are one hash aggregate over the period's facts (parallel where PostgreSQL can);
the 90th percentile is a separate pass over ``complaint_facts_unit_cycle_idx``, which yields each unit's
cycles in order, so no sort of millions of rows is needed. Run with a ``work_mem`` that holds one hash
entry per unit (:data:`WORK_MEM`).
"""

from __future__ import annotations

UNIT_INDICATORS_SQL = """
WITH agg AS (
    SELECT enterprise_id,
           count(*) AS handled,
           count(*) FILTER (WHERE fed) AS with_feedback,
           count(*) FILTER (WHERE fed AND settled) AS settled,
           count(rating) AS rated,
           avg(rating)::float8 AS satisfaction,
           count(cycle_seconds) AS closed,
           (avg(cycle_seconds) / 86400.0)::float8 AS avg_cycle_days,
           count(contact_late) AS contact_judged,
           count(*) FILTER (WHERE NOT contact_late) AS contact_on_time,
           count(close_late) AS close_judged,
           count(*) FILTER (WHERE NOT close_late) AS close_on_time,
           sum(breaches)::int AS breaches,
           coalesce(sum(amount_recovered_fen), 0)::numeric / 100 AS amount_recovered,
           count(*) FILTER (WHERE feedback_untrue) AS untrue_feedback
    FROM complaint_facts
    WHERE enterprise_id IS NOT NULL AND entered_odr_at >= $1 AND entered_odr_at < $2
    GROUP BY enterprise_id
), p90 AS (
    SELECT enterprise_id, (percentile_cont(0.9) WITHIN GROUP (ORDER BY cycle_seconds) / 86400.0)::float8 AS p90_cycle_days
    FROM complaint_facts
    WHERE cycle_seconds IS NOT NULL AND enterprise_id IS NOT NULL AND entered_odr_at >= $1 AND entered_odr_at < $2
    GROUP BY enterprise_id
), prev AS (
    SELECT enterprise_id, count(*) AS n
    FROM complaint_facts
    WHERE enterprise_id IS NOT NULL AND entered_odr_at >= $3 AND entered_odr_at < $1
    GROUP BY enterprise_id
)
SELECT e.id, e.name, e.credit_code, e.node_code, j.path AS node_path, e.classification->>'code' AS cls,
       coalesce(a.handled, 0) AS handled, coalesce(a.with_feedback, 0) AS with_feedback,
       coalesce(a.settled, 0) AS settled, coalesce(a.rated, 0) AS rated, a.satisfaction,
       coalesce(a.closed, 0) AS closed, a.avg_cycle_days, q.p90_cycle_days,
       coalesce(a.contact_judged, 0) AS contact_judged, coalesce(a.contact_on_time, 0) AS contact_on_time,
       coalesce(a.close_judged, 0) AS close_judged, coalesce(a.close_on_time, 0) AS close_on_time,
       coalesce(a.breaches, 0) AS breaches, coalesce(a.amount_recovered, 0) AS amount_recovered,
       coalesce(a.untrue_feedback, 0) AS untrue_feedback, coalesce(p.n, 0) AS previous
FROM enterprises e
JOIN jurisdictions j ON j.code = e.node_code
LEFT JOIN agg a ON a.enterprise_id = e.id
LEFT JOIN p90 q ON q.enterprise_id = e.id
LEFT JOIN prev p ON p.enterprise_id = e.id
WHERE e.status IN ('active', 'suspended')
"""

WORK_MEM = "128MB"
"""Per-transaction ``work_mem`` for the evaluation query (100,000 units hash in about 80 MB)."""

RESULT_COLUMNS = (
    "evaluation_id", "enterprise_id", "name", "credit_code", "node_code", "node_path", "enterprise_class",
    "handled", "with_feedback", "settled", "settlement_rate", "rated", "satisfaction", "closed", "avg_cycle_days",
    "p90_cycle_days", "on_time_contact_rate", "on_time_close_rate", "breaches", "amount_recovered",
    "complaints_previous_period", "indicators", "score", "score_parts", "score_failure", "plugin", "plugin_version", "class_rank",
    "class_size", "candidate", "below_threshold",
)

CLASS_SUMMARY_SQL = """
SELECT coalesce(enterprise_class, '') AS enterprise_class,
       count(*) AS units,
       count(score) AS scored,
       sum(handled)::int AS handled,
       sum(with_feedback)::int AS with_feedback,
       sum(settled)::int AS settled,
       round(sum(settled)::numeric / nullif(sum(with_feedback), 0), 4)::float8 AS settlement_rate,
       sum(rated)::int AS rated,
       round((sum(satisfaction * rated) / nullif(sum(rated), 0))::numeric, 2)::float8 AS satisfaction,
       sum(closed)::int AS closed,
       round((sum(avg_cycle_days * closed) / nullif(sum(closed), 0))::numeric, 2)::float8 AS avg_cycle_days,
       sum(breaches)::int AS breaches,
       sum(amount_recovered)::float8 AS amount_recovered,
       round(avg(score)::numeric, 2)::float8 AS avg_score,
       count(*) FILTER (WHERE candidate) AS candidates,
       count(*) FILTER (WHERE below_threshold) AS below_threshold
FROM evaluation_results
WHERE evaluation_id = $1
GROUP BY 1
ORDER BY coalesce(enterprise_class, '') = '', 1
"""
