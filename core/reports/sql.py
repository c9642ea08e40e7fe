"""The class table: the Art. 20 efficacy indicators per enterprise class (Jinshan's A/B/C table:
508 / 29 / 2 handled, 85 % / 95 % / 100 % settled, an average cycle of 7 days).

Complaints of ``complaint_facts`` in a node's subtree that entered ODR in the window, grouped by the
class of their ODR unit (``enterprise_class``; ``''`` for complaints whose unit has no class or that
have no unit), plus a total row. One scan: the facts are first grouped by (class, handling cycle in
whole minutes), which is at the same time the histogram the 90th percentile is read from and a partial
aggregate the class rows are summed from.

Indicators:

- ``handled``: complaints that entered ODR in the window (open, closed or left ODR);
- ``with_feedback`` / ``settled``: with the enterprise's feedback, and of those the settled ones;
  ``settlement_rate`` = settled / with_feedback (``None`` without feedback);
- ``closed``, ``avg_cycle_days``: closed complaints and their mean handling cycle (entered ODR ->
  closed), in days;
- ``p90_cycle_days``: the 90th percentile of the handling cycle, exact to the minute: the cycles are
  truncated to whole minutes and the percentile taken with ``percentile_disc`` semantics (the smallest
  minute m with at least 90 % of the closed complaints at or below m), then shown in days. A full
  ``percentile_cont`` sort, or a per-minute histogram of every complaint, takes seconds on millions of
  complaints; the two-pass histogram does not;
- ``amount_recovered``: sum of the amounts recovered for consumers (CNY);
- ``rated``, ``avg_rating``: consumer satisfaction (1-5);
- ``breaches`` (deadline breaches recorded, all milestones), ``contact_breaches`` (complaints whose
  contact was late: a breach recorded or contacted after the due moment), ``close_breaches``
  (complaints with a close breach).

``label``: the class labels of the units of the subtree with that code (tenant-wide when none there).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from core.reports.common import (
    LABELS_QUERY,
    TIMEZONE,
    Column,
    ReportSpec,
    custom_plans,
    subtree,
    subtree_filter,
    window,
)

__all__ = ["TIMEZONE", "CLASS_TABLE", "class_table"]

BUCKET_SECONDS = 600
"""Width of the coarse histogram buckets of the first pass (ten minutes)."""

CLASS_TABLE_SQL = f"""
WITH h AS (
    SELECT coalesce(enterprise_class, '') AS cls,
           cycle_seconds / {BUCKET_SECONDS} AS bucket,
           count(*) AS handled,
           count(*) FILTER (WHERE fed) AS with_feedback,
           count(*) FILTER (WHERE fed AND settled) AS settled,
           count(cycle_seconds) AS closed,
           sum(cycle_seconds) AS cycle_sum,
           sum(amount_recovered_fen)::numeric / 100 AS amount,
           count(rating) AS rated,
           sum(rating) AS rating_sum,
           sum(breaches) AS breaches,
           count(*) FILTER (WHERE contact_late) AS contact_breaches,
           count(*) FILTER (WHERE close_late) AS close_breaches
    FROM complaint_facts
    WHERE {subtree("node_path")}
      AND entered_odr_at IS NOT NULL
      AND ($2::timestamptz IS NULL OR entered_odr_at >= $2)
      AND ($3::timestamptz IS NULL OR entered_odr_at < $3)
    GROUP BY 1, 2
), hist AS (  -- closed complaints per bucket of cycle, per class and overall
    SELECT grouping(cls) = 1 AS is_total, coalesce(cls, '') AS cls, bucket, sum(closed) AS n
    FROM h WHERE bucket IS NOT NULL
    GROUP BY GROUPING SETS ((cls, bucket), (bucket))
), cum AS (
    SELECT is_total, cls, bucket, n,
           sum(n) OVER (PARTITION BY is_total, cls ORDER BY bucket) AS upto,
           sum(n) OVER (PARTITION BY is_total, cls) AS total
    FROM hist
), target AS (  -- the bucket holding the 90th percentile; closed complaints below it; the rank needed
    SELECT DISTINCT ON (is_total, cls) is_total, cls, bucket, upto - n AS below, ceil(total * 9 / 10) AS need
    FROM cum WHERE upto * 10 >= total * 9
    ORDER BY is_total, cls, bucket
), p90 AS (  -- second pass, to the minute, over that bucket's complaints only (complaint_facts_cycle_idx)
    SELECT t.is_total, t.cls,
           (SELECT m.minute
            FROM (SELECT minute, sum(k) OVER (ORDER BY minute) AS upto
                  FROM (SELECT cycle_seconds / 60 AS minute, count(*) AS k
                        FROM complaint_facts
                        WHERE cycle_seconds >= t.bucket * {BUCKET_SECONDS}
                          AND cycle_seconds < (t.bucket + 1) * {BUCKET_SECONDS}
                          AND (t.is_total OR coalesce(enterprise_class, '') = t.cls)
                          AND {subtree_filter("node_path")}
                          AND entered_odr_at IS NOT NULL
                          AND ($2::timestamptz IS NULL OR entered_odr_at >= $2)
                          AND ($3::timestamptz IS NULL OR entered_odr_at < $3)
                        GROUP BY 1) per_minute) m
            WHERE t.below + m.upto >= t.need
            ORDER BY m.minute LIMIT 1) AS minute
    FROM target t
), labels AS (
    {LABELS_QUERY}
), agg AS (
    SELECT grouping(cls) = 1 AS is_total,
           coalesce(cls, '') AS cls,
           coalesce(sum(handled), 0)::int AS handled,
           coalesce(sum(with_feedback), 0)::int AS with_feedback,
           coalesce(sum(settled), 0)::int AS settled,
           coalesce(sum(closed), 0)::int AS closed,
           sum(cycle_sum) AS cycle_sum,
           coalesce(sum(amount), 0) AS amount,
           coalesce(sum(rated), 0)::int AS rated,
           sum(rating_sum) AS rating_sum,
           coalesce(sum(breaches), 0)::int AS breaches,
           coalesce(sum(contact_breaches), 0)::int AS contact_breaches,
           coalesce(sum(close_breaches), 0)::int AS close_breaches
    FROM h
    GROUP BY GROUPING SETS ((cls), ())
)
SELECT a.is_total,
       a.cls AS enterprise_class,
       CASE WHEN NOT a.is_total THEN l.label END AS label,
       a.handled, a.with_feedback, a.settled,
       round(a.settled::numeric / nullif(a.with_feedback, 0), 4)::float8 AS settlement_rate,
       a.closed,
       round(a.cycle_sum::numeric / nullif(a.closed, 0) / 86400, 2)::float8 AS avg_cycle_days,
       round(p.minute::numeric / 1440, 2)::float8 AS p90_cycle_days,
       a.amount::float8 AS amount_recovered,
       a.rated,
       round(a.rating_sum::numeric / nullif(a.rated, 0), 2)::float8 AS avg_rating,
       a.breaches, a.contact_breaches, a.close_breaches
FROM agg a
LEFT JOIN p90 p ON p.is_total = a.is_total AND p.cls = a.cls
LEFT JOIN labels l ON l.cls = a.cls AND NOT a.is_total
ORDER BY a.is_total, a.cls = '', a.cls
"""


async def class_table(
    conn: asyncpg.Connection, node_path: str, since: dt.date | None, until: dt.date | None, **opts: Any
) -> list[dict[str, Any]]:
    """The class rows (ordered by class code, the unclassified ``''`` last) then the total row
    (``is_total``), which is always present (zeros when nothing matched). Run inside the tenant's
    transaction (``tenant_transaction``)."""
    await custom_plans(conn)
    start, end = window(since, until)
    return [dict(r) for r in await conn.fetch(CLASS_TABLE_SQL, node_path, start, end)]


CLASS_TABLE = ReportSpec(
    name="class-table",
    title_zh="分类处理情况统计表",
    title_en="Indicators per enterprise class",
    run=class_table,
    columns=(
        Column("enterprise_class", "企业分类", "enterprise_class"),
        Column("label", "分类名称", "label"),
        Column("handled", "处理件数", "handled", "int"),
        Column("with_feedback", "已反馈件数", "with_feedback", "int"),
        Column("settled", "和解件数", "settled", "int"),
        Column("settlement_rate", "和解率", "settlement_rate", "rate"),
        Column("closed", "办结件数", "closed", "int"),
        Column("avg_cycle_days", "平均处理周期（天）", "avg_cycle_days", "days"),
        Column("p90_cycle_days", "90%处理周期（天）", "p90_cycle_days", "days"),
        Column("amount_recovered", "挽回经济损失（元）", "amount_recovered", "money"),
        Column("rated", "评价件数", "rated", "int"),
        Column("avg_rating", "平均满意度", "avg_rating", "float"),
        Column("breaches", "超时次数", "breaches", "int"),
        Column("contact_breaches", "联系超时件数", "contact_breaches", "int"),
        Column("close_breaches", "办结超时件数", "close_breaches", "int"),
    ),
)
