"""Classification replay: each ODR unit's class under the current scheme and under the candidate.

Contract:

- :data:`UNIT_COLUMNS` / :func:`units_sql` select the units of a subtree (``$1``: node path) with the
  facts a classification scheme reads; :func:`classify` is the class of one such row under one side
  (also used by the scoring replay, whose indicators carry the current class).
- :func:`replay_classification` (a runner for :func:`core.policy_replay.common.rolled_back`): every
  active or suspended unit classified on both sides, counts per class, the units that change class.
  ``since``/``until`` are echoed, not applied. Reads only.
"""

from __future__ import annotations

from core.policy_replay.common import Hypothetical, ReplayRun, subtree_sql
from core.policy_replay.schemas import ClassificationReplayResult, UnitClassReplay
from core.runtime import Node, Platform

CLASSIFICATION_NOTE = (
    "Classification replay: every ODR unit (active or suspended) of the subtree classified from its declared"
    " facts under the current policy and under the candidate; since/until do not apply."
)


def units_sql(statuses: str) -> str:
    """The units (``e``) of the subtree whose node path is ``$1``, in the SQL list ``statuses``; no ORDER BY."""
    return f"""SELECT e.id, e.name, e.node_code, e.unit_type, e.status, e.industry, e.employees, e.annual_revenue_cny,
           e.business_scope
    FROM enterprises e JOIN jurisdictions j ON j.code = e.node_code
    WHERE {subtree_sql(1, 'j.path')} AND e.status IN {statuses}"""


UNITS_SQL = units_sql("('active', 'suspended')") + "\n    ORDER BY e.name, e.id"


def classify(platform: Platform, side: Hypothetical, node: Node, row) -> dict | None:
    """The class of the unit ``row`` under ``side`` (the scheme active at its node), or None."""
    from core.enterprises.service import classify  # the platform's own reading of a unit's facts

    scope, active = side.scope(node)
    return classify(platform, scope, active, row)


def _counts(values: list[str | None]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v or ""] = out.get(v or "", 0) + 1
    return dict(sorted(out.items()))


def _scheme_class_label(cls: dict | None) -> tuple[str | None, str | None, str | None]:
    got = cls or {}
    return got.get("plugin"), got.get("code"), got.get("label")


async def replay_classification(run: ReplayRun) -> ClassificationReplayResult:
    units: list[UnitClassReplay] = []
    for row in await run.conn.fetch(UNITS_SQL, run.path):
        where = run.nodes.get(row["node_code"])
        if where is None:
            continue
        cur = _scheme_class_label(classify(run.platform, run.current, where, row))
        cand = _scheme_class_label(classify(run.platform, run.hypo, where, row))
        units.append(
            UnitClassReplay(
                enterprise_id=str(row["id"]),
                name=row["name"],
                node_code=row["node_code"],
                unit_type=row["unit_type"],
                status=row["status"],
                current_scheme=cur[0],
                current_class=cur[1],
                current_label=cur[2],
                candidate_scheme=cand[0],
                candidate_class=cand[1],
                candidate_label=cand[2],
                changed=cur[:2] != cand[:2],
            )
        )
    changes = [u for u in units if u.changed]
    return ClassificationReplayResult(
        **run.header(CLASSIFICATION_NOTE),
        units=len(units),
        current_schemes=sorted({u.current_scheme for u in units if u.current_scheme}),
        candidate_schemes=sorted({u.candidate_scheme for u in units if u.candidate_scheme}),
        current_counts=_counts([u.current_class for u in units]),
        candidate_counts=_counts([u.candidate_class for u in units]),
        changed=len(changes),
        changes=changes,
        all_units=units,
    )
