"""Hot-spot categories (Art. 19: analyse complaints, warn of consumption hot spots): complaints received
per ``category`` in the window and in the previous window of the same length, with the change.

The window needs both ends: ``until`` defaults to today and ``since`` to 29 days before ``until`` (30
days). The previous window is the same number of days right before ``since``. Rows ordered by
complaints in the window (then the previous window's, then the name), the ``top`` first (default 50,
1-500), categories with complaints in the previous window only included (as falling to 0); the total row
(``is_total``) covers all categories. ``category`` ``''`` (未分类) collects complaints filed without one.

Columns: ``rank``, ``category``, ``complaints``, ``share`` (of the window's complaints), ``previous``,
``change`` (complaints - previous), ``change_rate`` (change / previous; None when previous is 0),
``settled`` / ``with_feedback`` / ``settlement_rate`` of the window's complaints.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from core.reports.common import Column, ReportSpec, custom_plans, day_start, subtree, today

TOP_MAX = 500
DEFAULT_DAYS = 30

HOTSPOTS_SQL = f"""
WITH g AS (
    SELECT coalesce(btrim(category), '') AS category,
           count(*) FILTER (WHERE received_at >= $3) AS complaints,
           count(*) FILTER (WHERE received_at < $3) AS previous,
           count(*) FILTER (WHERE received_at >= $3 AND fed) AS with_feedback,
           count(*) FILTER (WHERE received_at >= $3 AND fed AND settled) AS settled
    FROM complaint_facts
    WHERE {subtree("node_path")} AND received_at >= $2 AND received_at < $4
    GROUP BY 1
), t AS (
    SELECT grouping(category) = 1 AS is_total, coalesce(category, '') AS category,
           sum(complaints)::int AS complaints, sum(previous)::int AS previous,
           sum(with_feedback)::int AS with_feedback, sum(settled)::int AS settled
    FROM g GROUP BY GROUPING SETS ((category), ())
), ranked AS (
    SELECT t.*, CASE WHEN NOT is_total THEN rank() OVER (PARTITION BY is_total ORDER BY complaints DESC) END AS rank,
           row_number() OVER (PARTITION BY is_total ORDER BY complaints DESC, previous DESC, category) AS n,
           max(complaints) FILTER (WHERE is_total) OVER () AS all_complaints
    FROM t
)
SELECT is_total, rank::int, category, coalesce(complaints, 0) AS complaints,
       round(coalesce(complaints, 0)::numeric / nullif(all_complaints, 0), 4)::float8 AS share,
       coalesce(previous, 0) AS previous,
       coalesce(complaints, 0) - coalesce(previous, 0) AS change,
       round((coalesce(complaints, 0) - previous)::numeric / nullif(previous, 0), 4)::float8 AS change_rate,
       coalesce(with_feedback, 0) AS with_feedback, coalesce(settled, 0) AS settled,
       round(settled::numeric / nullif(with_feedback, 0), 4)::float8 AS settlement_rate
FROM ranked
WHERE is_total OR n <= $5
ORDER BY is_total, n
"""


def periods(since: dt.date | None, until: dt.date | None) -> tuple[dt.date, dt.date, dt.date, dt.date]:
    """(previous since, previous until, since, until) with the defaults of the module docstring."""
    until = until or today()
    since = since or until - dt.timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise ValueError(f"since: {since} is after until ({until}; default today)")
    days = (until - since).days + 1
    return since - dt.timedelta(days=days), since - dt.timedelta(days=1), since, until


async def hot_spots(
    conn: asyncpg.Connection, node_path: str, since: dt.date | None, until: dt.date | None, *, top: int = 50,
    **opts: Any
) -> list[dict[str, Any]]:
    """Category rows then the total row (``is_total``); see the module docstring."""
    if not 1 <= top <= TOP_MAX:
        raise ValueError(f"top: expected 1-{TOP_MAX}, got {top}")
    prev_since, _, since, until = periods(since, until)
    await custom_plans(conn)
    return [dict(r) for r in await conn.fetch(HOTSPOTS_SQL, node_path, day_start(prev_since), day_start(since),
                                              day_start(until + dt.timedelta(days=1)), top)]


HOT_SPOTS = ReportSpec(
    name="hot-spots",
    title_zh="消费投诉热点分类",
    title_en="Hot-spot complaint categories",
    run=hot_spots,
    options=("top",),
    columns=(
        Column("rank", "排名", "rank", "int"),
        Column("category", "投诉类别", "category"),
        Column("complaints", "本期投诉件数", "complaints", "int"),
        Column("share", "占比", "share", "rate"),
        Column("previous", "上期投诉件数", "previous", "int"),
        Column("change", "增减", "change", "int"),
        Column("change_rate", "增减幅度", "change_rate", "rate"),
        Column("with_feedback", "已反馈件数", "with_feedback", "int"),
        Column("settled", "和解件数", "settled", "int"),
        Column("settlement_rate", "和解率", "settlement_rate", "rate"),
    ),
)
