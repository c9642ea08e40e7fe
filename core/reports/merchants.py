"""The merchants with the most complaints (Wuxi Xishan: monitor them): the top ``top`` companies of a
node's subtree by complaints received in the window, ODR units and other companies alike, with how
their complaints went.

``by``:
- ``unit`` (default): an ODR unit's complaints count together (``enterprise_id``) under the unit's
  registered name, whatever the consumers typed; complaints about companies that are no ODR unit count
  per company name as filed (trimmed). A host unit (a mall) counts the complaints it handles for its
  member merchants.
- ``company``: per company name as filed (trimmed), units or not: the merchants inside a mall show
  separately.

Columns: ``rank`` (1 = most complaints; equal counts share a rank), ``company_name``, ``odr_unit``,
``credit_code`` / ``enterprise_class`` / ``node_name`` (units only), ``complaints``, ``in_odr`` (entered
ODR), ``with_feedback``, ``settled``, ``settlement_rate`` (settled / with_feedback), ``closed``,
``avg_cycle_days``, ``amount_recovered``, ``breaches``. No total row.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import asyncpg

from core.reports.common import Column, ReportSpec, custom_plans, subtree, subtree_filter, window

TOP_MAX = 500

_DETAILS = """
           count(*) AS complaints,
           count(entered_odr_at) AS in_odr,
           count(*) FILTER (WHERE fed) AS with_feedback,
           count(*) FILTER (WHERE fed AND settled) AS settled,
           count(cycle_seconds) AS closed,
           sum(cycle_seconds) AS cycle_sum,
           sum(amount_recovered_fen)::numeric / 100 AS amount,
           sum(breaches) AS breaches,
           bool_or(enterprise_id IS NOT NULL) AS odr_unit"""

_FILTER = f"""{subtree("node_path")}
      AND ($2::timestamptz IS NULL OR received_at >= $2)
      AND ($3::timestamptz IS NULL OR received_at < $3)"""

_DETAIL_FILTER = f"""{subtree_filter("node_path")}
      AND ($2::timestamptz IS NULL OR received_at - $2 >= interval '0')
      AND ($3::timestamptz IS NULL OR received_at - $3 < interval '0')"""
"""The same filter, in a form the path and date indexes cannot serve: the second pass reaches its rows
through the unit or name index and must not intersect them with large ranges of those indexes."""

_SELECT = """
SELECT rank() OVER (ORDER BY t.complaints DESC)::int AS rank,
       coalesce(e.name, t.name) AS company_name,
       t.odr_unit,
       e.credit_code,
       e.classification->>'code' AS enterprise_class,
       j.name AS node_name,
       t.complaints::int, t.in_odr::int, t.with_feedback::int, t.settled::int,
       round(t.settled::numeric / nullif(t.with_feedback, 0), 4)::float8 AS settlement_rate,
       t.closed::int,
       round(t.cycle_sum::numeric / nullif(t.closed, 0) / 86400, 2)::float8 AS avg_cycle_days,
       coalesce(t.amount, 0)::float8 AS amount_recovered,
       coalesce(t.breaches, 0)::int AS breaches
FROM top t
LEFT JOIN enterprises e ON e.id = t.enterprise_id
LEFT JOIN jurisdictions j ON j.code = e.node_code
ORDER BY t.complaints DESC, company_name, e.credit_code
"""

# by unit: a lean first pass finds the top keys, the details are then read for those keys only, through
# complaint_facts_enterprise_idx and complaint_facts_nonunit_name_idx (migrations 0004 and 0005). The
# first pass is two statements: the units' counts (for the whole province an index-only scan of
# complaint_facts_enterprise_idx in unit order, counted as it streams: see top_merchants) and the other
# companies' counts per name; the top keys of both go to the details statement.
UNIT_KEYS_SQL = f"""
SELECT enterprise_id, NULL::text AS name, count(*) AS n
FROM complaint_facts
WHERE enterprise_id IS NOT NULL AND {_FILTER}
GROUP BY enterprise_id
ORDER BY n DESC, enterprise_id
LIMIT $4
"""

NAME_KEYS_SQL = f"""
SELECT NULL::uuid AS enterprise_id, btrim(company_name) AS name, count(*) AS n
FROM complaint_facts
WHERE enterprise_id IS NULL AND {_FILTER}
GROUP BY 2
ORDER BY n DESC, name
LIMIT $4
"""

BY_UNIT_SQL = f"""
WITH keys AS (
    SELECT * FROM unnest($4::uuid[], $5::text[]) AS k(enterprise_id, name)
), top AS (  -- one index lookup per key (LATERAL): the unit index, or the name index for the others
    SELECT k.enterprise_id, k.name, d.*
    FROM keys k
    CROSS JOIN LATERAL (
        SELECT {_DETAILS}
        FROM complaint_facts f
        WHERE k.enterprise_id IS NOT NULL AND f.enterprise_id = k.enterprise_id AND {_DETAIL_FILTER}
    ) d
    WHERE k.enterprise_id IS NOT NULL
    UNION ALL
    SELECT k.enterprise_id, k.name, d.*
    FROM keys k
    CROSS JOIN LATERAL (
        SELECT {_DETAILS}
        FROM complaint_facts f
        WHERE f.enterprise_id IS NULL AND btrim(f.company_name) = k.name AND {_DETAIL_FILTER}
    ) d
    WHERE k.name IS NOT NULL
)
{_SELECT}"""

STREAMING = ("enable_hashagg", "enable_seqscan", "max_parallel_workers_per_gather")
"""Planner settings switched off for the province-wide unit count: PostgreSQL prices a parallel hash
aggregate of millions of rows below a streaming count over the unit-ordered index, which measured
2.5 times faster (5 million complaints, 100,000 units: 0.42 s against 1.05 s)."""


async def _unit_keys(conn: asyncpg.Connection, node_path: str, start, end, top: int) -> list[asyncpg.Record]:
    if "/" in node_path:  # a city, district or office: few rows, the planner's choice is right
        return await conn.fetch(UNIT_KEYS_SQL, node_path, start, end, top)
    saved = await conn.fetchrow(
        "SELECT " + ", ".join(f"current_setting('{name}') AS {name}" for name in STREAMING))
    await conn.execute("SELECT " + ", ".join(
        f"set_config('{name}', '{'0' if name.startswith('max_') else 'off'}', true)" for name in STREAMING))
    try:
        return await conn.fetch(UNIT_KEYS_SQL, node_path, start, end, top)
    finally:
        await conn.execute("SELECT " + ", ".join(f"set_config('{name}', $%d, true)" % (i + 1)
                                                 for i, name in enumerate(STREAMING)), *saved.values())


BY_COMPANY_SQL = f"""
WITH g AS (
    SELECT NULL::uuid AS enterprise_id, btrim(company_name) AS name, {_DETAILS}
    FROM complaint_facts
    WHERE {_FILTER}
    GROUP BY 2
), top AS (
    SELECT * FROM g ORDER BY complaints DESC, name LIMIT $4
)
{_SELECT}"""



async def top_merchants(
    conn: asyncpg.Connection, node_path: str, since: dt.date | None, until: dt.date | None, *,
    top: int = 20, by: Literal["unit", "company"] = "unit", **opts: Any
) -> list[dict[str, Any]]:
    """The ``top`` (1-500) companies with the most complaints received in the window; see the module
    docstring."""
    if not 1 <= top <= TOP_MAX:
        raise ValueError(f"top: expected 1-{TOP_MAX}, got {top}")
    if by not in ("unit", "company"):
        raise ValueError(f"by: expected one of ['company', 'unit'], got {by!r}")
    await custom_plans(conn)
    start, end = window(since, until)
    if by == "company":
        return [dict(r) for r in await conn.fetch(BY_COMPANY_SQL, node_path, start, end, top)]
    keys = [*await _unit_keys(conn, node_path, start, end, top),
            *await conn.fetch(NAME_KEYS_SQL, node_path, start, end, top)]
    keys.sort(key=lambda k: (-k["n"], str(k["enterprise_id"] or ""), k["name"] or ""))
    keys = keys[:top]
    rows = await conn.fetch(BY_UNIT_SQL, node_path, start, end, [k["enterprise_id"] for k in keys],
                            [k["name"] for k in keys])
    return [dict(r) for r in rows]


TOP_MERCHANTS = ReportSpec(
    name="top-merchants",
    title_zh="投诉量居前的经营者",
    title_en="Merchants with the most complaints",
    run=top_merchants,
    options=("top", "by"),
    columns=(
        Column("rank", "排名", "rank", "int"),
        Column("company_name", "经营者名称", "company_name"),
        Column("odr_unit", "ODR单位", "odr_unit", "bool"),
        Column("credit_code", "统一社会信用代码", "credit_code"),
        Column("enterprise_class", "企业分类", "enterprise_class"),
        Column("node_name", "所属辖区", "node_name"),
        Column("complaints", "投诉件数", "complaints", "int"),
        Column("in_odr", "进入ODR件数", "in_odr", "int"),
        Column("with_feedback", "已反馈件数", "with_feedback", "int"),
        Column("settled", "和解件数", "settled", "int"),
        Column("settlement_rate", "和解率", "settlement_rate", "rate"),
        Column("closed", "办结件数", "closed", "int"),
        Column("avg_cycle_days", "平均处理周期（天）", "avg_cycle_days", "days"),
        Column("amount_recovered", "挽回经济损失（元）", "amount_recovered", "money"),
        Column("breaches", "超时次数", "breaches", "int"),
    ),
)
