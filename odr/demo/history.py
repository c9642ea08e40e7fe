"""Demo history: a few ODR units per demo province and ~90 days of past complaints, so reports, the
evaluation (Art. 20) and the policy replays have something realistic to show.

Shapes follow the documents (DOMAIN.md, "Evaluation"): in Jinshan (Shanghai) three e-commerce units
that the Jinshan A/B/C classification puts in A, B and C, with complaint counts scaled down from
508 / 29 / 2, settlement rates of about 85 % / 95 % / 100 % and an average handling cycle of about 7
days; one e-commerce unit in Pudong; in Xishan (Jiangsu, Wuxi) a shopping mall host unit with two member
merchants (the mall handles its merchants' after-sales) and a car dealer; in Gulou (Fujian, Fuzhou) the
three telecom carriers. Units are only seeded at the nodes a tenant has (a copy of a demo manifest under
another slug gets the same history).

Complaints are closed (settled), left ODR (not settled, or the consumer gave up) or, a few, still open
(entered within the last day). Their due moments are what the policy active at their node gives (so
Jinshan's 2 / 7 natural days and the national 3 / 10 working days both show); some contacts and closes
are late, recorded in ``breaches``. Consumers are obviously fake (测试用户0001, 13900000001). Events: a
``registered``, ``accept``, the milestones met and the final state's event per complaint. About one fed
complaint in sixteen had a bureau spot check (抽查) of its feedback, about a third of which found it seriously
untrue (``feedback_untrue``, counted by the evaluation; drawn from a generator of their own, so the rest of
the history does not depend on them). Timers only for the open complaints. Everything is generated in Python from a fixed seed and inserted with a handful of
set-based statements (unnest) in one tenant transaction; nothing is seeded if the tenant has complaints.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Mapping

import msgspec

from core.complaints import states as S
from core.db.engine import tenant_transaction
from core.deadlines.service import complaint_deadlines
from core.enterprises.service import classify
from core.runtime import Platform
from odr.demo.cases import DAYS, Case, plan_cases
from odr.demo.units import PLANS, UnitPlan, credit_code

SEED = 12315
ACTOR = "demo-history"


class UnitHistory(msgspec.Struct, kw_only=True):
    key: str
    enterprise_id: str
    name: str
    node_code: str
    unit_type: str
    enterprise_class: str | None
    """The class given by the classification scheme active at the unit's node when seeded (or None)."""
    complaints: int
    open: int
    closed: int
    left_odr: int
    with_feedback: int
    settled: int
    settlement_rate: float | None
    """settled / with_feedback."""
    rated: int
    avg_rating: float | None
    avg_cycle_days: float | None
    """Entered ODR -> closed (or feedback for the cases that left ODR after it)."""
    contact_breaches: int
    close_breaches: int
    untrue_feedback: int = 0
    """Complaints whose feedback a spot check found seriously untrue."""


class HistorySummary(msgspec.Struct, kw_only=True):
    tenant: str
    seeded: bool
    """False: the tenant already had complaints, nothing was added."""
    units: list[UnitHistory] = []
    complaints: int = 0
    events: int = 0
    timers: int = 0
    milliseconds: float = 0.0


async def seed_history(platform: Platform, tenant: str, *, per_unit: Mapping[str, int] | None = None,
                       now: dt.datetime | None = None) -> HistorySummary:
    """Seed the demo history of ``tenant`` (see the module docstring); ``per_unit`` overrides the number
    of complaints per unit key (e.g. ``{"js-a": 508}``); ``now`` (default: the current time) is the
    moment the history ends. Idempotent: a tenant that has complaints is
    left alone (``seeded=False``). One tenant transaction."""
    started = time.perf_counter()
    counts = {p.key: p.complaints for p in PLANS} | dict(per_unit or {})
    rng = random.Random(f"{SEED}:{tenant}")
    checks = random.Random(f"{SEED}:{tenant}:spot-checks")
    now = (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    nodes = await platform.nodes(tenant)
    plans = [p for p in PLANS if p.node in nodes]
    async with tenant_transaction(tenant) as conn:
        await conn.execute("LOCK TABLE complaints IN SHARE ROW EXCLUSIVE MODE")  # two seeders: one wins
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM complaints)") or not plans:
            return HistorySummary(tenant=tenant, seeded=False)
        # -- units ---------------------------------------------------------------------------------
        unit_ids = {p.key: uuid.uuid4() for p in plans}
        classes: dict[str, dict | None] = {}
        for p in plans:
            scope, active = await platform.scope(tenant, p.node)
            facts = {"unit_type": p.unit_type, "industry": p.industry, "employees": p.employees,
                     "annual_revenue_cny": p.revenue_cny, "business_scope": p.scope}
            classes[p.key] = classify(platform, scope, active, facts)
        approved = now - dt.timedelta(days=DAYS + 30)
        await conn.execute(
            """INSERT INTO enterprises (id, name, credit_code, unit_type, host_unit_id, node_code, industry, employees,
                   annual_revenue_cny, business_scope, address, status, classification, approved_at, approved_by,
                   created_at)
               SELECT u.id, u.name, u.code, u.unit_type, u.host, u.node, u.industry, u.employees, u.revenue, u.scope,
                      u.address, 'active', u.cls::jsonb, $13, 'demo', $13
               FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[],
                           $8::int[], $9::numeric[], $10::text[], $11::text[], $12::text[])
                    AS u(id, name, code, unit_type, host, node, industry, employees, revenue, scope, address, cls)
               ORDER BY u.host NULLS FIRST""",
            [unit_ids[p.key] for p in plans],
            [p.name for p in plans],
            [credit_code(tenant, p.key) for p in plans],
            [p.unit_type for p in plans],
            [unit_ids.get(p.host) if p.host else None for p in plans],
            [p.node for p in plans],
            [p.industry for p in plans],
            [p.employees for p in plans],
            [p.revenue_cny for p in plans],
            [p.scope for p in plans],
            [f"{nodes[p.node].name}辖区（演示地址）" for p in plans],
            [msgspec.json.encode(classes[p.key]).decode() if classes[p.key] else None for p in plans],
            approved,
        )
        await conn.execute(
            """INSERT INTO liaisons (enterprise_id, role, name, phone, filed_at)
               SELECT id, r, n, ph, $4 FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(id, n, ph),
                      LATERAL (VALUES ('person_in_charge'), ('staff')) AS v(r)""",
            [unit_ids[p.key] for p in plans],
            [f"测试联络员{i + 1:02d}" for i in range(len(plans))],
            [f"1380000{i + 1:04d}" for i in range(len(plans))],
            approved,
        )
        # -- complaints ------------------------------------------------------------------------------
        cases: list[Case] = []
        for p in plans:
            cases += plan_cases(p, unit_ids[p.key], max(0, counts.get(p.key, 0)), now, rng)
        cases.sort(key=lambda c: c.created)
        due = []
        for c in cases:
            d = await complaint_deadlines(platform, tenant, c.plan.node, c.entered)
            due.append(d)
        cols: dict[str, list] = {k: [] for k in (
            "id", "created", "name", "phone", "unit", "company", "node", "path", "category", "subject", "description",
            "amount", "state", "entered", "contact_due", "close_due", "policy", "version", "deadlines", "contacted",
            "feedback", "settled", "recovered", "closed", "rating", "comment", "breaches", "updated", "untrue")}
        ev: dict[str, list] = {k: [] for k in ("cid", "kind", "role", "node", "at", "after", "note")}
        tm: dict[str, list] = {k: [] for k in ("cid", "kind", "due", "cancelled")}
        warning = dt.timedelta(hours=platform.settings.warning_before_hours)
        for n, (c, d) in enumerate(zip(cases, due), start=1):
            node = nodes[c.plan.node]
            breaches = []
            contact_due, close_due = d.contact.due, d.close.due
            # The breach clocks fire at the due moment unless the milestone was met by then; a case that left
            # ODR stops its clocks; feedback stops the close clocks (as the live timers do).
            if (c.contacted or c.left_at or now) > contact_due:
                breaches.append("contact")
            if (c.feedback_at or c.closed or c.left_at or now) > close_due:
                breaches.append("close")
            feedback = None
            recovered = None
            if c.feedback_at is not None:
                recovered = c.amount if c.settled else 0.0
                feedback = {
                    "handling_time": f"{max(1, round((c.feedback_at - c.entered).total_seconds() / 86400))}天",
                    "process": "电话联系消费者，协商处理" if c.settled else "多次协商，双方未达成一致",
                    "method": "refund" if c.settled else "other",
                    "settled": c.settled,
                    "result": "已退款" if c.settled else "消费者不接受处理方案",
                    "amount_recovered": recovered,
                }
            finding = None
            spot_checked = None
            if c.feedback_at is not None and checks.random() < 0.06:
                spot_checked = min(now, c.feedback_at + dt.timedelta(days=checks.uniform(1, 5)))
                finding = checks.random() < 0.3
            last = max(t for t in (c.entered, c.contacted, c.feedback_at, c.closed, c.left_at, spot_checked) if t is not None)
            cols["id"].append(c.id)
            cols["created"].append(c.created)
            cols["name"].append(f"测试用户{n:04d}")
            cols["phone"].append(f"139000{n:05d}")
            cols["unit"].append(c.unit)
            cols["company"].append(c.plan.name)
            cols["node"].append(node.code)
            cols["path"].append("/".join(node.path))
            cols["category"].append(c.plan.category)
            cols["subject"].append(c.subject)
            cols["description"].append(f"（演示数据）{c.subject}，要求商家处理。")
            cols["amount"].append(c.amount)
            cols["state"].append(c.state)
            cols["entered"].append(c.entered)
            cols["contact_due"].append(contact_due)
            cols["close_due"].append(close_due)
            cols["policy"].append(d.policy)
            cols["version"].append(d.policy_version)
            cols["deadlines"].append(msgspec.json.encode(d).decode())
            cols["contacted"].append(c.contacted)
            cols["feedback"].append(msgspec.json.encode(feedback).decode() if feedback else None)
            cols["settled"].append(c.settled)
            cols["recovered"].append(recovered)
            cols["closed"].append(c.closed)
            cols["rating"].append(c.rating)
            cols["comment"].append(("处理及时，满意" if c.rating >= 4 else "一般") if c.rating else None)
            cols["breaches"].append(msgspec.json.encode(breaches).decode())
            cols["updated"].append(last)
            cols["untrue"].append(finding)
            events = [("registered", "consumer", c.created, {"state": S.REGISTERED, "route": "odr"}),
                      ("accept", "office_head", c.entered, {"state": S.WITH_ENTERPRISE})]
            if c.contacted:
                events.append(("contact", "enterprise_specialist", c.contacted, {"state": S.CONTACTED}))
            if c.state == S.NEGOTIATING:
                events.append(("negotiate", "enterprise_specialist", c.contacted + dt.timedelta(minutes=30),
                               {"state": S.NEGOTIATING}))
            for milestone, at in (("contact", contact_due), ("close", close_due)):
                if milestone in breaches:
                    events.append(("deadline_breached", "system", at, {"milestone": milestone, "breaches": breaches}))
            if c.feedback_at:
                events.append(("feedback", "enterprise_specialist", c.feedback_at, {"state": S.FEEDBACK_SUBMITTED}))
            if c.closed:
                events.append(("close", "office_head", c.closed, {"state": S.CLOSED}))
            if c.left_at:
                events.append(("leave_odr", "consumer" if c.feedback_at is None else "office_head", c.left_at,
                               {"state": S.LEFT_ODR}))
            if c.rating:
                events.append(("rate", "consumer", last + dt.timedelta(hours=2), {"satisfaction": c.rating}))
            notes = {}
            if spot_checked is not None:
                events.append(("spot_check", "bureau_officer", spot_checked, {"state": c.state, "feedback_untrue": finding}))
                notes[len(events) - 1] = "抽查反馈：与消费者核实不符" if finding else "抽查反馈：经回访属实"
            for i, (kind, role, at, after) in enumerate(events):
                ev["cid"].append(c.id)
                ev["kind"].append(kind)
                ev["role"].append(role)
                ev["node"].append(node.code)
                ev["at"].append(at)
                ev["after"].append(msgspec.json.encode(after).decode())
                ev["note"].append(notes.get(i))
            if c.state in S.IN_ODR:  # timers only for running cases; contact clocks off once contacted
                for kind, at in (("contact_warning", contact_due - warning), ("contact_breach", contact_due),
                                 ("close_warning", close_due - warning), ("close_breach", close_due)):
                    tm["cid"].append(c.id)
                    tm["kind"].append(kind)
                    tm["due"].append(at)
                    tm["cancelled"].append(c.contacted if kind.startswith("contact") and c.contacted else None)
        await conn.execute(
            """INSERT INTO complaints (id, number, source, consumer_name, consumer_phone, enterprise_id, company_name,
                   odr_unit, node_code, node_path, category, subject, description, amount_claimed, state, entered_odr_at,
                   contact_due, close_due, deadline_policy, deadline_policy_version, deadlines, contacted_at, feedback,
                   settled, amount_recovered, closed_at, rating, rating_comment, breaches, created_at, updated_at,
                   feedback_untrue)
               SELECT t.id, to_char(t.created AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') || '-'
                          || lpad(nextval('complaint_number_seq')::text, 7, '0'),
                      'consumer', t.name, t.phone, t.unit, t.company, true, t.node, t.path, t.category, t.subject,
                      t.description, t.amount, t.state, t.entered, t.contact_due, t.close_due, t.policy, t.version,
                      t.deadlines::jsonb, t.contacted, t.feedback::jsonb, t.settled, t.recovered, t.closed, t.rating,
                      t.comment, ARRAY(SELECT jsonb_array_elements_text(t.breaches::jsonb)), t.created, t.updated,
                      t.untrue
               FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[],
                           $8::text[], $9::text[], $10::text[], $11::text[], $12::numeric[], $13::text[],
                           $14::timestamptz[], $15::timestamptz[], $16::timestamptz[], $17::text[], $18::text[],
                           $19::text[], $20::timestamptz[], $21::text[], $22::bool[], $23::numeric[],
                           $24::timestamptz[], $25::int[], $26::text[], $27::text[], $28::timestamptz[], $29::bool[])
                    WITH ORDINALITY AS t(id, created, name, phone, unit, company, node, path, category, subject,
                        description, amount, state, entered, contact_due, close_due, policy, version, deadlines,
                        contacted, feedback, settled, recovered, closed, rating, comment, breaches, updated, untrue, n)
               ORDER BY t.n""",
            *cols.values(),
        )
        await conn.execute(
            """INSERT INTO complaint_events (complaint_id, kind, actor_id, actor_role, node_code, at, after, note)
               SELECT t.cid, t.kind, $8, t.role, t.node, t.at, t.after::jsonb, t.note
               FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[])
                    WITH ORDINALITY AS t(cid, kind, role, node, at, after, note, n)
               ORDER BY t.at, t.n""",
            *ev.values(),
            ACTOR,
        )
        if tm["cid"]:
            await conn.execute(
                """INSERT INTO timers (complaint_id, kind, due_at, cancelled_at)
                   SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[])""",
                *tm.values(),
            )
        await conn.execute(
            """UPDATE enterprises e SET breach_count = b.n
               FROM (SELECT enterprise_id, sum(cardinality(breaches))::int AS n FROM complaints
                     WHERE enterprise_id = ANY($1) GROUP BY enterprise_id) b
               WHERE e.id = b.enterprise_id""",
            list(unit_ids.values()),
        )
    return HistorySummary(
        tenant=tenant,
        seeded=True,
        units=[_unit_summary(p, unit_ids[p.key], nodes, classes[p.key], [c for c in cases if c.plan is p], cols, cases)
               for p in plans],
        complaints=len(cases),
        events=len(ev["cid"]),
        timers=len(tm["cid"]),
        milliseconds=(time.perf_counter() - started) * 1000,
    )


def _unit_summary(p: UnitPlan, unit_id: uuid.UUID, nodes, cls: dict | None, mine: list[Case], cols, cases) -> UnitHistory:
    index = {c.id: i for i, c in enumerate(cases)}
    fed = [c for c in mine if c.feedback_at is not None]
    settled = sum(1 for c in fed if c.settled)
    rated = [c.rating for c in mine if c.rating]
    cycles = [((c.closed or c.feedback_at) - c.entered).total_seconds() / 86400 for c in mine if c.closed or c.feedback_at]
    breaches = [msgspec.json.decode(cols["breaches"][index[c.id]]) for c in mine]
    return UnitHistory(
        key=p.key,
        enterprise_id=str(unit_id),
        name=p.name,
        node_code=p.node,
        unit_type=p.unit_type,
        enterprise_class=cls["code"] if cls else None,
        complaints=len(mine),
        open=sum(1 for c in mine if c.state in S.IN_ODR),
        closed=sum(1 for c in mine if c.state == S.CLOSED),
        left_odr=sum(1 for c in mine if c.state == S.LEFT_ODR),
        with_feedback=len(fed),
        settled=settled,
        settlement_rate=round(settled / len(fed), 4) if fed else None,
        rated=len(rated),
        avg_rating=round(sum(rated) / len(rated), 4) if rated else None,
        avg_cycle_days=round(sum(cycles) / len(cycles), 4) if cycles else None,
        contact_breaches=sum(1 for b in breaches if "contact" in b),
        close_breaches=sum(1 for b in breaches if "close" in b),
        untrue_feedback=sum(1 for c in mine if cols["untrue"][index[c.id]]),
    )
