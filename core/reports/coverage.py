"""Coverage against targets (Jiangsu: from 97 to at least 510 ODR units by year end, every county
covered): per district-level node of the chosen node's subtree, the ODR units active at the end of the
window, the targets set for the year, whether the district is covered, plus a total row.

- District rows: the ``district`` nodes of the subtree (the chosen node itself when it is an office).
  Units at an office count for the office's district; units at a node above district level (a city's
  own units) count in the total only.
- ``units``: ODR units proper (host units and ordinary units, not the member merchants of a host unit,
  which are ``member_merchants``) active at the end of the window: approved before it and active now,
  or suspended / revoked only after it. Without ``until``: active now.
- ``new_units``: of those, approved within the window (none without ``since``).
- ``target``: ``coverage_targets.target_units`` for the node and ``year`` (default: the year of
  ``until``, else the current year); ``covered``: at least one unit; ``target_met``: units >= target
  (None without a target); ``gap``: units still missing to the target.
- Total row: all units of the subtree, ``districts`` / ``districts_covered``, and as target the one set
  for the chosen node itself (e.g. the province's 510), else the sum of the district targets.

Reads ``jurisdictions``, ``enterprises`` and ``coverage_targets`` only (no complaint is involved).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from core.reports.common import Column, ReportSpec, custom_plans, subtree, today, window

COVERAGE_SQL = f"""
WITH scope AS (
    SELECT code, parent_code, level, name, path FROM jurisdictions WHERE {subtree("path")}
), districts AS (
    SELECT code, parent_code, name, path FROM scope
    WHERE level = 'district' OR (path = $1 AND level = 'office')
), node_district AS (
    SELECT s.code, d.code AS district
    FROM scope s JOIN districts d ON s.path = d.path OR s.path LIKE d.path || '/%'
), units AS (
    SELECT e.node_code,
           count(*) FILTER (WHERE e.host_unit_id IS NULL) AS units,
           count(*) FILTER (WHERE e.host_unit_id IS NOT NULL) AS members,
           count(*) FILTER (WHERE e.host_unit_id IS NULL AND $2::timestamptz IS NOT NULL
                              AND e.approved_at >= $2) AS new_units
    FROM enterprises e
    WHERE e.node_code IN (SELECT code FROM scope)
      AND e.approved_at IS NOT NULL
      AND CASE WHEN $3::timestamptz IS NULL THEN e.status = 'active'
               ELSE e.approved_at < $3 AND (e.status = 'active' OR (e.status IN ('suspended', 'revoked')
                                                                     AND e.status_changed_at >= $3)) END
    GROUP BY e.node_code
), per_district AS (
    SELECT d.code, d.name, d.path, p.name AS parent_name,
           coalesce(sum(u.units), 0)::int AS units,
           coalesce(sum(u.members), 0)::int AS members,
           coalesce(sum(u.new_units), 0)::int AS new_units,
           t.target_units AS target
    FROM districts d
    LEFT JOIN node_district nd ON nd.district = d.code
    LEFT JOIN units u ON u.node_code = nd.code
    LEFT JOIN jurisdictions p ON p.code = d.parent_code
    LEFT JOIN coverage_targets t ON t.node_code = d.code AND t.year = $4
    GROUP BY d.code, d.name, d.path, p.name, t.target_units
)
SELECT false AS is_total, code AS node_code, name AS node_name, parent_name, units, members AS member_merchants,
       new_units, target, units > 0 AS covered, CASE WHEN target IS NOT NULL THEN units >= target END AS target_met,
       CASE WHEN target IS NOT NULL THEN greatest(target - units, 0) END AS gap,
       1 AS districts, (units > 0)::int AS districts_covered, path
FROM per_district
UNION ALL
SELECT true, j.code, j.name, NULL,
       coalesce((SELECT sum(units) FROM units), 0)::int,
       coalesce((SELECT sum(members) FROM units), 0)::int,
       coalesce((SELECT sum(new_units) FROM units), 0)::int,
       t.target,
       (SELECT count(*) FROM per_district) > 0 AND NOT EXISTS (SELECT 1 FROM per_district WHERE units = 0),
       NULL, NULL,
       (SELECT count(*) FROM per_district)::int,
       (SELECT count(*) FROM per_district WHERE units > 0)::int,
       j.path
FROM jurisdictions j
CROSS JOIN LATERAL (
    SELECT coalesce((SELECT target_units FROM coverage_targets WHERE node_code = j.code AND year = $4),
                    (SELECT sum(target)::int FROM per_district)) AS target) t
WHERE j.path = $1
ORDER BY is_total, path
"""


def target_year(until: dt.date | None, year: int | None) -> int:
    return year if year is not None else (until or today()).year


async def coverage(
    conn: asyncpg.Connection, node_path: str, since: dt.date | None, until: dt.date | None, *,
    year: int | None = None, **opts: Any
) -> list[dict[str, Any]]:
    """District rows (in path order) then the total row (``is_total``); see the module docstring."""
    await custom_plans(conn)
    start, end = window(since, until)
    rows = [dict(r) for r in await conn.fetch(COVERAGE_SQL, node_path, start, end, target_year(until, year))]
    for r in rows:
        r.pop("path", None)
        if r["is_total"] and r["target"] is not None:
            r["target_met"] = r["units"] >= r["target"]
            r["gap"] = max(r["target"] - r["units"], 0)
    return rows


COVERAGE = ReportSpec(
    name="coverage",
    title_zh="ODR单位覆盖情况与目标",
    title_en="ODR unit coverage against targets",
    run=coverage,
    options=("year",),
    columns=(
        Column("node_code", "辖区代码", "node_code"),
        Column("node_name", "辖区", "node_name"),
        Column("parent_name", "上级", "parent"),
        Column("units", "在册ODR单位数", "active_units", "int"),
        Column("member_merchants", "入驻商户数", "member_merchants", "int"),
        Column("new_units", "期内新增", "new_units", "int"),
        Column("target", "目标数", "target", "int"),
        Column("covered", "已覆盖", "covered", "bool"),
        Column("target_met", "达标", "target_met", "bool"),
        Column("gap", "差额", "gap", "int"),
        Column("districts", "区县数", "districts", "int"),
        Column("districts_covered", "已覆盖区县数", "districts_covered", "int"),
    ),
)
