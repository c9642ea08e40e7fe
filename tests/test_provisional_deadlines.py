"""Provisional deadlines end to end: the 2026-12-31 national case skips New Year's Day 2027 as a
provisional statutory holiday (explain API and command), complaints carry the mark (API, timeline,
console countdown), and a platform started with a calendar that knows 2027 (a vendor calendar with a
sample notice) recounts the open provisional deadlines once, each with an event, and none other."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest
import pytest_asyncio

from odr.app import create_app
from core.db.engine import platform_transaction, tenant_transaction
from core.deadlines.counting import count_period
from core.deadlines.provisional import EVENT, recompute_on_start, recompute_provisional
from core.deadlines.service import complaint_deadlines
from core.pluginhost.activations import save_activation
from core.pluginhost.host import PluginHost
from core.runtime import Platform
from odr_plugin_api import DeadlineClock
from tests.complaint_helpers import active_unit, consumer
from tests.console_helpers import signed_in
from tests.conftest import login
from tests.helpers import small_manifest
from tests.provisional_helpers import entered_at, file, stored
from tests.sample_plugins import notice_calendar

TZ = ZoneInfo("Asia/Shanghai")
NOTICE_PLUGIN = "t_notice_2027"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


# -- the national case in the issue -------------------------------------------------------------------
async def test_explain_2026_12_31_skips_new_years_day_2027_provisionally(client, demo, settings, tmp_path):
    r = await client.get("/api/tenants/shanghai/deadlines/explain", params={"node": "310115", "start": "2026-12-31T10:00"},
                         headers=await login(client, "sh-admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["provisional"] is True
    for period in (body["contact"], body["close"]):
        assert period["provisional"] is True and period["provisional_years"] == [2027]
        assert "2027" in period["provisional_note"] and "provisional" in period["provisional_note"]
        assert "2027-01-01" not in period["counted_days"]
        new_year = [s for s in period["skipped"] if s["day"] == "2027-01-01"]
        assert len(new_year) == 1 and new_year[0]["provisional"] is True
        assert "元旦" in new_year[0]["reason"] and "provisional" in new_year[0]["reason"]
        assert set(period["counted_days"]) <= set(period["provisional_days"])
    # Fri 1 Jan off, the weekend, then Mon 4 Jan on: 3 working days to Wed 6 Jan, 10 to Fri 15 Jan
    assert body["contact"]["due"] == "2027-01-06T23:59:59+08:00"
    assert body["close"]["due"] == "2027-01-15T23:59:59+08:00"

    env = {k: v for k, v in os.environ.items() if not k.startswith("ODR_")} | {
        "ODR_DATABASE_URL": settings.database_url, "ODR_DATA_DIR": str(tmp_path), "ODR_LOG_LEVEL": "WARNING"}
    odr = str(Path(sys.executable).with_name("odr"))
    proc = await asyncio.to_thread(
        subprocess.run, [odr, "deadlines", "explain", "--tenant", "shanghai", "--node", "310115", "--start", "2026-12-31T10:00"],
        env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == body


def test_a_period_on_notice_days_only_is_not_provisional_and_the_memo_keeps_the_flag(demo):
    from odr_builtin_calendar import mainland_day

    class Memo:
        def __init__(self):
            self.periods = {}

        def __call__(self, day):
            return mainland_day(day)

    memo = Memo()
    start = at("2026-12-21T09:00")
    first = count_period(start=start, days=10, clock=DeadlineClock.WORKING_DAYS, day_info=memo)
    again = count_period(start=start, days=10, clock=DeadlineClock.WORKING_DAYS, day_info=memo)
    plain = count_period(start=start, days=10, clock=DeadlineClock.WORKING_DAYS, day_info=mainland_day)
    assert first == again == plain and len(memo.periods) == 1
    assert first.provisional is True and first.provisional_years == [2027]
    assert first.provisional_days == [d for d in sorted(set(first.counted_days) | {s.day for s in first.skipped}) if d.year == 2027]
    early = count_period(start=at("2026-12-01T09:00"), days=10, clock=DeadlineClock.WORKING_DAYS, day_info=memo)
    assert early.provisional is False and early.provisional_days == [] and early.provisional_years == []
    assert early.provisional_note == "" and "2027" in first.provisional_note
    natural = count_period(start=start, days=30, clock=DeadlineClock.NATURAL_DAYS, day_info=memo)
    assert natural.provisional is False  # no calendar day is looked at
    # Jinshan's natural days with rollover: 7 days from Sun 27 Dec end on Sun 3 Jan 2027, which rolls over
    rolled = count_period(start=at("2026-12-27T09:00"), days=7, clock=DeadlineClock.NATURAL_DAYS, day_info=memo,
                          holiday_rollover=True)
    assert [d.day for d in rolled.rolled_over] == [dt.date(2027, 1, 3)] and rolled.rolled_over[0].provisional is True
    assert rolled.provisional is True and rolled.provisional_days == [dt.date(2027, 1, 3), dt.date(2027, 1, 4)]
    assert rolled.due == at("2027-01-04T23:59:59") and rolled.holiday_rollover is True


# -- a tenant of its own for the recount ----------------------------------------------------------------
@pytest_asyncio.fixture(scope="module")
async def province(demo):
    from tenants.onboarding import onboard

    manifest = small_manifest("prov13")
    await onboard(manifest, host=demo.host, actor="tests")
    root, district = manifest.nodes[0].code, manifest.nodes[1].code
    return {"slug": manifest.slug, "root": root, "district": district}


async def _file(client, province, unit, cons) -> str:
    return await file(client, province["slug"], unit, cons)


async def _entered_at(demo, province, cid: str, start: dt.datetime, *, state: str | None = None) -> None:
    await entered_at(demo, province["slug"], province["district"], cid, start, state=state)


async def _stored(province, cid: str):
    return await stored(province["slug"], cid)


def _platform_with_the_2027_notice(demo) -> Platform:
    """A platform process started with the vendor calendar that has the 2027 notice installed."""
    host = PluginHost(demo.settings.plugins_allow)
    host.load_entry_points()
    host.register(notice_calendar(NOTICE_PLUGIN), name=NOTICE_PLUGIN)
    return Platform(demo.settings, host=host)


async def test_a_calendar_with_the_2027_notice_recounts_the_open_provisional_deadlines_once(client, demo, province):
    slug = province["slug"]
    unit = await active_unit(slug, province["district"])
    username = await consumer(client, slug)
    cons = await login(client, username, "demo12315-pw")
    starts = {
        "new_year": at("2026-12-31T10:00"),    # the case: the notice only confirms the fixed holiday
        "spring": at("2027-01-27T10:00"),      # the notice's make-up day (Sun 31 Jan) and longer break move it
        "notice_known": at("2026-12-01T10:00"),  # never provisional
        "closed": at("2026-12-30T10:00"),      # provisional, but no longer running
        "next_year": at("2027-12-31T10:00"),   # provisional on 2028 days only: the 2027 notice does not cover it
    }
    ids = {}
    for key, start in starts.items():
        ids[key] = await _file(client, province, unit, cons)
        await _entered_at(demo, province, ids[key], start, state="closed" if key == "closed" else None)

    # the mark in the API and on the console (countdown, due dates), in both languages
    views = {k: (await client.get(f"/api/tenants/{slug}/complaints/{cid}", headers=cons)).json() for k, cid in ids.items()}
    assert {k: v["deadlines_provisional"] for k, v in views.items()} == {
        "new_year": True, "spring": True, "notice_known": False, "closed": True, "next_year": True}
    app = create_app(demo, manage_lifecycle=False)
    spec = await signed_in(app, unit["specialist"])
    page = (await spec.get(f"/ui/complaints/{ids['new_year']}")).text
    assert page.split('id="timeline"')[0].count('data-provisional="true"') == 3  # contact due, close due, countdown
    explained = page.split('id="deadlines-explained"')[1]
    assert explained.count('data-provisional="true"') == 2 and "元旦" in explained  # both periods, the day skipped
    assert "国务院放假通知尚未发布" in page
    assert "holiday notice for that year is not out yet" in (await spec.get(f"/ui/complaints/{ids['new_year']}?lang=en")).text
    inbox = (await spec.get("/ui/inbox")).text
    assert inbox.count('data-provisional="true"') == 3  # the three running provisional cases
    assert 'data-provisional="true"' not in (await spec.get(f"/ui/complaints/{ids['notice_known']}")).text

    before = {k: await _stored(province, cid) for k, cid in ids.items()}

    # the running platform's calendar still has no 2027 notice: nothing to recount, even with a regional
    # calendar answering one 2027 day (a local holiday) switched on for the province
    from tests.sample_plugins import local_holiday_calendar

    local = "t_local_2027"
    demo.host.register(local_holiday_calendar(local, dt.date(2027, 1, 5)), name=local)
    try:
        paths = {c: n.path for c, n in (await demo.nodes(slug)).items()}
        async with platform_transaction() as conn:
            await save_activation(conn, demo.host, tenant=slug, node_code=province["root"], plugin=local, active=True,
                                  config=None, actor="tests", node_paths=paths)
        demo.forget_activations(slug)
        assert (await complaint_deadlines(demo, slug, province["district"], starts["new_year"])).contact.due != (
            before["new_year"][0]["contact_due"])  # the local holiday is active there
        nothing = await recompute_provisional(demo, slug, apply=True)
        assert (nothing.examined, nothing.changed) == (3, 0)
    finally:
        demo.host.unregister(local)
        demo.forget_activations(slug)
    assert {k: await _stored(province, cid) for k, cid in ids.items()} == before

    # the platform starts with the vendor calendar that knows 2027, switched on for the province
    started = _platform_with_the_2027_notice(demo)
    paths = {c: n.path for c, n in (await demo.nodes(slug)).items()}
    async with platform_transaction() as conn:
        await save_activation(conn, started.host, tenant=slug, node_code=province["root"], plugin=NOTICE_PLUGIN,
                              active=True, config=None, actor="tests", node_paths=paths)
    listed = await recompute_provisional(started, slug)  # odr deadlines provisional: what would change
    assert (listed.examined, listed.changed) == (3, 2) and not any(c.applied for c in listed.changes)
    assert {c.complaint_id for c in listed.changes} == {ids["new_year"], ids["spring"]}
    assert {k: await _stored(province, cid) for k, cid in ids.items()} == before  # listing writes nothing

    results = {r.tenant: r for r in await recompute_on_start(started)}
    applied = results[slug]
    assert applied.changed == 2 and all(c.applied for c in applied.changes)
    after = {k: await _stored(province, cid) for k, cid in ids.items()}

    # the new counts are the sample notice's: what the same policy gives on that calendar
    for key in ("new_year", "spring"):
        row, events, timers, _ = after[key]
        expected = await complaint_deadlines(started, slug, province["district"], starts[key])
        stored = msgspec.json.decode(row["d"])
        assert stored["provisional"] is False and expected.provisional is False
        assert (row["contact_due"], row["close_due"]) == (expected.contact.due, expected.close.due)
        mine = [e for e in events if e["kind"] == EVENT]
        assert len(mine) == 1
        old, new = json.loads(mine[0]["before"]), json.loads(mine[0]["after"])
        moments = lambda e: (dt.datetime.fromisoformat(e["contact_due"]), dt.datetime.fromisoformat(e["close_due"]),
                             e["deadlines_provisional"])  # noqa: E731
        assert moments(old) == (before[key][0]["contact_due"], before[key][0]["close_due"], True)
        assert moments(new) == (expected.contact.due, expected.close.due, False) and set(old) == set(new) == {
            "contact_due", "close_due", "deadlines_provisional"}
        assert "2027" in mine[0]["note"] and NOTICE_PLUGIN in mine[0]["note"]
        assert row["version"] == before[key][0]["version"] + 1
    # New Year's Day was already counted as a holiday: same due moments, the mark goes, nobody is paged
    assert after["new_year"][0]["close_due"] == before["new_year"][0]["close_due"]
    assert after["new_year"][3] == []
    # the Spring Festival case moves (make-up Sunday 31 Jan counts, the break runs to 13 Feb)
    spring_before, spring_after = before["spring"][0], after["spring"][0]
    assert spring_after["contact_due"] < spring_before["contact_due"] and spring_after["close_due"] > spring_before["close_due"]
    assert after["spring"][2]["contact_breach"] == spring_after["contact_due"]
    assert after["spring"][2]["close_breach"] == spring_after["close_due"]
    recipients = sorted(n["recipient"] for n in after["spring"][3])
    assert recipients[0].startswith("account:") and f"enterprise:{unit['id']}" in recipients and len(recipients) == 3
    assert all("李小龙" not in n["payload"] and "13912345678" not in n["payload"] for n in after["spring"][3])
    # none other: not provisional, closed, or provisional on years the calendar still does not know
    for key in ("notice_known", "closed", "next_year"):
        assert after[key] == before[key], key

    # once: a second start finds nothing more
    again = {r.tenant: r for r in await recompute_on_start(started)}[slug]
    assert (again.examined, again.changed) == (1, 0)
    assert {k: await _stored(province, cid) for k, cid in ids.items()} == after

    # visible to the people on the case: the consumer's timeline, the enterprise's case page
    timeline = (await client.get(f"/api/tenants/{slug}/complaints/{ids['spring']}/timeline", headers=cons)).json()
    assert [e["kind"] for e in timeline].count(EVENT) == 1
    assert (await client.get(f"/api/tenants/{slug}/complaints/{ids['spring']}", headers=cons)).json()["deadlines_provisional"] is False
    page = (await spec.get(f"/ui/complaints/{ids['spring']}?lang=en")).text
    assert "deadlines recounted with the holiday notice" in page
    assert 'data-provisional="true"' not in page.split('id="timeline"')[0]  # due dates and countdown unmarked now
    assert spring_after["close_due"].astimezone(TZ).strftime("%Y-%m-%d %H:%M") in page.split('id="timeline"')[1]
    await spec.aclose()


async def test_the_command_lists_and_refuses_an_unknown_tenant(demo, province, settings, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODR_")} | {
        "ODR_DATABASE_URL": settings.database_url, "ODR_DATA_DIR": str(tmp_path), "ODR_LOG_LEVEL": "WARNING"}
    odr = str(Path(sys.executable).with_name("odr"))

    def run(*args):
        return subprocess.run([odr, "deadlines", "provisional", *args], env=env, capture_output=True, text=True, timeout=120)

    async with tenant_transaction(province["slug"]) as conn:
        provisional = await conn.fetchval(
            """SELECT count(*) FROM complaints WHERE state IN ('with_enterprise', 'contacted', 'negotiating', 'feedback_submitted')
               AND coalesce((deadlines->>'provisional')::boolean, false)""")
    proc = await asyncio.to_thread(run, "--tenant", province["slug"])
    assert proc.returncode == 0, proc.stderr
    [listed] = json.loads(proc.stdout)
    # this process has only the built-in calendar: nothing it could recount
    assert listed["tenant"] == province["slug"] and listed["apply"] is False
    assert listed["examined"] == provisional and listed["changed"] == 0 and listed["changes"] == []
    bad = await asyncio.to_thread(run, "--tenant", "no-such-province")
    assert bad.returncode == 2 and "--tenant" in bad.stderr


def long_working_day_policy(name: str, close_days: int):
    """A deadline policy whose close period, counted in working days, always reaches the next year."""
    import types

    from odr_plugin_api import DeadlinePlan, Family, PluginInfo, hookimpl

    @hookimpl
    def odr_plugin_info():
        return PluginInfo(name=name, version="0.1", title="long", families=(Family.DEADLINE_POLICY,))

    @hookimpl
    def odr_deadline_policy(scope, request):
        return DeadlinePlan(policy=name, version="0.1", contact_days=1, contact_clock=DeadlineClock.WORKING_DAYS,
                            close_days=close_days, close_clock=DeadlineClock.WORKING_DAYS)

    return types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_deadline_policy=odr_deadline_policy)


async def test_an_intake_counted_into_a_year_without_notice_is_marked_in_view_event_and_store(client, demo):
    from tenants.onboarding import onboard

    manifest = small_manifest("prov13b")
    await onboard(manifest, host=demo.host, actor="tests")
    root, district = manifest.nodes[0].code, manifest.nodes[1].code
    name = "t_long_policy"
    demo.host.register(long_working_day_policy(name, 260), name=name)
    try:
        paths = {c: n.path for c, n in (await demo.nodes(manifest.slug)).items()}
        async with platform_transaction() as conn:
            await save_activation(conn, demo.host, tenant=manifest.slug, node_code=root, plugin=name, active=True,
                                  config=None, actor="tests", node_paths=paths)
        demo.forget_activations(manifest.slug)
        unit = await active_unit(manifest.slug, district)
        cons = await login(client, await consumer(client, manifest.slug), "demo12315-pw")
        province = {"slug": manifest.slug, "district": district}
        cid = await _file(client, province, unit, cons)
        view = (await client.get(f"/api/tenants/{manifest.slug}/complaints/{cid}", headers=cons)).json()
        row, events, _, _ = await _stored(province, cid)
        stored = msgspec.json.decode(row["d"])
        # 260 working days from today run well into next year, which chinese-calendar has no notice for
        assert stored["close"]["provisional"] is True and stored["provisional"] is True
        assert view["deadlines_provisional"] is True
        assert stored["contact"]["provisional"] is bool(stored["contact"]["provisional_days"])
        [registered] = [json.loads(e["after"]) for e in events if e["kind"] == "registered"]
        assert registered["deadlines_provisional"] is True
    finally:
        demo.host.unregister(name)
        demo.forget_activations(manifest.slug)


PLUGIN_MODULE = '''"""The sample 2027 notice calendar of tests/sample_plugins.py as an installed vendor plugin."""
from tests.sample_plugins import notice_calendar

_plugin = notice_calendar("t_notice_2027")
odr_plugin_info = _plugin.odr_plugin_info
odr_calendar_day = _plugin.odr_calendar_day
'''


async def test_odr_serve_started_with_the_notice_calendar_installed_recounts_at_start(client, demo, settings, tmp_path):
    """The real start: ``odr serve`` in a subprocess with the vendor calendar installed (a dist-info
    with its entry point, allowed by name) recounts the provisional deadline before it serves."""
    from tenants.onboarding import onboard
    from tests.ui_browser import Server

    manifest = small_manifest("prov13c")
    await onboard(manifest, host=demo.host, actor="tests")
    province = {"slug": manifest.slug, "root": manifest.nodes[0].code, "district": manifest.nodes[1].code}
    unit = await active_unit(manifest.slug, province["district"])
    cons = await login(client, await consumer(client, manifest.slug), "demo12315-pw")
    cid = await _file(client, province, unit, cons)
    await _entered_at(demo, province, cid, at("2027-01-27T10:00"))
    started = _platform_with_the_2027_notice(demo)
    paths = {c: n.path for c, n in (await demo.nodes(manifest.slug)).items()}
    async with platform_transaction() as conn:
        await save_activation(conn, started.host, tenant=manifest.slug, node_code=province["root"], plugin=NOTICE_PLUGIN,
                              active=True, config=None, actor="tests", node_paths=paths)
    expected = await complaint_deadlines(started, manifest.slug, province["district"], at("2027-01-27T10:00"))
    row, events, _, _ = await _stored(province, cid)
    assert msgspec.json.decode(row["d"])["provisional"] is True and row["close_due"] != expected.close.due

    info = tmp_path / "t_notice_2027_sample-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: t-notice-2027-sample\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[odr.plugins]\n{NOTICE_PLUGIN} = t_notice_2027_sample\n")
    (tmp_path / "t_notice_2027_sample.py").write_text(PLUGIN_MODULE)
    env = {"ODR_DATABASE_URL": settings.database_url, "ODR_VALKEY_URL": settings.valkey_url,
           "ODR_PLUGINS_ALLOW": f"builtin,{NOTICE_PLUGIN}", "ODR_SECRET_KEY": settings.secret_key,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    server = await asyncio.to_thread(Server, env)
    try:
        assert server.errors() == []
    finally:
        server.stop()
        server.cleanup()
    row, after_events, timers, notices = await _stored(province, cid)
    assert msgspec.json.decode(row["d"])["provisional"] is False
    assert (row["contact_due"], row["close_due"]) == (expected.contact.due, expected.close.due)
    assert [e["kind"] for e in after_events] == [e["kind"] for e in events] + [EVENT]
    assert timers["close_breach"] == expected.close.due and len(notices) == 3
