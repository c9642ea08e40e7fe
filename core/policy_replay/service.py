"""Deadline policy changes and the complaints they touch.

- :func:`recompute_deadlines`: complaints already in ODR keep the deadlines they were given when a
  policy changes. A bureau may recompute them explicitly: the due moments of the open in-ODR
  complaints under a node are derived again from ``entered_odr_at`` with the policy active now, the
  complaint updated, its timers re-scheduled and a ``deadlines_recomputed`` event written per changed
  complaint; one tenant transaction.
- :func:`replay`: what a candidate deadline plugin, activated hypothetically at a node, would have
  given the node's past complaints, compared with the current policy: due moments, on-time outcomes of
  the actual contact and close moments, totals per policy and per enterprise. Nothing is saved: the
  hypothetical activation exists only in memory, and the reads run in a tenant transaction that is
  rolled back explicitly (and is read-only).
- the same replay for a classification scheme (each ODR unit's class under the current scheme and the
  candidate, counts per class, the units that change class) and for a scoring formula (each unit's
  indicators over the period, aggregated in one SQL query in the tenant schema, scored and ranked by the
  current and the candidate formula).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Callable

import msgspec

from core.auth.principal import Principal
from core.complaints import states as S
from core.db.engine import tenant_transaction
from core.deadlines.service import ComplaintDeadlines, complaint_deadlines, deadlines_from_plan
from core.pluginhost.activations import (
    Activation,
    ActivationConflict,
    EffectivePolicy,
    conflicts,
    effective_policy,
    make_scope,
)
from core.policy_replay.schemas import (
    ClassificationReplayResult,
    ComplaintReplay,
    DeadlineChange,
    DueMoments,
    EnterpriseReplay,
    Outcome,
    PolicyTotals,
    RecomputeResult,
    ReplayResult,
    ScoringReplayResult,
    UnitClassReplay,
    UnitScoreReplay,
)
from core.pluginhost.host import PluginUnavailable
from core.runtime import Node, Platform
from core.timers.schedule import schedule_complaint_clocks
from odr_plugin_api import DayInfo, DeadlineRequest, Family, Indicators, Scope
from odr_plugin_api.types import EXCLUSIVE_FAMILIES

FAMILIES = (Family.DEADLINE_POLICY, Family.CLASSIFICATION, Family.SCORING)
FAMILIES_SUPPORTED = [f.value for f in FAMILIES]
REPLAY_NOTE = (
    "Deadline replay: the due moments and on-time outcomes of the subtree's past complaints under the current"
    " and the candidate deadline policy."
)
CLASSIFICATION_NOTE = (
    "Classification replay: every ODR unit (active or suspended) of the subtree classified from its declared"
    " facts under the current policy and under the candidate; since/until do not apply."
)
SCORING_NOTE = (
    "Scoring replay: each ODR unit's indicators over the period (complaints that entered ODR in it), its class"
    " under the current policy, scored by the current and the candidate formula; untrue-feedback findings and"
    " the previous period are not counted (0 and None). Units that handled no complaint get no score."
)
MAX_DETAIL = 5000
"""Complaints listed one by one in a replay answer; totals always cover all of them."""
RECOMPUTED = "deadlines_recomputed"


def _invalid(field: str, problem: str) -> msgspec.ValidationError:
    """A 400 naming ``field`` (the API reads the ``- at `$.field``` suffix)."""
    return msgspec.ValidationError(f"{problem} - at `$.{field}`")


class UnsupportedPlugin(msgspec.ValidationError):
    """The replay cannot use this plugin (not loaded, or outside the supported families): a 400
    naming ``plugin`` that lists ``families_supported``."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem} - at `$.plugin`")
        self.problem = problem
        self.families_supported = list(FAMILIES_SUPPORTED)


def _subtree_sql(first: int) -> str:
    return f"(node_path = ${first} OR node_path LIKE ${first} || '/%')"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# -- recompute ---------------------------------------------------------------------------------------
def _states(states: list[str] | None) -> list[str]:
    allowed = sorted(S.IN_ODR)
    if states is None:
        return allowed
    if not states:
        raise _invalid("states", f"must not be empty (any of {', '.join(allowed)})")
    bad = [s for s in states if s not in S.IN_ODR]
    if bad:
        raise _invalid("states", f"{', '.join(map(repr, bad))} is not an in-ODR state (allowed: {', '.join(allowed)})")
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
                WHERE {_subtree_sql(1)} AND state = ANY($2) AND entered_odr_at IS NOT NULL
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


# -- replay: the hypothetical policy -----------------------------------------------------------------
def candidate_family(platform: Platform, plugin: str) -> Family:
    """The replayable family of ``plugin`` (deadline policy first, then classification, then scoring);
    :class:`UnsupportedPlugin` otherwise."""
    info = platform.host.infos.get(plugin)
    if info is None:
        raise UnsupportedPlugin(f"{plugin!r} is not an installed and loaded plugin")
    for family in FAMILIES:
        if family in info.families:
            return family
    families = ", ".join(f.value for f in info.families) or "no family"
    raise UnsupportedPlugin(
        f"{plugin!r} is a {families} plugin; replay supports the {', '.join(FAMILIES_SUPPORTED)} families only"
    )


def validate_candidate(platform: Platform, plugin: str, config: dict | None) -> tuple[Any, dict | None]:
    """The candidate's decoded config and its stored (builtins) form; 400 naming ``plugin`` or
    ``config.<field>``."""
    host = platform.host
    candidate_family(platform, plugin)
    try:
        decoded = host.decode_config(plugin, config)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if "- at `$" in message:
            raise msgspec.ValidationError(message.replace("- at `$", "- at `$.config")) from None
        raise _invalid("config", message) from None
    return decoded, (msgspec.to_builtins(decoded) if decoded is not None else None)


def candidate_activations(
    platform: Platform, current: EffectivePolicy, activations: list[Activation], node: Node, plugin: str, config: dict | None
) -> tuple[list[Activation], list[str]]:
    """The loaded activations plus the candidate activated at ``node`` (and the current non-default
    deciders of its exclusive families there deactivated), as a save would leave them. In memory only."""
    host = platform.host
    families = {f for f in host.infos[plugin].families if f in EXCLUSIVE_FAMILIES}
    replaced = sorted(
        c.plugin
        for c in current.choices
        if c.active and not c.default and c.plugin != plugin and families & set(host.infos[c.plugin].families)
    )
    touched = {plugin, *replaced}
    synthetic = [a for a in activations if not (a.node_code == node.code and a.plugin in touched)]
    synthetic.append(Activation(node_code=node.code, plugin=plugin, active=True, config=config, updated_by="replay"))
    synthetic += [Activation(node_code=node.code, plugin=r, active=False, updated_by="replay") for r in replaced]
    return synthetic, replaced


class _Hypothetical:
    """Effective policy, scope and a memoised calendar per node under a given list of activations
    (the loaded ones, or those with the candidate added), kept out of the platform's caches."""

    def __init__(self, platform: Platform, tenant: str, activations: list[Activation]) -> None:
        self.platform = platform
        self.tenant = tenant
        self.activations = activations
        self._nodes: dict[str, tuple] = {}

    def policy(self, node: Node) -> EffectivePolicy:
        return self._at(node)[0]

    def scope(self, node: Node) -> tuple[Scope, frozenset[str]]:
        policy, scope, _ = self._at(node)
        return scope, policy.active

    def _at(self, node: Node) -> tuple:
        got = self._nodes.get(node.code)
        if got is None:
            host = self.platform.host
            policy = effective_policy(host, self.tenant, node.path, self.activations)
            scope = make_scope(host, policy)
            memo: dict[dt.date, DayInfo] = {}

            def day_info(day: dt.date, scope=scope, active=policy.active, memo=memo) -> DayInfo:
                info = memo.get(day)
                if info is None:
                    info, _ = host.call_first("odr_calendar_day", active=active, scope=scope, day=day)
                    memo[day] = info
                return info

            got = self._nodes[node.code] = (policy, scope, day_info)
        return got

    def deadlines(self, node: Node, start: dt.datetime) -> ComplaintDeadlines:
        policy, scope, day_info = self._at(node)
        plan, plugin = self.platform.host.call_first(
            "odr_deadline_policy", active=policy.active, scope=scope, request=DeadlineRequest(start=start)
        )
        return deadlines_from_plan(plan, plugin, start, day_info)


# -- replay: outcomes and totals ---------------------------------------------------------------------
def outcome(due: dt.datetime, met_at: dt.datetime | None, in_odr: bool, now: dt.datetime) -> Outcome:
    if met_at is not None:
        return "on_time" if met_at <= due else "late"
    if in_odr:
        return "overdue" if now > due else "pending"
    return "not_applicable"


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


def _ranks(items: list[tuple[Any, PolicyTotals]]) -> dict[Any, int]:
    """Competition ranking (1, 1, 3) by on-time close rate, then on-time contact rate; no rate last."""

    def key(t: PolicyTotals) -> tuple:
        return (
            t.on_time_close_rate is None,
            -(t.on_time_close_rate or 0.0),
            t.on_time_contact_rate is None,
            -(t.on_time_contact_rate or 0.0),
        )

    ordered = sorted(items, key=lambda kv: key(kv[1]))
    ranks: dict[Any, int] = {}
    previous = None
    for position, (k, t) in enumerate(ordered, start=1):
        if previous is None or key(t) != previous[1]:
            previous = (position, key(t))
        ranks[k] = previous[0]
    return ranks


class _RolledBack(Exception):
    """Carries the replay's answer out of its transaction, which rolls back on the way."""

    def __init__(self, result: ReplayResult) -> None:
        super().__init__("replay: rolled back")
        self.result = result


# -- replay ------------------------------------------------------------------------------------------
async def replay(
    platform: Platform, tenant: str, node: Node, *, plugin: str, config: dict | None,
    since: dt.date | None = None, until: dt.date | None = None, now: Callable[[], dt.datetime] | None = None,
) -> ReplayResult | ClassificationReplayResult | ScoringReplayResult:
    """Compare the current policy with ``plugin`` (``config``) activated hypothetically at ``node``,
    in the plugin's family: a deadline policy over the complaints of the node's subtree that entered ODR
    (between ``since`` and ``until``, Asia/Shanghai days, inclusive); a classification scheme over the
    subtree's ODR units; a scoring formula over the units' indicators of that period. Writes nothing."""
    family = candidate_family(platform, plugin)
    _, stored = validate_candidate(platform, plugin, config)
    if since is not None and until is not None and since > until:
        raise _invalid("until", f"{until} is before since ({since})")
    run = {Family.DEADLINE_POLICY: _replay, Family.CLASSIFICATION: _replay_classification,
           Family.SCORING: _replay_scoring}[family]
    try:
        async with tenant_transaction(tenant) as conn:
            await conn.execute("SET TRANSACTION READ ONLY")
            result = await run(platform, conn, tenant, node, plugin, stored, since, until,
                               (now or (lambda: dt.datetime.now(dt.timezone.utc)))())
            raise _RolledBack(result)  # explicit: nothing of this transaction is ever committed
    except _RolledBack as done:
        return done.result


async def _sides(platform: Platform, tenant: str, node: Node, plugin: str, stored: dict | None):
    """The tenant's nodes, the current and the hypothetical policies and the plugins the candidate
    would switch off at ``node``; :class:`ActivationConflict` where a save would be refused."""
    nodes = await platform.nodes(tenant)
    activations = list(await platform.activations(tenant))  # one snapshot for both sides
    current = _Hypothetical(platform, tenant, activations)
    synthetic, replaced = candidate_activations(platform, current.policy(node), activations, node, plugin, stored)
    hypo = _Hypothetical(platform, tenant, synthetic)
    subtree = [n for n in nodes.values() if n.path[: len(node.path)] == node.path]
    for n in sorted(subtree, key=lambda x: x.path):  # what a save would refuse, a replay refuses too
        problems = conflicts(platform.host, hypo.policy(n).active)
        if problems:
            where = "" if n.code == node.code else f" at node {n.code}"
            raise ActivationConflict(
                "; ".join(problems) + where + f". Activating {plugin} at {node.code} would not be allowed;"
                " deactivate the other plugin first, or replay at that node."
            )
    return nodes, current, hypo, replaced


async def _replay(platform, conn, tenant, node: Node, plugin, stored, since, until, now: dt.datetime) -> ReplayResult:
    nodes, current, hypo, replaced = await _sides(platform, tenant, node, plugin, stored)
    rows = await conn.fetch(
        f"""SELECT c.id, c.number, c.state, c.node_code, c.enterprise_id, coalesce(e.name, c.company_name) AS enterprise_name,
                   c.entered_odr_at, c.contact_due, c.close_due, c.deadline_policy, c.contacted_at, c.closed_at
            FROM complaints c LEFT JOIN enterprises e ON e.id = c.enterprise_id
            WHERE {_subtree_sql(1).replace('node_path', 'c.node_path')} AND c.entered_odr_at IS NOT NULL
              AND ($2::date IS NULL OR (c.entered_odr_at AT TIME ZONE 'Asia/Shanghai')::date >= $2)
              AND ($3::date IS NULL OR (c.entered_odr_at AT TIME ZONE 'Asia/Shanghai')::date <= $3)
            ORDER BY c.entered_odr_at, c.number""",
        "/".join(node.path),
        since,
        until,
    )
    met: dict[tuple[uuid.UUID, str], dt.datetime] = {}
    if rows:
        for e in await conn.fetch(
            """SELECT complaint_id, CASE WHEN kind = 'close' THEN 'close' ELSE 'contact' END AS milestone, min(at) AS at
               FROM complaint_events WHERE complaint_id = ANY($1) AND kind IN ('contact', 'feedback', 'close')
               GROUP BY 1, 2""",
            [r["id"] for r in rows],
        ):
            met[(e["complaint_id"], e["milestone"])] = e["at"]

    current_tally, candidate_tally = _Tally(), _Tally()
    per_enterprise: dict[Any, tuple[str, _Tally, _Tally]] = {}
    detail: list[ComplaintReplay] = []
    changed = 0
    for r in rows:
        where = nodes.get(r["node_code"])
        if where is None:
            continue
        start = r["entered_odr_at"]
        cur = current.deadlines(where, start)
        cand = hypo.deadlines(where, start)
        contacted_at = r["contacted_at"] or met.get((r["id"], "contact"))
        closed_at = r["closed_at"] or met.get((r["id"], "close"))
        in_odr = r["state"] in S.IN_ODR
        oc = (outcome(cur.contact.due, contacted_at, in_odr, now), outcome(cur.close.due, closed_at, in_odr, now))
        ox = (outcome(cand.contact.due, contacted_at, in_odr, now), outcome(cand.close.due, closed_at, in_odr, now))
        differs = oc != ox
        changed += differs
        current_tally.add(cur.plugin, *oc)
        candidate_tally.add(cand.plugin, *ox)
        key = r["enterprise_id"]
        entry = per_enterprise.get(key)
        if entry is None:
            entry = per_enterprise[key] = (r["enterprise_name"], _Tally(), _Tally())
        entry[1].add(cur.plugin, *oc)
        entry[2].add(cand.plugin, *ox)
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

    totals = {k: (name, cur_t.totals(), cand_t.totals()) for k, (name, cur_t, cand_t) in per_enterprise.items()}
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
        tenant=tenant,
        node=node.code,
        plugin=plugin,
        config=stored,
        since=since,
        until=until,
        dry_run=True,
        families_supported=list(FAMILIES_SUPPORTED),
        note=REPLAY_NOTE,
        deactivated=replaced,
        evaluated_at=now,
        current=current_tally.totals(),
        candidate=candidate_tally.totals(),
        changed_outcomes=changed,
        enterprises=enterprises,
        complaints=detail,
        complaints_truncated=len(rows) > len(detail),
    )


# -- replay: classification and scoring --------------------------------------------------------------
UNITS_SQL = f"""SELECT e.id, e.name, e.node_code, e.unit_type, e.status, e.industry, e.employees, e.annual_revenue_cny,
           e.business_scope
    FROM enterprises e JOIN jurisdictions j ON j.code = e.node_code
    WHERE {_subtree_sql(1).replace('node_path', 'j.path')} AND e.status IN ('active', 'suspended')
    ORDER BY e.name, e.id"""


def _classify(platform: Platform, side: _Hypothetical, node: Node, row) -> dict | None:
    """The class of the unit ``row`` under ``side`` (the scheme active at its node), or None."""
    from core.enterprises.service import classify  # the platform's own reading of a unit's facts

    scope, active = side.scope(node)
    return classify(platform, scope, active, row)


def _counts(values: list[str | None]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v or ""] = out.get(v or "", 0) + 1
    return dict(sorted(out.items()))


async def _replay_classification(platform, conn, tenant, node: Node, plugin, stored, since, until,
                                 now: dt.datetime) -> ClassificationReplayResult:
    nodes, current, hypo, replaced = await _sides(platform, tenant, node, plugin, stored)
    units: list[UnitClassReplay] = []
    for row in await conn.fetch(UNITS_SQL, "/".join(node.path)):
        where = nodes.get(row["node_code"])
        if where is None:
            continue
        cur = _classify(platform, current, where, row)
        cand = _classify(platform, hypo, where, row)
        cur_key = (cur or {}).get("plugin"), (cur or {}).get("code")
        cand_key = (cand or {}).get("plugin"), (cand or {}).get("code")
        units.append(
            UnitClassReplay(
                enterprise_id=str(row["id"]),
                name=row["name"],
                node_code=row["node_code"],
                unit_type=row["unit_type"],
                status=row["status"],
                current_scheme=cur_key[0],
                current_class=cur_key[1],
                current_label=(cur or {}).get("label"),
                candidate_scheme=cand_key[0],
                candidate_class=cand_key[1],
                candidate_label=(cand or {}).get("label"),
                changed=cur_key != cand_key,
            )
        )
    changes = [u for u in units if u.changed]
    return ClassificationReplayResult(
        tenant=tenant,
        node=node.code,
        plugin=plugin,
        config=stored,
        since=since,
        until=until,
        dry_run=True,
        families_supported=list(FAMILIES_SUPPORTED),
        note=CLASSIFICATION_NOTE,
        deactivated=replaced,
        evaluated_at=now,
        units=len(units),
        current_schemes=sorted({u.current_scheme for u in units if u.current_scheme}),
        candidate_schemes=sorted({u.candidate_scheme for u in units if u.candidate_scheme}),
        current_counts=_counts([u.current_class for u in units]),
        candidate_counts=_counts([u.candidate_class for u in units]),
        changed=len(changes),
        changes=changes,
        all_units=units,
    )


INDICATORS_SQL = f"""
WITH units AS (
    SELECT e.id, e.name, e.node_code, e.unit_type, e.status, e.industry, e.employees, e.annual_revenue_cny,
           e.business_scope
    FROM enterprises e JOIN jurisdictions j ON j.code = e.node_code
    WHERE {_subtree_sql(1).replace('node_path', 'j.path')} AND e.status IN ('active', 'suspended', 'revoked')
), period AS (
    SELECT c.id, c.enterprise_id, c.entered_odr_at, c.contacted_at, c.contact_due, c.closed_at, c.close_due,
           c.feedback, c.settled, c.rating, c.breaches
    FROM complaints c
    WHERE c.enterprise_id IN (SELECT id FROM units) AND c.entered_odr_at IS NOT NULL
      AND ($2::date IS NULL OR (c.entered_odr_at AT TIME ZONE 'Asia/Shanghai')::date >= $2)
      AND ($3::date IS NULL OR (c.entered_odr_at AT TIME ZONE 'Asia/Shanghai')::date <= $3)
), fed AS (
    SELECT ev.complaint_id, min(ev.at) AS at FROM complaint_events ev
    WHERE ev.kind = 'feedback' AND ev.complaint_id IN (SELECT id FROM period)
    GROUP BY ev.complaint_id
)
SELECT u.id, u.name, u.node_code, u.unit_type, u.status, u.industry, u.employees, u.annual_revenue_cny, u.business_scope,
       count(p.id) AS handled,
       count(p.id) FILTER (WHERE p.feedback IS NOT NULL) AS with_feedback,
       count(p.id) FILTER (WHERE p.feedback IS NOT NULL AND p.settled) AS settled,
       avg(p.rating)::float8 AS satisfaction,
       (avg(extract(epoch FROM coalesce(p.closed_at, f.at) - p.entered_odr_at))
            FILTER (WHERE coalesce(p.closed_at, f.at) IS NOT NULL) / 86400.0)::float8 AS avg_cycle_days,
       count(p.id) FILTER (WHERE p.contacted_at IS NOT NULL) AS contacted,
       count(p.id) FILTER (WHERE p.contacted_at <= p.contact_due) AS contacted_on_time,
       count(p.id) FILTER (WHERE p.closed_at IS NOT NULL) AS closed,
       count(p.id) FILTER (WHERE p.closed_at <= p.close_due) AS closed_on_time,
       coalesce(sum(coalesce(array_length(p.breaches, 1), 0)), 0)::int AS breaches
FROM units u
LEFT JOIN period p ON p.enterprise_id = u.id
LEFT JOIN fed f ON f.complaint_id = p.id
GROUP BY u.id, u.name, u.node_code, u.unit_type, u.status, u.industry, u.employees, u.annual_revenue_cny, u.business_scope
ORDER BY u.name, u.id
"""


def _rate(part: int, whole: int) -> float:
    """A rate for :class:`Indicators` (which wants a number): 0.0 without a denominator."""
    return part / whole if whole else 0.0


def indicators_from_row(row, enterprise_class: str | None) -> Indicators | None:
    """One unit's period indicators from a row of :data:`INDICATORS_SQL`; None when it handled nothing."""
    if not row["handled"]:
        return None
    return Indicators(
        handled=row["handled"],
        settlement_rate=_rate(row["settled"], row["with_feedback"]),
        satisfaction=row["satisfaction"],
        avg_cycle_days=row["avg_cycle_days"],
        on_time_contact_rate=_rate(row["contacted_on_time"], row["contacted"]),
        on_time_close_rate=_rate(row["closed_on_time"], row["closed"]),
        breaches=row["breaches"],
        enterprise_class=enterprise_class,
    )


def _score(platform: Platform, side: _Hypothetical, node: Node, indicators: Indicators | None):
    """(score result, formula) under ``side``; (None, None) without indicators or an active formula."""
    if indicators is None:
        return None, None
    scope, active = side.scope(node)
    try:
        return platform.host.call_first("odr_score_enterprise", active=active, scope=scope, indicators=indicators)
    except PluginUnavailable:
        return None, None


def score_ranks(scores: dict[Any, float | None]) -> dict[Any, int | None]:
    """Competition ranking (1, 1, 3) by score, highest first; None for no score."""
    ordered = sorted((v, k) for k, v in scores.items() if v is not None)
    ordered.reverse()
    ranks: dict[Any, int | None] = {k: None for k in scores}
    previous: tuple[float, int] | None = None
    for position, (value, k) in enumerate(ordered, start=1):
        if previous is None or value != previous[0]:
            previous = (value, position)
        ranks[k] = previous[1]
    return ranks


async def _replay_scoring(platform, conn, tenant, node: Node, plugin, stored, since, until,
                          now: dt.datetime) -> ScoringReplayResult:
    nodes, current, hypo, replaced = await _sides(platform, tenant, node, plugin, stored)
    rows = await conn.fetch(INDICATORS_SQL, "/".join(node.path), since, until)
    entries = []
    for row in rows:
        where = nodes.get(row["node_code"])
        if where is None or (row["status"] == "revoked" and not row["handled"]):
            continue
        cls = _classify(platform, current, where, row)
        indicators = indicators_from_row(row, cls["code"] if cls else None)
        cur, cur_formula = _score(platform, current, where, indicators)
        cand, cand_formula = _score(platform, hypo, where, indicators)
        entries.append((row, cls, indicators, cur, cur_formula, cand, cand_formula))
    cur_ranks = score_ranks({e[0]["id"]: e[3].score if e[3] else None for e in entries})
    cand_ranks = score_ranks({e[0]["id"]: e[5].score if e[5] else None for e in entries})
    units = []
    for row, cls, indicators, cur, cur_formula, cand, cand_formula in entries:
        cr, xr = cur_ranks[row["id"]], cand_ranks[row["id"]]
        units.append(
            UnitScoreReplay(
                enterprise_id=str(row["id"]),
                name=row["name"],
                node_code=row["node_code"],
                status=row["status"],
                enterprise_class=cls["code"] if cls else None,
                indicators=indicators,
                current_formula=cur_formula,
                current_score=cur.score if cur else None,
                current_parts=dict(cur.parts) if cur else None,
                candidate_formula=cand_formula,
                candidate_score=cand.score if cand else None,
                candidate_parts=dict(cand.parts) if cand else None,
                current_rank=cr,
                candidate_rank=xr,
                rank_change=(cr - xr) if cr is not None and xr is not None else None,
            )
        )
    units.sort(key=lambda u: (u.current_rank is None, u.current_rank or 0, u.candidate_rank is None,
                              u.candidate_rank or 0, u.name))
    return ScoringReplayResult(
        tenant=tenant,
        node=node.code,
        plugin=plugin,
        config=stored,
        since=since,
        until=until,
        dry_run=True,
        families_supported=list(FAMILIES_SUPPORTED),
        note=SCORING_NOTE,
        deactivated=replaced,
        evaluated_at=now,
        current_formulas=sorted({u.current_formula for u in units if u.current_formula}),
        candidate_formulas=sorted({u.candidate_formula for u in units if u.candidate_formula}),
        units=units,
        rank_changes=sum(1 for u in units if u.current_rank != u.candidate_rank),
    )
