"""Complaint counts by state and enterprise class: the complaints of a node's subtree received (filed on
12315 or forwarded by a bureau) in the window, one row per state (in the order of the complaint state
machine, states without complaints included) and a column per enterprise class, plus totals.

Counted in SQL (``GROUP BY GROUPING SETS``) over ``complaint_facts``; Python only pivots the few dozen
aggregated cells. Classes are ``enterprise_class`` of the complaint's ODR unit; ``''`` (未分类) for
complaints whose unit has no class and for complaints about companies that are no ODR unit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from core.complaints import states as S
from core.reports.common import Column, ReportSpec, custom_plans, subtree, window

STATE_LABELS: dict[str, str] = {
    S.REGISTERED: "已登记",
    S.DISPATCHED: "已分派",
    S.WITH_ENTERPRISE: "企业处理中",
    S.CONTACTED: "已联系消费者",
    S.NEGOTIATING: "协商中",
    S.FEEDBACK_SUBMITTED: "已反馈",
    S.CLOSED: "已办结",
    S.RETURNED: "已退回",
    S.LEFT_ODR: "转出ODR",
    S.WITHDRAWN: "已撤回",
}

STATES_SQL = f"""
WITH cells AS (  -- a plain (parallel) aggregate; the totals are summed from its few dozen cells
    SELECT state, coalesce(enterprise_class, '') AS cls, count(*) AS n
    FROM complaint_facts
    WHERE {subtree("node_path")}
      AND ($2::timestamptz IS NULL OR received_at >= $2)
      AND ($3::timestamptz IS NULL OR received_at < $3)
    GROUP BY 1, 2
)
SELECT grouping(state) = 1 AS all_states, grouping(cls) = 1 AS all_classes,
       state, cls, coalesce(sum(n), 0)::int AS n
FROM cells
GROUP BY GROUPING SETS ((state, cls), (state), (cls), ())
"""


def class_key(cls: str) -> str:
    """The row key of a class column: ``class_A``; ``class_`` for the unclassified."""
    return f"class_{cls}"


async def complaints_by_state(
    conn: asyncpg.Connection, node_path: str, since: dt.date | None, until: dt.date | None, **opts: Any
) -> list[dict[str, Any]]:
    """One row per state: ``state``, ``state_label``, ``class_<code>`` counts for every class seen in
    the window (``class_`` = unclassified), ``total``; then the total row (``is_total``)."""
    await custom_plans(conn)
    start, end = window(since, until)
    cells = await conn.fetch(STATES_SQL, node_path, start, end)
    classes = classes_of(cells)
    by_state: dict[str, dict[str, Any]] = {}
    for state in S.STATES:
        by_state[state] = {"is_total": False, "state": state, "state_label": STATE_LABELS.get(state, state),
                           **{class_key(c): 0 for c in classes}, "total": 0}
    total = {"is_total": True, "state": "", "state_label": "合计", **{class_key(c): 0 for c in classes}, "total": 0}
    for c in cells:
        if c["all_states"]:
            row = total
        else:
            row = by_state.setdefault(c["state"], {"is_total": False, "state": c["state"], "state_label": c["state"],
                                                   **{class_key(k): 0 for k in classes}, "total": 0})
        row["total" if c["all_classes"] else class_key(c["cls"])] = c["n"]
    return [*by_state.values(), total]


def classes_of(cells) -> list[str]:
    """Class codes seen, sorted, the unclassified ``''`` last."""
    return sorted({c["cls"] for c in cells if not c["all_classes"]}, key=lambda c: (c == "", c))


def state_columns(rows: list[dict[str, Any]], labels: dict[str, str] | None = None) -> tuple[Column, ...]:
    """The columns of a result: state, label, one per class present, total."""
    keys = [k for k in (rows[-1] if rows else {}) if k.startswith("class_")]
    labels = labels or {}
    cols = []
    for key in keys:
        code = key[len("class_"):]
        zh = f"{code}类" if code else "未分类"
        if labels.get(code):
            zh = f"{zh}（{labels[code]}）"
        cols.append(Column(key, zh, f"class {code}" if code else "unclassified", "int"))
    return (STATE, STATE_LABEL, *cols, Column("total", "合计", "total", "int"))


STATE = Column("state", "状态代码", "state")
STATE_LABEL = Column("state_label", "状态", "state_label")

COMPLAINTS_BY_STATE = ReportSpec(
    name="complaints-by-state",
    title_zh="投诉状态与企业分类统计表",
    title_en="Complaints by state and enterprise class",
    run=complaints_by_state,
    columns=(STATE, STATE_LABEL, Column("total", "合计", "total", "int")),
)
