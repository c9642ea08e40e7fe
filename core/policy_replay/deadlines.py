"""Deadline policy changes and the complaints they touch.

Contract:

- :func:`recompute_deadlines`: complaints already in ODR keep the deadlines they were given when a
  policy changes. A bureau may recompute them explicitly: the due moments of the open in-ODR
  complaints under a node are derived again from ``entered_odr_at`` with the policy active now, the
  complaint updated, its timers re-scheduled and a ``deadlines_recomputed`` event written per changed
  complaint; one tenant transaction (``dry_run``: nothing written).
- :func:`replay_deadlines` (a runner for :func:`core.policy_replay.common.rolled_back`): what a
  candidate deadline plugin would have given the subtree's past complaints, compared with the current
  policy: due moments, on-time outcomes of the actual contact and close moments, totals per policy and
  per enterprise (ranked). Reads only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from core.auth.principal import Principal
from core.complaints import states as S
from core.db.engine import tenant_transaction
from core.deadlines.service import ComplaintDeadlines, complaint_deadlines
from core.policy_replay.common import ReplayRun, competition_ranks, entered_odr_between_sql, invalid, subtree_sql
from core.policy_replay.schemas import (
    ComplaintReplay,
    DeadlineChange,
    DueMoments,
    EnterpriseReplay,
    Outcome,
    PolicyTotals,
    RecomputeResult,
    ReplayResult,
)
from core.runtime import Node, Platform
from core.timers.schedule import schedule_complaint_clocks

REPLAY_NOTE = (
    "Deadline replay: the due moments and on-time outcomes of the subtree's past complaints under the current"
    " and the candidate deadline policy."
)
MAX_DETAIL = 5000
"""Complaints listed one by one in a replay answer; totals always cover all of them."""
RECOMPUTED = "deadlines_recomputed"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# -- recompute ---------------------------------------------------------------------------------------
def _states(states: list[str] | None) -> list[str]:
    allowed = sorted(S.IN_ODR)
    if states is None:
        return allowed
    if not states:
        raise invalid("states", f"must not be empty (any of {', '.join(allowed)})")
    bad = [s for s in states if s not in S.IN_ODR]
    if bad:
        raise invalid("states", f"{', '.join(map(repr, bad))} is not an in-ODR state (allowed: {', '.join(allowed)})")
    return sorted(set(states))


def _due_moments(contact_due, close_due, policy, version) -> DueMoments:
    return DueMoments(contact_due=contact_due, close_due=close_due, deadline_policy=policy, deadline_policy_version=version)


async def recompute_deadlines(
    platform: Platform, tenant: str, principal: Principal, node: Node, *, dry_run: bool = False, states: list[str] | None = None
) -> RecomputeResult:
    """Recompute contact/close due moments of the open in-ODR complaints under ``node`` with the policy
    active now at each complaint's node (counted from its ``entered_odr_at``). One tenant transaction;
    with ``dry_run`` nothing is written."""
    chosen = _states(states)
    warning_before = dt.timedelta(hours=platform.settings.warning_before_hours)
    changes: list[DeadlineChange] = []
    async with tenant_transaction(tenant) as conn:
        rows = await conn.fetch(
            f"""SELECT id, number, state, node_code, entered_odr_at, contact_due, close_due, deadline_policy,
                       deadline_policy_version, contacted_at
                FROM complaints
                WHERE {subtree_sql(1)} AND state = ANY($2) AND entered_odr_at IS NOT NULL
                ORDER BY entered_odr_at, id""" + ("" if dry_run else " FOR UPDATE"),
            "/".join(node.path),
            chosen,
        )
        for row in rows:
            d = await complaint_deadlines(platform, tenant, row["node_code"], row["entered_odr_at"])
            before = _due_moments(row["contact_due"], row["close_due"], row["deadline_policy"], row["deadline_policy_version"])
            after = _due_moments(d.contact.due, d.close.due, d.policy, d.policy_version)
            if before == after:
                continue
            contacted = row["contacted_at"] is not None
            feedback_in = row["state"] == S.FEEDBACK_SUBMITTED
            change = DeadlineChange(
                complaint_id=str(row["id"]),
                number=row["number"],
                state=row["state"],
                node_code=row["node_code"],
                entered_odr_at=row["entered_odr_at"],
                before=before,
                after=after,
                contact_clocks="unchanged_contacted" if contacted else "rescheduled",
                close_clocks="unchanged_feedback_submitted" if feedback_in else "rescheduled",
                applied=not dry_run,
            )
            changes.append(change)
            if dry_run:
                continue
            await _apply_change(conn, principal, row, d, contacted, feedback_in, warning_before, before, after)
    return RecomputeResult(
        tenant=tenant, node=node.code, dry_run=dry_run, states=chosen, examined=len(rows), changed=len(changes), changes=changes
    )


async def _apply_change(conn, principal: Principal, row, d: ComplaintDeadlines, contacted: bool, feedback_in: bool,
                        warning_before: dt.timedelta, before: DueMoments, after: DueMoments) -> None:
    await conn.execute(
        """UPDATE complaints SET contact_due = $2, close_due = $3, deadline_policy = $4, deadline_policy_version = $5,
               deadlines = $6, updated_at = now(), version = version + 1
           WHERE id = $1""",
        row["id"],
        d.contact.due,
        d.close.due,
        d.policy,
        d.policy_version,
        msgspec.json.encode(d).decode(),
    )
    # A milestone already met keeps its clocks cancelled (None cancels what may still be pending).
    await schedule_complaint_clocks(
        conn,
        row["id"],
        None if contacted else d.contact.due,
        None if feedback_in else d.close.due,
        warning_before,
    )
    await conn.execute(
        """INSERT INTO complaint_events (complaint_id, kind, actor_id, actor_role, node_code, before, after, note)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        row["id"],
        RECOMPUTED,
        principal.id,
        principal.role.value,
        principal.node or row["node_code"],
        msgspec.json.encode(_event_body(before)).decode(),
        msgspec.json.encode(_event_body(after)).decode(),
        f"recomputed by {principal.username} with the policy active now ({d.plugin})",
    )


def _event_body(m: DueMoments) -> dict[str, Any]:
    return {
        "contact_due": _iso(m.contact_due),
        "close_due": _iso(m.close_due),
        "deadline_policy": m.deadline_policy,
        "deadline_policy_version": m.deadline_policy_version,
    }


# -- replay: outcomes and totals ---------------------------------------------------------------------
def outcome(due: dt.datetime, met_at: dt.datetime | None, in_odr: bool, now: dt.datetime) -> Outcome:
    if met_at is not None:
        return "on_time" if met_at <= due else "late"
    if in_odr:
        return "overdue" if now > due else "pending"
    return "not_applicable"


def _outcomes(d: ComplaintDeadlines, contacted_at, closed_at, in_odr: bool, now: dt.datetime) -> tuple[Outcome, Outcome]:
    """(contact, close) outcomes of the actual moments against the due moments ``d``."""
    return outcome(d.contact.due, contacted_at, in_odr, now), outcome(d.close.due, closed_at, in_odr, now)


class _Tally:
    def __init__(self) -> None:
        self.policies: set[str] = set()
        self.complaints = 0
        self.counts = {"contact": [0, 0, 0], "close": [0, 0, 0]}  # evaluated, on time, breaches

    def add(self, policy: str, contact: Outcome, close: Outcome) -> None:
        self.policies.add(policy)
        self.complaints += 1
        for milestone, result in (("contact", contact), ("close", close)):
            c = self.counts[milestone]
            if result in ("on_time", "late", "overdue"):
                c[0] += 1
            if result == "on_time":
                c[1] += 1
            if result in ("late", "overdue"):
                c[2] += 1

    def totals(self) -> PolicyTotals:
        (ce, ct, cb), (xe, xt, xb) = self.counts["contact"], self.counts["close"]
        return PolicyTotals(
            policies=sorted(self.policies),
            complaints=self.complaints,
            contact_evaluated=ce,
            contact_on_time=ct,
            on_time_contact_rate=round(ct / ce, 4) if ce else None,
            close_evaluated=xe,
            close_on_time=xt,
            on_time_close_rate=round(xt / xe, 4) if xe else None,
            contact_breaches=cb,
            close_breaches=xb,
            breaches=cb + xb,
        )


class _Pair:
    """A :class:`_Tally` per side (current, candidate)."""

    def __init__(self) -> None:
        self.current, self.candidate = _Tally(), _Tally()

    def add(self, cur: ComplaintDeadlines, oc: tuple[Outcome, Outcome], cand: ComplaintDeadlines,
            ox: tuple[Outcome, Outcome]) -> None:
        self.current.add(cur.plugin, *oc)
        self.candidate.add(cand.plugin, *ox)


def _ranks(items: list[tuple[Any, PolicyTotals]]) -> dict[Any, int]:
    """Competition ranking (1, 1, 3) by on-time close rate, then on-time contact rate; no rate last."""

    def key(t: PolicyTotals) -> tuple:
        return (
            t.on_time_close_rate is None,
            -(t.on_time_close_rate or 0.0),
            t.on_time_contact_rate is None,
            -(t.on_time_contact_rate or 0.0),
        )

    return competition_ranks((k, key(t)) for k, t in sorted(items, key=lambda kv: key(kv[1])))


# -- replay ------------------------------------------------------------------------------------------
COMPLAINTS_SQL = f"""SELECT c.id, c.number, c.state, c.node_code, c.enterprise_id, coalesce(e.name, c.company_name) AS enterprise_name,
                   c.entered_odr_at, c.contact_due, c.close_due, c.deadline_policy, c.contacted_at, c.closed_at
            FROM complaints c LEFT JOIN enterprises e ON e.id = c.enterprise_id
            WHERE {subtree_sql(1, 'c.node_path')} AND c.entered_odr_at IS NOT NULL
              {entered_odr_between_sql('              ')}
            ORDER BY c.entered_odr_at, c.number"""
"""The subtree's complaints that entered ODR in the period ($1 node path, $2 since, $3 until)."""


async def replay_deadlines(run: ReplayRun) -> ReplayResult:
    conn, now = run.conn, run.now
    rows = await conn.fetch(COMPLAINTS_SQL, run.path, run.since, run.until)
    met: dict[tuple[uuid.UUID, str], dt.datetime] = {}
    if rows:
        for e in await conn.fetch(
            """SELECT complaint_id, CASE WHEN kind = 'close' THEN 'close' ELSE 'contact' END AS milestone, min(at) AS at
               FROM complaint_events WHERE complaint_id = ANY($1) AND kind IN ('contact', 'feedback', 'close')
               GROUP BY 1, 2""",
            [r["id"] for r in rows],
        ):
            met[(e["complaint_id"], e["milestone"])] = e["at"]

    overall = _Pair()
    per_enterprise: dict[Any, tuple[str, _Pair]] = {}
    detail: list[ComplaintReplay] = []
    changed = 0
    for r in rows:
        where = run.nodes.get(r["node_code"])
        if where is None:
            continue
        start = r["entered_odr_at"]
        cur = run.current.deadlines(where, start)
        cand = run.hypo.deadlines(where, start)
        contacted_at = r["contacted_at"] or met.get((r["id"], "contact"))
        closed_at = r["closed_at"] or met.get((r["id"], "close"))
        in_odr = r["state"] in S.IN_ODR
        oc = _outcomes(cur, contacted_at, closed_at, in_odr, now)
        ox = _outcomes(cand, contacted_at, closed_at, in_odr, now)
        differs = oc != ox
        changed += differs
        overall.add(cur, oc, cand, ox)
        key = r["enterprise_id"]
        entry = per_enterprise.get(key)
        if entry is None:
            entry = per_enterprise[key] = (r["enterprise_name"], _Pair())
        entry[1].add(cur, oc, cand, ox)
        if len(detail) < MAX_DETAIL:
            detail.append(
                ComplaintReplay(
                    complaint_id=str(r["id"]),
                    number=r["number"],
                    state=r["state"],
                    node_code=r["node_code"],
                    enterprise_id=str(key) if key else None,
                    enterprise_name=r["enterprise_name"],
                    entered_odr_at=start,
                    contacted_at=contacted_at,
                    closed_at=closed_at,
                    given_contact_due=r["contact_due"],
                    given_close_due=r["close_due"],
                    given_policy=r["deadline_policy"],
                    current_policy=cur.plugin,
                    current_contact_due=cur.contact.due,
                    current_close_due=cur.close.due,
                    candidate_policy=cand.plugin,
                    candidate_contact_due=cand.contact.due,
                    candidate_close_due=cand.close.due,
                    current_contact=oc[0],
                    current_close=oc[1],
                    candidate_contact=ox[0],
                    candidate_close=ox[1],
                    differs=differs,
                )
            )

    totals = {k: (name, p.current.totals(), p.candidate.totals()) for k, (name, p) in per_enterprise.items()}
    current_ranks = _ranks([(k, v[1]) for k, v in totals.items()])
    candidate_ranks = _ranks([(k, v[2]) for k, v in totals.items()])
    enterprises = sorted(
        (
            EnterpriseReplay(
                enterprise_id=str(k) if k else None,
                name=name,
                complaints=cur_t.complaints,
                current=cur_t,
                candidate=cand_t,
                current_rank=current_ranks[k],
                candidate_rank=candidate_ranks[k],
            )
            for k, (name, cur_t, cand_t) in totals.items()
        ),
        key=lambda e: (e.current_rank, e.candidate_rank, e.name),
    )
    return ReplayResult(
        **run.header(REPLAY_NOTE),
        current=overall.current.totals(),
        candidate=overall.candidate.totals(),
        changed_outcomes=changed,
        enterprises=enterprises,
        complaints=detail,
        complaints_truncated=len(rows) > len(detail),
    )
