"""Evaluation runs (Art. 20-21), reproduction, publication (Art. 23) and exit proposals (Art. 22).

Contracts:

- A provincial admin defines periods (:mod:`core.evaluation.periods`) and runs evaluations of them. A run scores every active or suspended ODR unit
  of the province with the scoring plugin active for the unit's node (first answer among the plugins
  active there; a failing plugin is skipped, as everywhere), ranks the scored units within their class
  (competition ranking, highest score first) and stores, in ONE transaction: the run and its settings,
  per node the scoring plugins active there with their versions and configurations, and per unit its
  indicators (exactly the :class:`odr_plugin_api.Indicators` the plugin saw), score, parts, rank,
  Art. 21 candidacy and whether it fell below the exit threshold. Stored results are immutable.
- :func:`reproduce` scores a stored run again from its stored indicators with the stored plugins and
  configurations (whatever is configured now) and reports whether every score and part is identical.
- Publishing a run closes its period with that run as the period's result; a closed period takes no
  new runs (reproduce it instead). Published runs are what the public pages show.
- After a run, units below the threshold in ``exit_consecutive_periods`` contiguous periods of the same
  kind (each earlier period counted by its result: its final run, else its latest) are proposed for
  revocation on the Art. 22(3) ground, unless already proposed and undecided. Proposals can also be
  raised from a complaint or a spot check (:mod:`core.evaluation.proposals`); the reviewing bureau decides (revoke: the unit's status,
  accounts and timers change in the same transaction as the decision; or dismiss), with a note.
"""

from __future__ import annotations

import datetime as dt
import operator
import time
import uuid
from collections import defaultdict
from typing import Any

import asyncpg
import msgspec

from core.api.errors import Conflict, NotFound
from core.auth.principal import Principal
from core.db.engine import tenant_transaction
from core.enterprises.common import FieldError
from core.evaluation import schemas as S
from core.evaluation.access import parse_id, require_bureau, require_province_admin
from core.evaluation.periods import MONTHS, PERIOD_COLUMNS, TZ, add_months, day_start, period_of
from core.evaluation.sql import CLASS_SUMMARY_SQL, RESULT_COLUMNS, UNIT_INDICATORS_SQL, WORK_MEM
from core.pluginhost.host import PluginUnavailable
from core.policy_replay.common import competition_ranks
from core.runtime import Node, Platform
from odr_plugin_api import Family, Indicators, Scope

_RESULT_READ = """enterprise_id, name, credit_code, node_code, enterprise_class, handled, with_feedback, settled,
    settlement_rate, rated, satisfaction, closed, avg_cycle_days, p90_cycle_days, on_time_contact_rate,
    on_time_close_rate, breaches, amount_recovered, complaints_previous_period, score, score_parts, plugin,
    plugin_version, class_rank, class_size, candidate, below_threshold,
    coalesce((indicators->>'untrue_feedback_findings')::int, 0) AS untrue_feedback_findings"""


# -- running -----------------------------------------------------------------------------------------
def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _indicators(row: asyncpg.Record) -> Indicators:
    """What the scoring plugin sees. Rates without a denominator are 0.0 (the Struct wants numbers; the
    stored result keeps them NULL), as in the scoring replay."""
    return Indicators(
        handled=row["handled"],
        settlement_rate=_rate(row["settled"], row["with_feedback"]) or 0.0,
        satisfaction=row["satisfaction"],
        avg_cycle_days=row["avg_cycle_days"],
        on_time_contact_rate=_rate(row["contact_on_time"], row["contact_judged"]) or 0.0,
        on_time_close_rate=_rate(row["close_on_time"], row["close_judged"]) or 0.0,
        breaches=row["breaches"],
        untrue_feedback_findings=row["untrue_feedback"],
        complaints_previous_period=row["previous"],
        enterprise_class=row["cls"],
    )


class _NodeScorer:
    """The scoring plugins active at one node, resolved once per run."""

    def __init__(self, platform: Platform, scope: Scope, active: frozenset[str]) -> None:
        host = platform.host
        self.host = host
        self.scope = scope
        self.plugins = sorted(n for n in active if Family.SCORING in host.infos[n].families)
        self._call = host.first_caller("odr_score_enterprise", active=active)

    def policies(self) -> list[tuple[str, str, str | None]]:
        """(plugin, version, config JSON) of the scoring plugins active here."""
        out = []
        for name in self.plugins:
            cfg = self.scope.configs.get(name)
            if cfg is None and self.host.infos[name].config is not None:
                cfg = self.host.infos[name].config()
            out.append((name, self.host.infos[name].version,
                        None if cfg is None else msgspec.json.encode(msgspec.to_builtins(cfg)).decode()))
        return out

    def score(self, indicators: Indicators):
        try:
            return self._call(scope=self.scope, indicators=indicators)
        except PluginUnavailable:
            return None, None


def _rank_within_class(entries: list[dict]) -> None:
    by_class: dict[str, list[dict]] = defaultdict(list)
    for e in entries:
        if e["score"] is not None:
            by_class[e["enterprise_class"] or ""].append(e)
    for members in by_class.values():
        members.sort(key=lambda e: (-e["score"], e["name"], str(e["enterprise_id"])))
        ranks = competition_ranks((id(e), e["score"]) for e in members)
        for e in members:
            e["class_rank"] = ranks[id(e)]
            e["class_size"] = len(members)


async def run_evaluation(
    platform: Platform, tenant: str, principal: Principal, period_id: str, settings: S.EvaluationSettings
) -> S.Evaluation:
    require_province_admin(principal, tenant)
    pid = parse_id("period", period_id)
    await platform.tenant(tenant)
    started_at = dt.datetime.now(dt.timezone.utc)
    async with tenant_transaction(tenant) as conn:
        period = await conn.fetchrow(f"SELECT {PERIOD_COLUMNS} FROM evaluation_periods WHERE id = $1 FOR UPDATE", pid)
        if period is None:
            raise NotFound("evaluation period not found")
        if period["status"] == "closed":
            raise Conflict(f"period {period['label']} is closed: its result is kept; reproduce it instead",
                           ["reproduce"])
        if period["starts_on"] > dt.datetime.now(TZ).date():
            raise FieldError("period", f"period {period['label']} has not started yet", 409)
        kind = S.PeriodKind(period["kind"])
        start, end = day_start(period["starts_on"]), day_start(period["ends_on"] + dt.timedelta(days=1))
        previous_start = day_start(add_months(period["starts_on"], -MONTHS[kind]))
        await conn.execute(f"SELECT set_config('work_mem', '{WORK_MEM}', true), set_config('jit', 'off', true)")
        clock = time.perf_counter()
        phases: dict[str, float] = {}
        rows = await conn.fetch(UNIT_INDICATORS_SQL, start, end, previous_start)
        phases["indicators_sql"], clock = time.perf_counter() - clock, time.perf_counter()

        scorers: dict[str, _NodeScorer] = {}
        entries: list[dict] = []
        for row in rows:
            node_code = row["node_code"]
            scorer = scorers.get(node_code)
            if scorer is None:
                scope, active = await platform.scope(tenant, node_code)
                scorer = scorers[node_code] = _NodeScorer(platform, scope, active)
            indicators = _indicators(row)
            result, plugin = (None, None)
            if row["handled"] >= settings.min_handled:
                result, plugin = scorer.score(indicators)
            score = result.score if result is not None else None
            entries.append({
                "enterprise_id": row["id"], "name": row["name"], "credit_code": row["credit_code"],
                "node_code": node_code, "node_path": row["node_path"], "enterprise_class": row["cls"],
                "handled": row["handled"], "with_feedback": row["with_feedback"], "settled": row["settled"],
                "settlement_rate": _rate(row["settled"], row["with_feedback"]), "rated": row["rated"],
                "satisfaction": row["satisfaction"], "closed": row["closed"],
                "avg_cycle_days": row["avg_cycle_days"], "p90_cycle_days": row["p90_cycle_days"],
                "on_time_contact_rate": _rate(row["contact_on_time"], row["contact_judged"]),
                "on_time_close_rate": _rate(row["close_on_time"], row["close_judged"]),
                "breaches": row["breaches"], "amount_recovered": row["amount_recovered"],
                "complaints_previous_period": row["previous"],
                "indicators": msgspec.json.encode(indicators).decode(),
                "score": score,
                "score_parts": msgspec.json.encode(dict(result.parts)).decode() if result is not None else None,
                "plugin": plugin, "plugin_version": platform.host.infos[plugin].version if plugin else None,
                "class_rank": None, "class_size": None,
                "candidate": False,
                "below_threshold": score is not None and score < settings.exit_threshold,
            })
        phases["scoring"], clock = time.perf_counter() - clock, time.perf_counter()
        _rank_within_class(entries)
        for e in entries:
            e["candidate"] = (e["class_rank"] is not None and e["class_rank"] <= settings.candidate_top
                              and e["score"] >= settings.candidate_min_score)

        phases["ranking"], clock = time.perf_counter() - clock, time.perf_counter()
        evaluation_id = uuid.uuid4()
        run_no = await conn.fetchval(
            "SELECT coalesce(max(run_no), 0) + 1 FROM evaluations WHERE period_id = $1", pid)
        await conn.execute(
            """INSERT INTO evaluations (id, period_id, run_no, settings, started_by, started_at, finished_at, units, scored)
               VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp(), $7, $8)""",
            evaluation_id, pid, run_no, msgspec.json.encode(settings).decode(), principal.id, started_at,
            len(entries), sum(1 for e in entries if e["score"] is not None),
        )
        for e in entries:
            e["evaluation_id"] = evaluation_id
        record = operator.itemgetter(*RESULT_COLUMNS)
        await conn.copy_records_to_table(
            "evaluation_results", records=[record(e) for e in entries],
            columns=list(RESULT_COLUMNS),
        )
        await conn.executemany(
            "INSERT INTO evaluation_policies (evaluation_id, node_code, plugin, plugin_version, config) VALUES ($1, $2, $3, $4, $5)",
            [(evaluation_id, code, *p) for code, scorer in scorers.items() for p in scorer.policies()],
        )
        phases["storing"], clock = time.perf_counter() - clock, time.perf_counter()
        raised = await _propose_exits(conn, principal, period, evaluation_id, settings)
        view = await _evaluation(conn, evaluation_id)
        phases["proposals_and_summary"], clock = time.perf_counter() - clock, time.perf_counter()
    phases["commit"] = time.perf_counter() - clock
    view.proposals_raised = raised
    view.phase_seconds = {k: round(v, 3) for k, v in phases.items()}
    return view


async def _propose_exits(conn, principal: Principal, period, evaluation_id: uuid.UUID,
                         settings: S.EvaluationSettings) -> int:
    """Art. 22(3) proposals for units low in ``exit_consecutive_periods`` contiguous periods; their number."""
    needed = settings.exit_consecutive_periods - 1
    chain: list[uuid.UUID] = []
    labels = [period["label"]]
    if needed:
        earlier = await conn.fetch(
            """SELECT p.label, p.starts_on, p.ends_on,
                      coalesce(p.final_evaluation_id,
                               (SELECT id FROM evaluations e WHERE e.period_id = p.id ORDER BY run_no DESC LIMIT 1)) AS result
               FROM evaluation_periods p WHERE p.kind = $1 AND p.starts_on < $2 ORDER BY p.starts_on DESC LIMIT $3""",
            period["kind"], period["starts_on"], needed,
        )
        expected_end = period["starts_on"] - dt.timedelta(days=1)
        for p in earlier:
            if p["ends_on"] != expected_end or p["result"] is None:
                break
            chain.append(p["result"])
            labels.append(p["label"])
            expected_end = p["starts_on"] - dt.timedelta(days=1)
        if len(chain) < needed:
            return 0
    detail = (f"Art. 22(3): score below {settings.exit_threshold:g} in {settings.exit_consecutive_periods} consecutive "
              f"{period['kind']} period(s) ({', '.join(reversed(labels))})")
    status = await conn.execute(
        """INSERT INTO revocation_proposals (enterprise_id, ground, source, evaluation_id, detail, raised_by)
           SELECT r.enterprise_id, 'low_settlement_rate', 'evaluation', $1, $2, $3
           FROM evaluation_results r
           WHERE r.evaluation_id = $1 AND r.below_threshold
             AND (cardinality($4::uuid[]) = 0 OR r.enterprise_id IN (
                   SELECT enterprise_id FROM evaluation_results
                   WHERE evaluation_id = ANY ($4::uuid[]) AND below_threshold
                   GROUP BY enterprise_id HAVING count(*) = cardinality($4::uuid[])))
             AND NOT EXISTS (SELECT 1 FROM revocation_proposals x
                             WHERE x.enterprise_id = r.enterprise_id AND x.status = 'proposed'
                               AND x.ground = 'low_settlement_rate')""",
        evaluation_id, detail, principal.id, chain,
    )
    return int(status.split()[-1])


# -- reading -----------------------------------------------------------------------------------------
async def _evaluation(conn, evaluation_id: uuid.UUID) -> S.Evaluation:
    row = await conn.fetchrow("SELECT * FROM evaluations WHERE id = $1", evaluation_id)
    if row is None:
        raise NotFound("evaluation not found")
    period = await conn.fetchrow(f"SELECT {PERIOD_COLUMNS} FROM evaluation_periods WHERE id = $1", row["period_id"])
    policies = await conn.fetch(
        "SELECT node_code, plugin, plugin_version, config FROM evaluation_policies WHERE evaluation_id = $1 ORDER BY 1, 2",
        evaluation_id)
    classes = await conn.fetch(CLASS_SUMMARY_SQL, evaluation_id)
    return S.Evaluation(
        id=str(row["id"]), period=period_of(period), run_no=row["run_no"],
        settings=msgspec.json.decode(row["settings"], type=S.EvaluationSettings),
        started_by=row["started_by"], started_at=row["started_at"], finished_at=row["finished_at"],
        units=row["units"], scored=row["scored"], published_at=row["published_at"],
        policies=[{"node_code": p["node_code"], "plugin": p["plugin"], "plugin_version": p["plugin_version"],
                   "config": msgspec.json.decode(p["config"]) if p["config"] else None} for p in policies],
        classes=[S.ClassSummary(**dict(c)) for c in classes],
    )


async def get_evaluation(platform: Platform, tenant: str, principal: Principal, evaluation_id: str) -> S.Evaluation:
    require_bureau(principal, tenant)
    eid = parse_id("evaluation", evaluation_id)
    await platform.tenant(tenant)
    async with tenant_transaction(tenant) as conn:
        return await _evaluation(conn, eid)


async def list_evaluations(platform: Platform, tenant: str, principal: Principal, period_id: str) -> list[dict]:
    require_bureau(principal, tenant)
    pid = parse_id("period", period_id)
    await platform.tenant(tenant)
    async with tenant_transaction(tenant) as conn:
        rows = await conn.fetch(
            """SELECT id, run_no, started_by, started_at, finished_at, units, scored, published_at
               FROM evaluations WHERE period_id = $1 ORDER BY run_no""", pid)
    return [{**dict(r), "id": str(r["id"])} for r in rows]


def _result(row, nodes: dict[str, Node]) -> S.Result:
    values = dict(row)
    values["enterprise_id"] = str(values["enterprise_id"])
    values["amount_recovered"] = float(values["amount_recovered"])
    values["score_parts"] = msgspec.json.decode(values["score_parts"]) if values["score_parts"] else None
    node = nodes.get(row["node_code"])
    return S.Result(node_name=node.name if node else row["node_code"], **values)


def result_filters(nodes: dict[str, Node], *, start: int, node: str | None, cls: str | None, q: str | None
                   ) -> tuple[str, list[Any]]:
    """SQL conditions (after ``evaluation_id = $1``) for a node subtree, a class and a name/credit-code search."""
    where, args = [], []
    if node:
        n = nodes.get(node)
        if n is None:
            raise FieldError("node", f"unknown jurisdiction node {node!r}")
        args.append("/".join(n.path))
        where.append(f"(node_path = ${start + len(args)} OR node_path LIKE ${start + len(args)} || '/%')")
    if cls:
        args.append(cls)
        where.append(f"coalesce(enterprise_class, '') = ${start + len(args)}")
    if q:
        args.append(q.strip())
        where.append(f"(strpos(name, ${start + len(args)}) > 0 OR credit_code = upper(${start + len(args)}))")
    return "".join(f" AND {w}" for w in where), args


async def results(platform: Platform, tenant: str, principal: Principal, evaluation_id: str, *, offset: int,
                  limit: int, node: str | None, cls: str | None, q: str | None) -> S.ResultPage:
    require_bureau(principal, tenant)
    eid = parse_id("evaluation", evaluation_id)
    nodes = await platform.nodes(tenant)
    where, args = result_filters(nodes, start=1, node=node, cls=cls, q=q)
    async with tenant_transaction(tenant) as conn:
        if not await conn.fetchval("SELECT 1 FROM evaluations WHERE id = $1", eid):
            raise NotFound("evaluation not found")
        total = await conn.fetchval(f"SELECT count(*) FROM evaluation_results WHERE evaluation_id = $1{where}", eid, *args)
        rows = await conn.fetch(
            f"""SELECT {_RESULT_READ} FROM evaluation_results WHERE evaluation_id = $1{where}
                ORDER BY coalesce(enterprise_class, '') = '', enterprise_class, class_rank NULLS LAST, name, enterprise_id
                OFFSET {offset} LIMIT {limit}""", eid, *args)
    return S.ResultPage(evaluation_id=str(eid), total=total, offset=offset, limit=limit,
                        results=[_result(r, nodes) for r in rows])


# -- reproduction ------------------------------------------------------------------------------------
async def reproduce(platform: Platform, tenant: str, principal: Principal, evaluation_id: str) -> S.Reproduction:
    """Score the stored indicators again with the stored plugins and configurations; read-only."""
    require_bureau(principal, tenant)
    eid = parse_id("evaluation", evaluation_id)
    await platform.tenant(tenant)
    host = platform.host
    async with tenant_transaction(tenant) as conn:
        if not await conn.fetchval("SELECT 1 FROM evaluations WHERE id = $1", eid):
            raise NotFound("evaluation not found")
        policies = {
            (p["node_code"], p["plugin"]): p
            for p in await conn.fetch(
                "SELECT node_code, plugin, plugin_version, config FROM evaluation_policies WHERE evaluation_id = $1", eid)
        }
        rows = await conn.fetch(
            """SELECT enterprise_id, node_code, node_path, indicators, score, score_parts, plugin
               FROM evaluation_results WHERE evaluation_id = $1 AND plugin IS NOT NULL""", eid)
    version_changes = sorted({
        f"{name}: run used {p['plugin_version']}, installed "
        f"{host.infos[name].version if name in host.infos else 'none'}"
        for (_, name), p in policies.items()
        if name not in host.infos or host.infos[name].version != p["plugin_version"]
    })
    differences: list[dict[str, Any]] = []
    different = 0
    configs: dict[tuple[str, str], Any] = {}
    for row in rows:
        key = (row["node_code"], row["plugin"])
        stored = policies.get(key)
        problem = None
        result = None
        if stored is None or row["plugin"] not in host.infos:
            problem = "plugin not installed" if stored is not None else "no stored policy"
        else:
            if key not in configs:
                raw = msgspec.json.decode(stored["config"]) if stored["config"] else None
                configs[key] = host.decode_config(row["plugin"], raw)
            scope = Scope(tenant=tenant, node_path=tuple(row["node_path"].split("/")), configs={row["plugin"]: configs[key]})
            indicators = msgspec.json.decode(row["indicators"], type=Indicators)
            try:
                result, _ = host.call_first("odr_score_enterprise", active=frozenset({row["plugin"]}), scope=scope,
                                              indicators=indicators)
            except PluginUnavailable:
                problem = "plugin gave no score"
        if result is not None:
            parts = dict(result.parts)
            if result.score != row["score"] or parts != msgspec.json.decode(row["score_parts"] or "{}"):
                problem = f"score {result.score} (stored {row['score']})"
        if problem:
            different += 1
            if len(differences) < 100:
                differences.append({"enterprise_id": str(row["enterprise_id"]), "plugin": row["plugin"],
                                    "problem": problem})
    return S.Reproduction(evaluation_id=str(eid), units=len(rows), identical=not different, differences=differences,
                          version_changes=version_changes)


# -- publication -------------------------------------------------------------------------------------
async def publish(platform: Platform, tenant: str, principal: Principal, evaluation_id: str) -> S.Evaluation:
    """Close the run's period with this run as its result (if still open) and publish it (Art. 23)."""
    require_province_admin(principal, tenant)
    eid = parse_id("evaluation", evaluation_id)
    async with tenant_transaction(tenant) as conn:
        row = await conn.fetchrow(
            """SELECT p.id, p.status, p.final_evaluation_id, e.published_at FROM evaluations e
               JOIN evaluation_periods p ON p.id = e.period_id WHERE e.id = $1 FOR UPDATE OF p""", eid)
        if row is None:
            raise NotFound("evaluation not found")
        if row["status"] == "closed" and row["final_evaluation_id"] != eid:
            raise Conflict("the period is closed with another run as its result; publish that one", ["reproduce"])
        if row["status"] == "open":
            await conn.execute(
                """UPDATE evaluation_periods SET status = 'closed', final_evaluation_id = $2, closed_by = $3,
                       closed_at = now() WHERE id = $1""", row["id"], eid, principal.id)
        if row["published_at"] is None:
            await conn.execute("UPDATE evaluations SET published_at = now(), published_by = $2 WHERE id = $1",
                               eid, principal.id)
        return await _evaluation(conn, eid)


_PUBLISHED_SQL = """SELECT e.id, p.label, p.kind, p.starts_on, p.ends_on, e.published_at, e.units, e.scored
    FROM evaluations e JOIN evaluation_periods p ON p.id = e.period_id
    WHERE e.published_at IS NOT NULL AND ($1::uuid IS NULL OR e.id = $1)
    ORDER BY p.starts_on DESC, p.kind"""


def _public_evaluation(r) -> S.PublicEvaluation:
    return S.PublicEvaluation(id=str(r["id"]), period_label=r["label"], period_kind=S.PeriodKind(r["kind"]),
                              starts_on=r["starts_on"], ends_on=r["ends_on"], published_at=r["published_at"],
                              units=r["units"], scored=r["scored"])


async def published(platform: Platform, tenant: str) -> list[S.PublicEvaluation]:
    await platform.tenant(tenant)
    async with tenant_transaction(tenant) as conn:
        rows = await conn.fetch(_PUBLISHED_SQL, None)
    return [_public_evaluation(r) for r in rows]


async def published_results(platform: Platform, tenant: str, evaluation_id: str, *, offset: int, limit: int,
                            node: str | None, cls: str | None, q: str | None) -> S.PublicResultPage:
    eid = parse_id("evaluation", evaluation_id)
    nodes = await platform.nodes(tenant)
    where, args = result_filters(nodes, start=1, node=node, cls=cls, q=q)
    async with tenant_transaction(tenant) as conn:
        found = await conn.fetchrow(_PUBLISHED_SQL, eid)
        if found is None:
            raise NotFound("published evaluation not found")
        evaluation = _public_evaluation(found)
        total = await conn.fetchval(f"SELECT count(*) FROM evaluation_results WHERE evaluation_id = $1{where}", eid, *args)
        rows = await conn.fetch(
            f"""SELECT name, credit_code, node_path, enterprise_class, handled, settlement_rate, satisfaction,
                       avg_cycle_days, score, class_rank, class_size, candidate
                FROM evaluation_results WHERE evaluation_id = $1{where}
                ORDER BY coalesce(enterprise_class, '') = '', enterprise_class, class_rank NULLS LAST, name
                OFFSET {offset} LIMIT {limit}""", eid, *args)

    def district(path: str) -> str:
        names = [nodes[c].name for c in path.split("/") if c in nodes and nodes[c].level in ("city", "district")]
        return " ".join(names)

    return S.PublicResultPage(
        evaluation=evaluation, total=total, offset=offset, limit=limit,
        results=[S.PublicResult(name=r["name"], credit_code=r["credit_code"], district=district(r["node_path"]),
                                enterprise_class=r["enterprise_class"], handled=r["handled"],
                                settlement_rate=r["settlement_rate"], satisfaction=r["satisfaction"],
                                avg_cycle_days=r["avg_cycle_days"], score=r["score"], class_rank=r["class_rank"],
                                class_size=r["class_size"], candidate=r["candidate"]) for r in rows],
    )
