"""Spot-check findings on an ODR unit's feedback (Art. 17; Art. 22(2) "seriously untrue feedback"): the
finding is recorded on the complaint and its event, carried into complaint_facts, and counted in the
evaluation's ``untrue_feedback_findings`` (Jiangsu's formula deducts for each); a finding needs a
feedback to judge, and the policy replay's scoring counts the same findings."""

from __future__ import annotations

import datetime as dt

import pytest
import pytest_asyncio

from odr.app import create_app
from core.auth.principal import Role
from core.db.engine import tenant_transaction
from tests.conftest import login
from tests.report_helpers import seeded_copy
from tests.console_helpers import TOKEN, signed_in

SLUG = "untruejs"
API = f"/api/tenants/{SLUG}"
ANCHOR = dt.datetime(2026, 6, 25, 4, 0, tzinfo=dt.timezone.utc)  # the seeded 90 days lie inside 2026
ACCOUNTS = (("ut-admin", Role.PROVINCE_ADMIN, "320000"),)


@pytest_asyncio.fixture(scope="module")
async def seeded(demo):
    async with seeded_copy(demo, "jiangsu", SLUG, ACCOUNTS, now=ANCHOR) as summary:
        yield summary


async def spot_check(client, complaint_id, **body):
    return await client.post(f"{API}/complaints/{complaint_id}/actions/spot_check",
                             json={"note": "抽查反馈记录", **body}, headers=await login(client, "ut-admin"))


async def facts_and_view(complaint_id) -> tuple:
    async with tenant_transaction(SLUG) as conn:
        fact = await conn.fetchrow("SELECT * FROM complaint_facts WHERE complaint_id = $1", complaint_id)
        source = await conn.fetchrow("SELECT * FROM complaint_facts_source WHERE complaint_id = $1", complaint_id)
    return dict(fact), dict(source)


async def test_findings_are_recorded_carried_into_facts_and_counted_by_the_evaluation(client, seeded):
    async with tenant_transaction(SLUG) as conn:
        unit = await conn.fetchrow(
            """SELECT e.id, e.name, count(*) AS fed FROM enterprises e JOIN complaints c ON c.enterprise_id = e.id
               WHERE c.feedback IS NOT NULL AND e.status = 'active' GROUP BY e.id, e.name ORDER BY count(*) DESC LIMIT 1""")
        fed = [r["id"] for r in await conn.fetch(
            """SELECT id FROM complaints WHERE enterprise_id = $1 AND feedback IS NOT NULL AND feedback_untrue IS NULL
               ORDER BY id LIMIT 3""", unit["id"])]
        seeded_findings = await conn.fetchval(
            "SELECT count(*) FROM complaints WHERE enterprise_id = $1 AND feedback_untrue", unit["id"])
        unfed = await conn.fetchval(
            "SELECT id FROM complaints WHERE feedback IS NULL AND state NOT IN ('closed') ORDER BY id LIMIT 1")
    assert len(fed) == 3 and unfed is not None

    # a finding without a feedback to judge: 409 naming the field, nothing written
    async with tenant_transaction(SLUG) as conn:
        events_before = await conn.fetchval("SELECT count(*) FROM complaint_events WHERE complaint_id = $1", unfed)
    r = await spot_check(client, unfed, feedback_untrue=True)
    assert r.status_code == 409 and r.json()["detail"].startswith("feedback_untrue:"), r.text
    async with tenant_transaction(SLUG) as conn:
        assert await conn.fetchval("SELECT count(*) FROM complaint_events WHERE complaint_id = $1", unfed) == events_before
        assert await conn.fetchval("SELECT feedback_untrue FROM complaints WHERE id = $1", unfed) is None
    r = await spot_check(client, unfed, feedback_untrue="yes")
    assert r.status_code == 400 and "feedback_untrue" in r.text
    r = await spot_check(client, unfed)  # a spot check without a finding is always possible
    assert r.status_code == 200 and r.json()["feedback_untrue"] is None, r.text

    # two found untrue, one found true; then the true one re-checked untrue and back (the latest counts)
    for cid, finding in ((fed[0], True), (fed[1], True), (fed[2], False), (fed[2], True), (fed[2], False)):
        r = await spot_check(client, cid, feedback_untrue=finding)
        assert r.status_code == 200 and r.json()["feedback_untrue"] is finding, r.text
    r = await client.get(f"{API}/complaints/{fed[0]}/timeline", headers=await login(client, "ut-admin"))
    checks = [e for e in r.json() if e["kind"] == "spot_check"]
    assert checks[-1]["after"]["feedback_untrue"] is True and checks[-1]["note"] == "抽查反馈记录"
    for cid, finding in zip(fed, (True, True, False)):
        fact, source = await facts_and_view(cid)
        assert fact == source and fact["feedback_untrue"] is finding
    # the unit is told of each finding against it (fed[2] was found untrue once), not of the others
    async with tenant_transaction(SLUG) as conn:
        told = await conn.fetch(
            """SELECT complaint_id, recipient FROM notifications WHERE kind = 'feedback_found_untrue'
               ORDER BY complaint_id""")
    assert sorted((r["complaint_id"], r["recipient"]) for r in told) == sorted(
        (cid, f"enterprise:{unit['id']}") for cid in fed)

    async with tenant_transaction(SLUG) as conn:
        expected = {str(r["enterprise_id"]): r["n"] for r in await conn.fetch(
            """SELECT enterprise_id, count(*) AS n FROM complaints
               WHERE feedback_untrue AND entered_odr_at >= '2026-01-01 00:00+08' AND entered_odr_at < '2027-01-01 00:00+08'
               GROUP BY 1""")}
    assert expected[str(unit["id"])] == seeded_findings + 2
    assert sum(u.untrue_feedback for u in seeded.units) == sum(expected.values()) - 2  # the demo history has some

    headers = await login(client, "ut-admin")
    r = await client.post(f"{API}/evaluation-periods", json={"kind": "yearly", "starts_on": "2026-01-01"}, headers=headers)
    assert r.status_code == 201, r.text
    r = await client.post(f"{API}/evaluation-periods/{r.json()['id']}/evaluations", json={}, headers=headers)
    assert r.status_code == 201, r.text
    run = r.json()
    r = await client.get(f"{API}/evaluations/{run['id']}/results", params={"limit": 500}, headers=headers)
    results = {x["enterprise_id"]: x for x in r.json()["results"]}
    for enterprise_id, result in results.items():
        assert result["untrue_feedback_findings"] == expected.get(enterprise_id, 0)
    mine = results[str(unit["id"])]
    assert mine["plugin"] == "odr_jiangsu_score"
    for x in results.values():  # 10 points per finding (the formula's default)
        if x["score"] is not None:
            assert x["score_parts"]["untrue_feedback"] == pytest.approx(-10.0 * expected.get(x["enterprise_id"], 0))
    r = await client.post(f"{API}/evaluations/{run['id']}/reproduce", headers=headers)
    assert r.status_code == 200 and r.json()["identical"] is True, r.text

    # the policy replay's scoring counts the same findings (Jiangsu's formula is the current one)
    r = await client.post(f"{API}/policy/320000/replay", headers=headers,
                          json={"plugin": "odr_national_score", "since": "2026-01-01", "until": "2026-12-31"})
    assert r.status_code == 200, r.text
    replayed = {u["enterprise_id"]: u for u in r.json()["units"]}
    for k, u in replayed.items():
        if u["indicators"] is not None:
            assert u["indicators"]["untrue_feedback_findings"] == expected.get(k, 0)
            assert u["current_parts"]["untrue_feedback"] == pytest.approx(-10.0 * expected.get(k, 0))


async def test_the_console_offers_the_finding_only_with_a_feedback_and_shows_it(seeded, demo):
    app = create_app(demo, manage_lifecycle=False)
    async with tenant_transaction(SLUG) as conn:
        fed = await conn.fetchval("SELECT id FROM complaints WHERE feedback IS NOT NULL AND feedback_untrue IS NULL"
                                  " ORDER BY id DESC LIMIT 1")
        unfed = await conn.fetchval("SELECT id FROM complaints WHERE feedback IS NULL ORDER BY id DESC LIMIT 1")
    admin = await signed_in(app, "ut-admin")
    assert 'name="feedback_untrue"' not in (await admin.get(f"/ui/complaints/{unfed}")).text
    page = await admin.get(f"/ui/complaints/{fed}")
    assert page.status_code == 200 and 'name="feedback_untrue"' in page.text and "反馈严重不实" in page.text
    r = await admin.post(f"/ui/complaints/{fed}/actions/spot_check",
                         data={"note": "抽查：退款凭证与反馈不符", "feedback_untrue": "true",
                               "_csrf_token": TOKEN.search(page.text).group(1)})
    assert r.status_code == 303, r.text
    shown = (await admin.get(f"/ui/complaints/{fed}?lang=en")).text
    assert "Spot-check finding" in shown and "Feedback seriously untrue (Art. 22)" in shown
    async with tenant_transaction(SLUG) as conn:
        assert await conn.fetchval("SELECT feedback_untrue FROM complaint_facts WHERE complaint_id = $1", fed) is True
