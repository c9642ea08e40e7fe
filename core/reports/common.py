"""Pieces shared by the report queries: the period window, the subtree predicate, the report spec.

Every report is an ``async def report(conn, node_path, since, until, **opts) -> list[dict]`` run inside
the tenant's transaction (:func:`core.db.engine.tenant_transaction`), reading ``complaint_facts``
(tenant migration 0004) and, for coverage, ``jurisdictions`` / ``enterprises`` / ``coverage_targets``.
Aggregation happens in SQL; only the aggregated rows (a few dozen) come back to Python.

Conventions:
- ``node_path`` is a jurisdiction path (``"320000/320200/320205"``); a report covers the node and its
  whole subtree (``node_path = $p OR node_path LIKE $p || '/%'``, served by the ``text_pattern_ops``
  index on small subtrees).
- ``since`` / ``until`` are Asia/Shanghai calendar days, both included, both optional (open ends);
  they become the instants ``[since 00:00, until+1 00:00)`` in Asia/Shanghai (:func:`window`).
- A report with a total row returns it last, marked ``is_total: True``.
- Every report transaction uses custom plans (``plan_cache_mode = force_custom_plan``): the same
  statement is a full scan for a province and an index range scan for an office, so a cached generic
  plan would be wrong for one of them. It also turns JIT off and gives hash aggregates 64 MB
  (:func:`custom_plans`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Literal
from zoneinfo import ZoneInfo

import asyncpg

TIMEZONE = "Asia/Shanghai"
TZ = ZoneInfo(TIMEZONE)

SUBTREE = "(strpos($1, '/') = 0 OR {col} = $1 OR {col} LIKE $1 || '/%')"
"""The subtree predicate on a path column; ``$1`` is always the node path. For the province (a path
without ``/``) every row of the tenant qualifies: with custom plans the predicate folds to true and
costs nothing per row."""

Kind = Literal["text", "int", "float", "rate", "money", "days", "bool", "date"]


@dataclass(frozen=True)
class Column:
    """One report column: its key in the rows, Chinese and English labels, and how to show it
    (``rate``: a fraction 0-1, shown as a percentage in XLSX; ``money``: CNY; ``days``: a duration in
    days)."""

    key: str
    zh: str
    en: str
    kind: Kind = "text"


@dataclass(frozen=True)
class ReportSpec:
    """A report: its name (the URL segment and the registry key), titles, columns and the function."""

    name: str
    title_zh: str
    title_en: str
    columns: tuple[Column, ...]
    run: Callable[..., Awaitable[list[dict[str, Any]]]]
    options: tuple[str, ...] = field(default=())


def day_start(day: dt.date) -> dt.datetime:
    """Midnight of ``day`` in Asia/Shanghai, as an aware instant."""
    return dt.datetime.combine(day, dt.time(), TZ)


def window(since: dt.date | None, until: dt.date | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``[since 00:00, until+1 00:00)`` in Asia/Shanghai; None for an open end."""
    return (day_start(since) if since else None, day_start(until + dt.timedelta(days=1)) if until else None)


def today() -> dt.date:
    return dt.datetime.now(TZ).date()


def subtree(col: str) -> str:
    return SUBTREE.format(col=col)


def subtree_filter(col: str) -> str:
    """The subtree predicate in a form no index can serve: for a query that reaches its few rows through
    another index and must not have the planner intersect it with a large range of the path index."""
    return f"(strpos($1, '/') = 0 OR {col} = $1 OR left({col}, length($1) + 1) = $1 || '/')"


async def custom_plans(conn: asyncpg.Connection) -> None:
    """Settings for the rest of the report's transaction (see the module docstring): custom plans; no
    JIT (compiling a report's aggregates costs more than it saves on two cores); memory for hash
    aggregates of tens of thousands of groups (a sort spilling to disk instead is several times
    slower)."""
    await conn.execute(
        "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), set_config('jit', 'off', true),"
        " set_config('work_mem', '64MB', true)")


def rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


LABELS_QUERY = f"""
SELECT cls, coalesce(string_agg(label, ' / ' ORDER BY label) FILTER (WHERE here),
                     string_agg(label, ' / ' ORDER BY label)) AS label
FROM (SELECT e.classification->>'code' AS cls, e.classification->>'label' AS label, bool_or({subtree("j.path")}) AS here
      FROM enterprises e JOIN jurisdictions j ON j.code = e.node_code
      WHERE e.classification IS NOT NULL
      GROUP BY 1, 2) pairs
GROUP BY cls
"""
"""Class code -> label(s) of the units of the subtree ``$1`` (tenant-wide for codes none of them has)."""

async def class_labels(conn: asyncpg.Connection, node_path: str) -> dict[str, str]:
    """Class code -> label, from the units of the subtree (tenant-wide for codes none of them has)."""
    return {r["cls"]: r["label"] for r in await conn.fetch(LABELS_QUERY, node_path)}
