"""The class table: the Art. 20 efficacy indicators per enterprise class, in one aggregate query.

Complaints in a node's subtree (``node_path``) that entered ODR in a window of Asia/Shanghai dates,
grouped by the class their ODR unit got from the classification scheme
(``enterprises.classification->>'code'``; ``''`` for complaints whose unit has no class or that have
no unit), plus a total row (``GROUPING SETS``). No complaint row leaves the database.

Indicators:

- ``handled``: complaints that entered ODR in the window (open, closed or left ODR);
- ``with_feedback`` / ``settled``: with the enterprise's feedback, and of those the settled ones;
  ``settlement_rate`` = settled / with_feedback (``None`` without feedback);
- ``closed``, ``avg_cycle_days``, ``p90_cycle_days``: closed complaints and their handling cycle,
  entered ODR -> closed, in days (continuous 90th percentile);
- ``amount_recovered``: sum of the amounts recovered for consumers (CNY);
- ``rated``, ``avg_rating``: consumer satisfaction (1-5);
- ``breaches`` (deadline breaches, all milestones), ``contact_breaches``, ``close_breaches``.
"""

from __future__ import annotations

import datetime as dt

import asyncpg

TIMEZONE = "Asia/Shanghai"

CLASS_TABLE_SQL = f"""
WITH c AS (
    SELECT coalesce(e.classification->>'code', '') AS cls,
           e.classification->>'label' AS label,
           c.feedback IS NOT NULL AS fed,
           c.settled,
           c.closed_at,
           extract(epoch FROM c.closed_at - c.entered_odr_at) / 86400.0 AS cycle,
           c.amount_recovered,
           c.rating,
           c.breaches
    FROM complaints c
    LEFT JOIN enterprises e ON e.id = c.enterprise_id
    WHERE (c.node_path = $1 OR c.node_path LIKE $1 || '/%')
      AND c.entered_odr_at IS NOT NULL
      AND ($2::date IS NULL OR c.entered_odr_at >= $2::date::timestamp AT TIME ZONE '{TIMEZONE}')
      AND ($3::date IS NULL OR c.entered_odr_at < ($3::date + 1)::timestamp AT TIME ZONE '{TIMEZONE}')
)
SELECT grouping(cls) = 1 AS is_total,
       cls,
       string_agg(DISTINCT label, ' / ') AS label,
       count(*) AS handled,
       count(*) FILTER (WHERE fed) AS with_feedback,
       count(*) FILTER (WHERE fed AND settled) AS settled,
       round((count(*) FILTER (WHERE fed AND settled))::numeric
             / nullif(count(*) FILTER (WHERE fed), 0), 4)::float8 AS settlement_rate,
       count(*) FILTER (WHERE closed_at IS NOT NULL) AS closed,
       round(avg(cycle) FILTER (WHERE closed_at IS NOT NULL), 2)::float8 AS avg_cycle_days,
       round((percentile_cont(0.9) WITHIN GROUP (ORDER BY cycle)
              FILTER (WHERE closed_at IS NOT NULL))::numeric, 2)::float8 AS p90_cycle_days,
       coalesce(sum(amount_recovered), 0)::float8 AS amount_recovered,
       count(rating) AS rated,
       round(avg(rating), 2)::float8 AS avg_rating,
       coalesce(sum(cardinality(breaches)), 0)::int AS breaches,
       count(*) FILTER (WHERE 'contact' = ANY (breaches)) AS contact_breaches,
       count(*) FILTER (WHERE 'close' = ANY (breaches)) AS close_breaches
FROM c
GROUP BY GROUPING SETS ((cls), ())
ORDER BY grouping(cls), cls = '', cls
"""


async def class_table(
    conn: asyncpg.Connection, node_path: str, since: dt.date | None, until: dt.date | None
) -> list[asyncpg.Record]:
    """The class rows (ordered by class code, the unclassified ``''`` last) then the total row
    (``is_total``), which is always present (zeros when nothing matched). Run inside the tenant's
    transaction (``tenant_transaction``)."""
    return await conn.fetch(CLASS_TABLE_SQL, node_path, since, until)
