"""Policy replay (what a candidate deadline plugin would have given past complaints; nothing written)
and the explicit recompute of running complaints' deadlines, through the API on the demo data."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from core.db.engine import platform_transaction, tenant_transaction
from core.deadlines.service import complaint_deadlines
from tests.complaint_helpers import active_unit, consumer
from tests.conftest import login
from tests.sample_plugins import KeyedDaysConfig, deadline_policy

TZ = ZoneInfo("Asia/Shanghai")
JINSHAN = "odr_jinshan_deadline"
NATIONAL = "odr_national_deadline"
FEEDBACK = {"handling_time": "2天", "process": "电话协商，同意退货退款", "method": "refund", "settled": True,
            "result": "已退款", "amount_recovered": 99.0}


def at(text: str) -> dt.datetime:
    """A Shanghai local moment, ``2026-09-30 10:00``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


def end_of(day: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(23, 59, 59), TZ)


def same_moment(text: str | None, expected: dt.datetime | None) -> bool:
    return (text is None and expected is None) or dt.datetime.fromisoformat(text) == expected


async def act(client, cid: str, action: str, user: str, body: dict | None = None, password: str = "demo12315"):
    r = await client.post(f"/api/tenants/shanghai/complaints/{cid}/actions/{action}", json=body or {},
                          headers=await login(client, user, password))
    assert r.status_code == 200, r.text
    return r.json()


async def file(client, cons: dict, unit: dict, subject: str = "退货纠纷") -> dict:
    body = {"company_name": "某公司", "enterprise_id": unit["id"], "route": "odr", "subject": subject,
            "description": "商品有质量问题。", "consumer_name": "陈先生", "consumer_phone": "13500001234"}
    r = await client.post("/api/tenants/shanghai/complaints", json=body, headers=cons)
    assert r.status_code == 201, r.text
    return r.json()["complaint"]


async def get(client, cid: str, user: str = "sh-admin") -> dict:
    r = await client.get(f"/api/tenants/shanghai/complaints/{cid}", headers=await login(client, user))
    assert r.status_code == 200, r.text
    return r.json()


async def fingerprints() -> dict[str, str | None]:
    """md5 of every row of the live tables a replay could touch."""
    out = {}
    async with tenant_transaction("shanghai") as conn:
        for table in ("complaints", "complaint_events", "timers", "notifications"):
            out[table] = await conn.fetchval(f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t")
    async with platform_transaction() as conn:
        for table in ("odr.plugin_activations", "odr.plugin_activation_audit"):
            out[table] = await conn.fetchval(f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t")
    return out


# -- replay ------------------------------------------------------------------------------------------
# Pudong (310115) history, Shanghai local times. National (3/10 working days): entered 30 Sep 2026 ->
# contact due 10 Oct (Sat, make-up working day), close due 20 Oct; entered Mon 1 Jun -> 4 Jun, 15 Jun.
# Jinshan (2/7 natural days, holiday rollover): 30 Sep -> 2 Oct and 7 Oct both fall in the National
# Day holiday and roll over to Thu 8 Oct; 1 Jun -> 3 Jun and 8 Jun.
HISTORY = {
    #       unit, entered,            contacted,          closed,             national,       jinshan (contact, close)
    "A": ("u1", "2026-09-30 10:00", "2026-10-09 10:00", "2026-10-15 10:00", ("on_time", "on_time"), ("late", "late")),
    "B": ("u1", "2026-09-30 11:00", "2026-10-05 10:00", "2026-10-08 12:00", ("on_time", "on_time"), ("on_time", "on_time")),
    "C": ("u1", "2026-06-01 10:00", "2026-06-04 09:00", "2026-06-10 10:00", ("on_time", "on_time"), ("late", "late")),
    "D": ("u2", "2026-06-01 11:00", "2026-06-02 10:00", "2026-06-05 10:00", ("on_time", "on_time"), ("on_time", "on_time")),
    "E": ("u2", "2026-09-30 12:00", "2026-10-12 10:00", "2026-10-19 10:00", ("late", "on_time"), ("late", "late")),
}
NATIONAL_DUE = {"2026-09-30": ("2026-10-10", "2026-10-20"), "2026-06-01": ("2026-06-04", "2026-06-15")}
JINSHAN_DUE = {"2026-09-30": ("2026-10-08", "2026-10-08"), "2026-06-01": ("2026-06-03", "2026-06-08")}
WINDOW = {"since": "2026-06-01", "until": "2026-10-31"}


@pytest_asyncio.fixture(scope="module")
async def pudong_history(client, demo):
    """Five closed Pudong complaints of two ODR units, walked through the API and then moved to the
    past moments of HISTORY (entered/contacted/closed and the national due moments they were given)."""
    units = {"u1": await active_unit("shanghai", "310115", name="浦东甲电商有限公司"),
             "u2": await active_unit("shanghai", "310115", name="浦东乙电商有限公司")}
    cons = await login(client, await consumer(client, "shanghai"), "demo12315-pw")
    ids = {}
    for key, (unit, entered, contacted, closed, *_) in HISTORY.items():
        c = await file(client, cons, units[unit], subject=f"历史投诉{key}")
        spec = units[unit]["specialist"]
        await act(client, c["id"], "contact", spec)
        await act(client, c["id"], "feedback", spec, FEEDBACK)
        await act(client, c["id"], "close", "sh-admin")
        contact_due, close_due = NATIONAL_DUE[entered[:10]]
        async with tenant_transaction("shanghai") as conn:
            await conn.execute(
                """UPDATE complaints SET entered_odr_at = $2, contacted_at = $3, closed_at = $4, contact_due = $5,
                       close_due = $6, created_at = $2 WHERE id = $1""",
                uuid.UUID(c["id"]), at(entered), at(contacted), at(closed), end_of(contact_due), end_of(close_due),
            )
        ids[key] = c["id"]
    return units, ids


async def replay(client, user: str, node: str, body: dict):
    return await client.post(f"/api/tenants/shanghai/policy/{node}/replay", json=body, headers=await login(client, user))


async def test_replay_of_jinshan_rules_over_pudong_history_writes_nothing(client, demo, pudong_history):
    units, ids = pudong_history
    before = await fingerprints()
    r = await replay(client, "sh-admin", "310115",
                     {"plugin": JINSHAN, "config": {"contact_days": 2, "close_days": 7, "holiday_rollover": True}, **WINDOW})
    assert r.status_code == 200, r.text
    body = r.json()
    assert await fingerprints() == before  # byte for byte: nothing written, nothing left behind

    assert body["dry_run"] is True and body["families_supported"] == ["deadline_policy", "classification", "scoring"]
    assert body["plugin"] == JINSHAN and body["node"] == "310115" and body["deactivated"] == []
    assert body["config"] == {"contact_days": 2, "close_days": 7, "holiday_rollover": True}

    by_id = {c["complaint_id"]: c for c in body["complaints"]}
    assert set(by_id) == set(ids.values())  # exactly the seeded history falls in the window
    for key, (unit, entered, contacted, closed, national, jinshan) in HISTORY.items():
        c = by_id[ids[key]]
        day = entered[:10]
        assert (c["current_policy"], c["candidate_policy"]) == (NATIONAL, JINSHAN), key
        assert same_moment(c["current_contact_due"], end_of(NATIONAL_DUE[day][0])), key
        assert same_moment(c["current_close_due"], end_of(NATIONAL_DUE[day][1])), key
        assert same_moment(c["candidate_contact_due"], end_of(JINSHAN_DUE[day][0])), key
        assert same_moment(c["candidate_close_due"], end_of(JINSHAN_DUE[day][1])), key
        assert same_moment(c["given_contact_due"], end_of(NATIONAL_DUE[day][0])), key
        assert same_moment(c["contacted_at"], at(contacted)) and same_moment(c["closed_at"], at(closed)), key
        assert (c["current_contact"], c["current_close"]) == national, key
        assert (c["candidate_contact"], c["candidate_close"]) == jinshan, key
        assert c["differs"] is (national != jinshan), key
        assert c["enterprise_id"] == units[unit]["id"]
    assert body["changed_outcomes"] == 3  # A, C, E

    # Totals per policy, by hand: national misses only E's contact; Jinshan's rules keep B and D only.
    cur, cand = body["current"], body["candidate"]
    assert cur["policies"] == [NATIONAL] and cand["policies"] == [JINSHAN]
    assert (cur["complaints"], cur["contact_evaluated"], cur["contact_on_time"], cur["close_on_time"]) == (5, 5, 4, 5)
    assert cur["on_time_contact_rate"] == pytest.approx(0.8) and cur["on_time_close_rate"] == pytest.approx(1.0)
    assert (cur["contact_breaches"], cur["close_breaches"], cur["breaches"]) == (1, 0, 1)
    assert (cand["contact_on_time"], cand["close_on_time"]) == (2, 2)
    assert cand["on_time_contact_rate"] == pytest.approx(0.4) and cand["on_time_close_rate"] == pytest.approx(0.4)
    assert (cand["contact_breaches"], cand["close_breaches"], cand["breaches"]) == (3, 3, 6)

    # Per enterprise, side by side: the ranking flips under Jinshan's rules.
    ent = {e["enterprise_id"]: e for e in body["enterprises"]}
    u1, u2 = ent[units["u1"]["id"]], ent[units["u2"]["id"]]
    assert u1["name"] == "浦东甲电商有限公司" and u1["complaints"] == 3 and u2["complaints"] == 2
    assert (u1["current"]["on_time_contact_rate"], u1["current"]["on_time_close_rate"]) == (1.0, 1.0)
    assert (u2["current"]["on_time_contact_rate"], u2["current"]["on_time_close_rate"]) == (0.5, 1.0)
    assert u1["candidate"]["on_time_contact_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert u1["candidate"]["on_time_close_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert (u2["candidate"]["on_time_contact_rate"], u2["candidate"]["on_time_close_rate"]) == (0.5, 0.5)
    assert (u1["current_rank"], u2["current_rank"]) == (1, 2)
    assert (u1["candidate_rank"], u2["candidate_rank"]) == (2, 1)
    assert [e["enterprise_id"] for e in body["enterprises"]] == [units["u1"]["id"], units["u2"]["id"]]

    # The live policy is untouched: Pudong still runs the national rules, in this process too.
    assert (await complaint_deadlines(demo, "shanghai", "310115", at("2026-09-30 10:00"))).plugin == NATIONAL

    # A narrower window and another configuration: only June, contact within 3 natural days.
    r = await replay(client, "sh-admin", "310115", {"plugin": JINSHAN, "config": {"contact_days": 3},
                                                    "since": "2026-06-01", "until": "2026-06-30"})
    assert r.status_code == 200, r.text
    june = {c["complaint_id"]: c for c in r.json()["complaints"]}
    assert set(june) == {ids["C"], ids["D"]}
    assert same_moment(june[ids["C"]]["candidate_contact_due"], end_of("2026-06-04"))
    assert june[ids["C"]]["candidate_contact"] == "on_time" and june[ids["C"]]["candidate_close"] == "late"
    assert r.json()["config"] == {"contact_days": 3, "close_days": 7, "holiday_rollover": True}
    assert await fingerprints() == before


async def test_replay_where_the_candidate_already_decides_replaces_only_its_config(client, demo, pudong_history):
    # Jinshan runs its own plugin: replaying it there with 10 natural days to close changes its config only.
    r = await replay(client, "js-officer", "310116", {"plugin": JINSHAN, "config": {"close_days": 10}})
    assert r.status_code == 200, r.text
    assert r.json()["deactivated"] == [] and r.json()["config"]["close_days"] == 10
    # From the province, the Jinshan subtree keeps its nearer record (as it would after a save).
    r = await replay(client, "sh-admin", "310000", {"plugin": JINSHAN, "config": {"close_days": 3}, **WINDOW})
    assert r.status_code == 200, r.text
    assert {c["candidate_policy"] for c in r.json()["complaints"]} == {JINSHAN}


async def test_replay_of_another_decider_switches_the_current_one_off_hypothetically(client, demo, pudong_history):
    plugin = deadline_policy("t_replay_policy")
    demo.host.register(plugin, name="t_replay_policy")
    try:
        before = await fingerprints()
        # At Jinshan the candidate would replace Jinshan's own plugin, as a bureau must do before saving.
        r = await replay(client, "js-officer", "310116", {"plugin": "t_replay_policy", "config": {"close_days": 5}})
        assert r.status_code == 200, r.text
        assert r.json()["deactivated"] == [JINSHAN]
        # From the province it would clash with Jinshan's record below: refused as a save would be.
        r = await replay(client, "sh-admin", "310000", {"plugin": "t_replay_policy", **WINDOW})
        assert r.status_code == 409 and "310116" in r.json()["detail"] and JINSHAN in r.json()["detail"]
        # In Pudong it replaces the national default (never deactivated: it stays the fallback).
        r = await replay(client, "sh-admin", "310115", {"plugin": "t_replay_policy", "config": {"close_days": 5}, **WINDOW})
        assert r.status_code == 200, r.text
        assert r.json()["deactivated"] == [] and r.json()["candidate"]["policies"] == ["t_replay_policy"]
        assert await fingerprints() == before
    finally:
        demo.host.unregister("t_replay_policy")
        demo.forget_activations("shanghai")


REPLAY_SECRET = "replay-candidate-api-secret"


async def test_replay_of_a_candidate_with_a_secret_never_echoes_it(client, demo, pudong_history):
    from odr_plugin_api import SECRET_MASK

    demo.host.register(deadline_policy("t_keyed_policy", KeyedDaysConfig), name="t_keyed_policy")
    try:
        r = await replay(client, "sh-admin", "310115", {"plugin": "t_keyed_policy", **WINDOW,
                                                        "config": {"close_days": 5, "api_key": REPLAY_SECRET}})
        assert r.status_code == 200, r.text
        assert REPLAY_SECRET not in r.text and r.json()["config"] == {"contact_days": 2, "close_days": 5, "api_key": SECRET_MASK}
        r = await replay(client, "sh-admin", "310115", {"plugin": "t_keyed_policy", **WINDOW, "config": {"close_days": 5}})
        assert r.status_code == 200 and r.json()["config"]["api_key"] == ""  # none in force, none given
    finally:
        demo.host.unregister("t_keyed_policy")
        demo.forget_activations("shanghai")


async def test_replay_refuses_other_families_and_bad_config_naming_the_field(client, demo):
    r = await replay(client, "sh-admin", "310115", {"plugin": "odr_builtin_calendar"})
    assert r.status_code == 400 and r.json()["field"] == "plugin"
    assert "deadline_policy" in r.json()["detail"] and r.json()["families_supported"] == ["deadline_policy", "classification", "scoring"]
    r = await replay(client, "sh-admin", "310115", {"plugin": "no_such_plugin"})
    assert r.status_code == 400 and r.json()["field"] == "plugin"
    r = await replay(client, "sh-admin", "310115", {"plugin": JINSHAN, "config": {"close_days": 0}})
    assert r.status_code == 400 and r.json()["field"] == "config.close_days", r.text
    r = await replay(client, "sh-admin", "310115", {"plugin": JINSHAN, "config": {"contact_days": "two"}})
    assert r.status_code == 400 and r.json()["field"] == "config.contact_days"
    r = await replay(client, "sh-admin", "310115", {"plugin": JINSHAN, "since": "2026-10-01", "until": "2026-09-01"})
    assert r.status_code == 400 and r.json()["field"] == "until"


async def test_replay_and_recompute_are_limited_to_the_callers_subtree(client, demo):
    for path, body in (("replay", {"plugin": JINSHAN}), ("recompute-deadlines", {"dry_run": True})):
        r = await client.post(f"/api/tenants/shanghai/policy/310115/{path}", json=body,
                              headers=await login(client, "js-officer"))  # Jinshan's officer, Pudong's node
        assert r.status_code == 404, r.text
        r = await client.post(f"/api/tenants/shanghai/policy/310116/{path}", json=body,
                              headers=await login(client, "pd-office-head"))
        assert r.status_code == 404, r.text
        r = await client.post(f"/api/tenants/jiangsu/policy/310115/{path}", json=body,
                              headers=await login(client, "sh-admin"))  # another province
        assert r.status_code == 404, r.text
        r = await client.post(f"/api/tenants/shanghai/policy/310115/{path}", json=body,
                              headers=await login(client, "sh-consumer"))
        assert r.status_code == 403, r.text


# -- recompute ---------------------------------------------------------------------------------------
OFFICE = "310115-01"  # Lujiazui office: Pudong, national policy in the demo


async def set_jinshan_at_office(client, active: bool) -> None:
    r = await client.put(f"/api/tenants/shanghai/policy/{OFFICE}/plugins/{JINSHAN}", json={"active": active},
                         headers=await login(client, "sh-admin"))
    assert r.status_code == 200, r.text


async def timers(cid: str) -> dict[str, tuple]:
    async with tenant_transaction("shanghai") as conn:
        rows = await conn.fetch("SELECT kind, due_at, fired_at, cancelled_at FROM timers WHERE complaint_id = $1",
                                uuid.UUID(cid))
    return {r["kind"]: (r["due_at"], r["fired_at"] is None and r["cancelled_at"] is None) for r in rows}


async def recompute(client, body: dict | None, user: str = "pd-office-head", node: str = OFFICE):
    kwargs = {"json": body} if body is not None else {}
    return await client.post(f"/api/tenants/shanghai/policy/{node}/recompute-deadlines",
                             headers=await login(client, user), **kwargs)


async def test_running_complaints_keep_their_deadlines_until_the_bureau_recomputes(client, demo):
    unit = await active_unit("shanghai", OFFICE)
    spec = unit["specialist"]
    cons = await login(client, await consumer(client, "shanghai"), "demo12315-pw")
    waiting = await file(client, cons, unit)  # with the enterprise, consumer not yet contacted
    contacted = await file(client, cons, unit)
    await act(client, contacted["id"], "contact", spec)
    closed = await file(client, cons, unit)
    await act(client, closed["id"], "contact", spec)
    await act(client, closed["id"], "feedback", spec, FEEDBACK)
    await act(client, closed["id"], "close", "sh-admin")
    mine = {waiting["id"], contacted["id"], closed["id"]}
    given = {cid: await get(client, cid) for cid in mine}
    assert {c["deadline_policy"] for c in given.values()} == {NATIONAL}
    closed_before = await fingerprints_of(closed["id"])

    await set_jinshan_at_office(client, True)
    try:
        for cid in mine:  # the toggle alone changes nothing for cases already running
            now = await get(client, cid)
            assert (now["contact_due"], now["close_due"], now["deadline_policy"]) == (
                given[cid]["contact_due"], given[cid]["close_due"], NATIONAL)

        r = await recompute(client, {"dry_run": True})
        assert r.status_code == 200, r.text
        dry = {c["complaint_id"]: c for c in r.json()["changes"] if c["complaint_id"] in mine}
        assert set(dry) == {waiting["id"], contacted["id"]} and not any(c["applied"] for c in dry.values())
        assert (await get(client, waiting["id"]))["deadline_policy"] == NATIONAL  # dry run: nothing written

        r = await recompute(client, None)  # no body: every in-ODR state, applied
        assert r.status_code == 200, r.text
        result = r.json()
        assert result["dry_run"] is False and result["states"] == sorted(
            ["with_enterprise", "contacted", "negotiating", "feedback_submitted"])
        changes = {c["complaint_id"]: c for c in result["changes"] if c["complaint_id"] in mine}
        assert set(changes) == {waiting["id"], contacted["id"]}
        for cid, change in changes.items():
            entered = dt.datetime.fromisoformat(given[cid]["entered_odr_at"])
            expected = await complaint_deadlines(demo, "shanghai", OFFICE, entered)
            assert expected.plugin == JINSHAN and change["applied"] is True
            assert change["before"]["deadline_policy"] == NATIONAL and change["after"]["deadline_policy"] == JINSHAN
            assert same_moment(change["before"]["close_due"], dt.datetime.fromisoformat(given[cid]["close_due"]))
            assert same_moment(change["after"]["contact_due"], expected.contact.due)
            assert same_moment(change["after"]["close_due"], expected.close.due)
            now = await get(client, cid)
            assert now["deadline_policy"] == JINSHAN
            assert same_moment(now["contact_due"], expected.contact.due) and same_moment(now["close_due"], expected.close.due)
            events = (await client.get(f"/api/tenants/shanghai/complaints/{cid}/timeline",
                                       headers=await login(client, "sh-admin"))).json()
            recomputed = [e for e in events if e["kind"] == "deadlines_recomputed"]
            assert len(recomputed) == 1
            ev = recomputed[0]
            assert ev["actor_role"] == "office_head" and ev["node_code"] == OFFICE
            assert same_moment(ev["before"]["contact_due"], dt.datetime.fromisoformat(given[cid]["contact_due"]))
            assert same_moment(ev["after"]["close_due"], expected.close.due)
            explained = (await client.get(f"/api/tenants/shanghai/complaints/{cid}/deadlines",
                                          headers=await login(client, "sh-admin"))).json()
            assert explained["plugin"] == JINSHAN and explained["close"]["clock"] == "natural_days"
            clocks = await timers(cid)
            assert clocks["close_breach"] == (expected.close.due, True)
            assert clocks["close_warning"][0] == expected.close.due - dt.timedelta(hours=demo.settings.warning_before_hours)
        assert changes[waiting["id"]]["contact_clocks"] == "rescheduled"
        assert (await timers(waiting["id"]))["contact_breach"] == (
            dt.datetime.fromisoformat(changes[waiting["id"]]["after"]["contact_due"]), True)
        assert changes[contacted["id"]]["contact_clocks"] == "unchanged_contacted"
        assert (await timers(contacted["id"]))["contact_breach"][1] is False  # stays cancelled: already contacted

        assert await fingerprints_of(closed["id"]) == closed_before  # closed: untouched, no event

        r = await recompute(client, {})  # nothing left to change
        assert not [c for c in r.json()["changes"] if c["complaint_id"] in mine]

        r = await recompute(client, {"states": ["closed"]})
        assert r.status_code == 400 and r.json()["field"] == "states"
    finally:
        await set_jinshan_at_office(client, False)
        async with platform_transaction() as conn:
            await conn.execute("DELETE FROM odr.plugin_activations WHERE tenant = 'shanghai' AND node_code = $1 AND plugin = $2",
                               OFFICE, JINSHAN)
        demo.forget_activations("shanghai")

    # Back on the national policy: only the states asked for are recomputed.
    r = await recompute(client, {"states": ["contacted"]}, user="sh-admin", node="310115")
    assert {c["complaint_id"] for c in r.json()["changes"] if c["complaint_id"] in mine} == {contacted["id"]}
    now = await get(client, contacted["id"])
    assert (now["deadline_policy"], now["contact_due"], now["close_due"]) == (
        NATIONAL, given[contacted["id"]]["contact_due"], given[contacted["id"]]["close_due"])
    assert (await get(client, waiting["id"]))["deadline_policy"] == JINSHAN


async def fingerprints_of(cid: str) -> tuple:
    async with tenant_transaction("shanghai") as conn:
        key = uuid.UUID(cid)
        return (
            await conn.fetchval("SELECT md5(t::text) FROM complaints t WHERE id = $1", key),
            await conn.fetchval("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM complaint_events t WHERE complaint_id = $1", key),
            await conn.fetchval("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM timers t WHERE complaint_id = $1", key),
        )


# -- replay: classification and scoring ---------------------------------------------------------------
async def unit_with_facts(node: str, name: str, *, employees: int | None = None, revenue: float | None = None,
                          scope: str | None = None, industry: str | None = "电子商务") -> str:
    """An active ODR unit with declared facts (direct row, as :func:`active_unit`)."""
    from tests.complaint_helpers import credit_code

    async with tenant_transaction("shanghai") as conn:
        return str(await conn.fetchval(
            """INSERT INTO enterprises (name, credit_code, unit_type, node_code, industry, employees, annual_revenue_cny,
                   business_scope, status, approved_at, approved_by)
               VALUES ($1, $2, 'enterprise', $3, $4, $5, $6, $7, 'active', now(), 'tests') RETURNING id""",
            name, credit_code(), node, industry, employees, revenue, scope))


async def test_classification_replay_of_enterprise_size_at_jinshan(client, demo):
    # Shaped like Jinshan's A/B/C e-commerce units; the retail bounds of the 2017 size standard apply.
    mine = {
        await unit_with_facts("310116", "金山测试综合电商甲", employees=800, revenue=500_000_000.0,
                              scope="综合性网络零售平台，百货全品类"): ("A", "large"),
        await unit_with_facts("310116-01", "金山测试母婴电商乙", employees=120, revenue=36_000_000.0,
                              scope="母婴用品网络销售"): ("B", "medium"),
        await unit_with_facts("310116-02", "金山测试农产品网店丙", employees=8, revenue=1_200_000.0,
                              scope="农产品网络销售"): ("C", "micro"),
        await unit_with_facts("310116-02", "金山测试网店丁", employees=30, revenue=None,
                              scope="服饰网络销售"): ("C", None),  # revenue undeclared: no size
    }
    before = await fingerprints()
    r = await replay(client, "js-officer", "310116", {"plugin": "odr_enterprise_size"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert await fingerprints() == before
    assert body["family"] == "classification" and body["dry_run"] is True
    assert body["families_supported"] == ["deadline_policy", "classification", "scoring"]
    assert body["deactivated"] == ["odr_jinshan_classification"]
    assert body["current_schemes"] == ["odr_jinshan_classification"] and body["candidate_schemes"] == ["odr_enterprise_size"]

    units = {u["enterprise_id"]: u for u in body["all_units"]}
    assert set(mine) <= set(units)
    for eid, (jinshan, size) in mine.items():
        u = units[eid]
        assert (u["current_scheme"], u["current_class"]) == ("odr_jinshan_classification", jinshan), u
        assert u["candidate_class"] == size and u["changed"] is True, u
        assert u["candidate_scheme"] == ("odr_enterprise_size" if size else None)
    changes = {u["enterprise_id"] for u in body["changes"]}
    assert set(mine) <= changes
    # Counts per class: my four by hand, on top of whatever other tests left in Jinshan.
    others = [u for eid, u in units.items() if eid not in mine]
    def count(side: str, extra: dict[str, int]) -> dict[str, int]:
        out = dict(extra)
        for u in others:
            out[u[f"{side}_class"] or ""] = out.get(u[f"{side}_class"] or "", 0) + 1
        return out
    assert body["current_counts"] == count("current", {"A": 1, "B": 1, "C": 2})
    assert body["candidate_counts"] == count("candidate", {"large": 1, "medium": 1, "micro": 1, "": 1})
    assert body["units"] == len(units) and body["changed"] == len(changes)
    assert sum(body["current_counts"].values()) == sum(body["candidate_counts"].values()) == len(units)

    # From Pudong (no scheme active): the current side has no class at all.
    r = await replay(client, "sh-admin", "310115", {"plugin": "odr_jinshan_classification"})
    assert r.status_code == 200, r.text
    assert r.json()["deactivated"] == [] and all(u["current_class"] is None for u in r.json()["all_units"])


SCORE_WINDOW = {"since": "2025-03-01", "until": "2025-03-31"}


async def seeded_complaint(unit: str, *, entered: str, contact_h: float, contact_due_d: float, cycle_d: float,
                           close_due_d: float, settled: bool, rating: int | None, breaches: list[str]) -> None:
    """A past complaint of ``unit`` in Lujiazui, entered at ``entered`` (Shanghai): closed when settled,
    else left ODR after its (unsettled) feedback; the feedback event comes ``cycle_d`` days after entry."""
    start = at(entered)
    end = start + dt.timedelta(days=cycle_d)
    async with tenant_transaction("shanghai") as conn:
        cid = await conn.fetchval(
            """INSERT INTO complaints (number, source, consumer_name, consumer_phone, enterprise_id, company_name, odr_unit,
                   node_code, node_path, subject, description, state, entered_odr_at, contact_due, close_due,
                   deadline_policy, contacted_at, feedback, settled, closed_at, rating, breaches, created_at)
               VALUES ('T-' || gen_random_uuid(), 'consumer', '测试用户', '13900000000', $1, '测试', true, '310115-01',
                       '310000/310115/310115-01', '评分测试', '评分测试', $2, $3, $4, $5, 'odr_national_deadline', $6,
                       jsonb_build_object('settled', $7::bool), $7, $8, $9, $10, $3)
               RETURNING id""",
            uuid.UUID(unit), "closed" if settled else "left_odr", start, start + dt.timedelta(days=contact_due_d),
            start + dt.timedelta(days=close_due_d), start + dt.timedelta(hours=contact_h), settled,
            end if settled else None, rating, breaches)
        await conn.execute(
            "INSERT INTO complaint_events (complaint_id, kind, actor_id, actor_role, at) VALUES ($1, 'feedback', 'tests', 'enterprise_specialist', $2)",
            cid, end)


async def set_plugin(client, node: str, plugin: str, active: bool) -> None:
    r = await client.put(f"/api/tenants/shanghai/policy/{node}/plugins/{plugin}", json={"active": active},
                         headers=await login(client, "sh-admin"))
    assert r.status_code == 200, r.text


async def test_scoring_replay_of_jiangsu_formula_against_national(client, demo):
    fast = (await active_unit("shanghai", "310115-01", name="陆家嘴测试快而少和解"))["id"]
    slow = (await active_unit("shanghai", "310115-01", name="陆家嘴测试慢而全和解"))["id"]
    # fast: contacted in 1 h, done in 2 days, one of two settled, rated 5 and 5, no breach.
    await seeded_complaint(fast, entered="2025-03-10 10:00", contact_h=1, contact_due_d=3, cycle_d=2, close_due_d=10,
                           settled=True, rating=5, breaches=[])
    await seeded_complaint(fast, entered="2025-03-11 10:00", contact_h=1, contact_due_d=3, cycle_d=2, close_due_d=10,
                           settled=False, rating=5, breaches=[])
    # slow: contacted after 4 days (due 3), closed after 10 (due 9), both settled, rated 4 and 4, 4 breaches.
    for day in ("2025-03-12 10:00", "2025-03-13 10:00"):
        await seeded_complaint(slow, entered=day, contact_h=96, contact_due_d=3, cycle_d=10, close_due_d=9,
                               settled=True, rating=4, breaches=["contact", "close"])
    # By hand. national (no class -> default weights .35/.25/.15/.10/.15; cycle 3 -> 1, 10 -> 0):
    #   fast 100 * (.35*.5 + .25*1 + .15*1 + .10*1 + .15*1) = 82.5; slow 100 * (.35*1 + .25*.75) = 53.75.
    # Jiangsu (50 settlement, 30 satisfaction, 10 without a previous period, -2 per breach):
    #   fast 50*.5 + 30*1 + 10 = 65; slow 50 + 30*.75 + 10 - 2*4 = 74.5.
    expected = {fast: (82.5, 65.0, 1, 2), slow: (53.75, 74.5, 2, 1)}
    await set_plugin(client, "310115", "odr_national_score", True)
    try:
        before = await fingerprints()
        r = await replay(client, "sh-admin", "310115", {"plugin": "odr_jiangsu_score", **SCORE_WINDOW})
        assert r.status_code == 200, r.text
        body = r.json()
        assert await fingerprints() == before
        assert body["family"] == "scoring" and body["deactivated"] == ["odr_national_score"]
        assert body["current_formulas"] == ["odr_national_score"] and body["candidate_formulas"] == ["odr_jiangsu_score"]
        units = {u["enterprise_id"]: u for u in body["units"]}
        for eid, (national, jiangsu, cur_rank, cand_rank) in expected.items():
            u = units[eid]
            assert u["current_score"] == pytest.approx(national, abs=0.01), u
            assert u["candidate_score"] == pytest.approx(jiangsu, abs=0.01), u
            assert (u["current_rank"], u["candidate_rank"], u["rank_change"]) == (cur_rank, cand_rank, cur_rank - cand_rank)
        ind = units[fast]["indicators"]
        assert (ind["handled"], ind["breaches"], ind["enterprise_class"]) == (2, 0, None)
        assert ind["settlement_rate"] == 0.5 and ind["satisfaction"] == 5.0
        assert ind["avg_cycle_days"] == pytest.approx(2.0) and ind["on_time_close_rate"] == 1.0
        ind = units[slow]["indicators"]
        assert (ind["handled"], ind["breaches"], ind["on_time_contact_rate"], ind["on_time_close_rate"]) == (2, 4, 0.0, 0.0)
        assert ind["avg_cycle_days"] == pytest.approx(10.0)
        # Only my two units handled complaints in March 2025: the others get no score and no rank.
        assert all(u["current_score"] is None and u["current_rank"] is None for e, u in units.items() if e not in expected)
        assert body["rank_changes"] == 2 and [u["enterprise_id"] for u in body["units"][:2]] == [fast, slow]

        # Without an active formula on the current side nothing is scored there.
        await set_plugin(client, "310115", "odr_national_score", False)
        demo.forget_activations("shanghai")
        r = await replay(client, "sh-admin", "310115", {"plugin": "odr_jiangsu_score", **SCORE_WINDOW})
        units = {u["enterprise_id"]: u for u in r.json()["units"]}
        assert units[fast]["current_score"] is None and units[fast]["candidate_score"] == pytest.approx(65.0)
        assert r.json()["deactivated"] == []
    finally:
        async with platform_transaction() as conn:
            await conn.execute("DELETE FROM odr.plugin_activations WHERE tenant = 'shanghai' AND plugin = 'odr_national_score'")
        demo.forget_activations("shanghai")
