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
from tests.sample_plugins import deadline_policy

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

    assert body["dry_run"] is True and body["families_supported"] == ["deadline_policy"]
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


async def test_replay_refuses_other_families_and_bad_config_naming_the_field(client, demo):
    r = await replay(client, "sh-admin", "310115", {"plugin": "odr_builtin_calendar"})
    assert r.status_code == 400 and r.json()["field"] == "plugin"
    assert "deadline_policy" in r.json()["detail"] and r.json()["families_supported"] == ["deadline_policy"]
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
