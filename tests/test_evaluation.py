"""Efficacy evaluation (Art. 20-23) on a copy of the demo Shanghai tenant with Jinshan's figures seeded
(A/B/C 508 / 29 / 2 complaints, about 85 % / 95 % / 100 % settled) in the first half of 2026: the run's
per-class counts and settlement rates equal the seeded truth; a stored run reproduces identically after
the scoring configuration changed; publication, the public pages (nothing personal), exit proposals and
decisions, access and bad input."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import pytest_asyncio

from core.auth.principal import Role
from core.db.engine import platform_transaction, tenant_transaction
from core.pluginhost.activations import save_activation
from tests.conftest import login
from tests.report_helpers import seeded_copy

SLUG = "evalsh"
API = f"/api/tenants/{SLUG}"
ANCHOR = dt.datetime(2026, 6, 25, 4, 0, tzinfo=dt.timezone.utc)  # the seeded 90 days lie inside 2026
ACCOUNTS = (
    ("ev-admin", Role.PROVINCE_ADMIN, "310000"),
    ("ev-js-officer", Role.BUREAU_OFFICER, "310116"),
    ("ev-js-head", Role.OFFICE_HEAD, "310116-01"),
    ("ev-pd-officer", Role.BUREAU_OFFICER, "310115"),
)
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID_NUMBER = re.compile(r"(?<![0-9A-Z])\d{17}[\dX](?![0-9A-Z])")


@pytest_asyncio.fixture(scope="module")
async def seeded(demo):
    async with seeded_copy(demo, "shanghai", SLUG, ACCOUNTS, per_unit={"js-a": 508, "js-b": 29}, now=ANCHOR) as summary:
        yield {u.key: u for u in summary.units}


async def post(client, user, path, body=None):
    return await client.post(f"{API}{path}", json=body, headers=await login(client, user))


async def get(client, user, path, **params):
    return await client.get(f"{API}{path}", params=params, headers=await login(client, user))


async def set_weights(demo, settlement: float) -> None:
    """Reconfigure the province's national score (a bureau saving a new configuration)."""
    paths = {c: n.path for c, n in (await demo.nodes(SLUG)).items()}
    async with platform_transaction() as conn:
        await save_activation(conn, demo.host, tenant=SLUG, node_code="310000", plugin="odr_national_score",
                              active=True, config={"weights": {"default": {"settlement_rate": settlement}}},
                              actor="tests", node_paths=paths)
    demo.forget_activations(SLUG)


async def all_results(client, user, evaluation_id) -> list[dict]:
    r = await get(client, user, f"/evaluations/{evaluation_id}/results", limit=500)
    assert r.status_code == 200, r.text
    assert r.json()["total"] == len(r.json()["results"])
    return r.json()["results"]


async def test_periods_validation_and_access(client, seeded):
    r = await post(client, "ev-admin", "/evaluation-periods", {"kind": "yearly", "starts_on": "2026-02-01"})
    assert r.status_code == 400 and r.json()["field"] == "starts_on", r.text
    r = await post(client, "ev-admin", "/evaluation-periods", {"kind": "weekly", "starts_on": "2026-01-01"})
    assert r.status_code == 400 and "kind" in r.text
    r = await post(client, "ev-admin", "/evaluation-periods", {"kind": "quarterly"})
    assert r.status_code == 400 and "starts_on" in r.text
    r = await post(client, "ev-js-officer", "/evaluation-periods", {"kind": "yearly", "starts_on": "2026-01-01"})
    assert r.status_code == 403
    r = await post(client, "ev-admin", "/evaluation-periods", {"kind": "quarterly", "starts_on": "2026-04-01"})
    assert r.status_code == 201 and r.json()["label"] == "2026-Q2" and r.json()["ends_on"] == "2026-06-30"
    r = await post(client, "ev-admin", "/evaluation-periods", {"kind": "quarterly", "starts_on": "2026-04-01"})
    assert r.status_code == 409 and r.json()["field"] == "starts_on"
    r = await post(client, "ev-admin", "/evaluation-periods", {"kind": "monthly", "starts_on": "2099-01-01"})
    future = r.json()["id"]
    r = await post(client, "ev-admin", f"/evaluation-periods/{future}/evaluations", {})
    assert r.status_code == 409 and r.json()["field"] == "period"
    r = await post(client, "ev-admin", "/evaluation-periods/not-a-period/evaluations", {})
    assert r.status_code == 404
    # other tenants' staff do not see this tenant's evaluations
    assert (await client.get(f"{API}/evaluation-periods", headers=await login(client, "js-officer"))).status_code == 404


async def test_run_reproduces_seeded_truth_and_stays_reproducible(client, demo, seeded):
    r = await post(client, "ev-admin", "/evaluation-periods", {"kind": "yearly", "starts_on": "2026-01-01"})
    assert r.status_code == 201, r.text
    period = r.json()["id"]
    r = await post(client, "ev-admin", f"/evaluation-periods/{period}/evaluations", {})
    assert r.status_code == 201, r.text
    run1 = r.json()
    classes = {c["enterprise_class"]: c for c in run1["classes"]}
    for key, cls in (("js-a", "A"), ("js-b", "B"), ("js-c", "C")):
        u, c = seeded[key], classes[cls]
        assert u.enterprise_class == cls
        assert (c["units"], c["handled"], c["with_feedback"], c["settled"], c["rated"]) == (
            1, u.complaints, u.with_feedback, u.settled, u.rated), key
        assert c["settlement_rate"] == pytest.approx(u.settlement_rate, abs=1e-4)
    assert (classes["A"]["handled"], classes["B"]["handled"], classes["C"]["handled"]) == (508, 29, 2)
    assert classes["A"]["settlement_rate"] == pytest.approx(0.85, abs=0.02)
    assert classes["B"]["settlement_rate"] == pytest.approx(0.95, abs=0.04)
    assert classes["C"]["settlement_rate"] == 1.0
    assert run1["units"] == 4 and run1["scored"] == 4  # Jinshan's three and Pudong's one
    assert {p["plugin"] for p in run1["policies"]} == {"odr_national_score"}

    results = await all_results(client, "ev-admin", run1["id"])
    by_name = {r["name"]: r for r in results}
    a = by_name[seeded["js-a"].name]
    assert a["handled"] == 508 and a["plugin"] == "odr_national_score" and a["plugin_version"]
    assert 0 <= a["score"] <= 100 and a["class_rank"] == 1 and a["class_size"] == 1
    assert sum(a["score_parts"].values()) == pytest.approx(a["score"], abs=0.05)
    assert a["p90_cycle_days"] >= a["avg_cycle_days"] > 0

    # Reconfigure the formula: the stored run still reproduces exactly; a new run differs.
    await set_weights(demo, settlement=5.0)
    r = await post(client, "ev-admin", f"/evaluations/{run1['id']}/reproduce")
    assert r.status_code == 200 and r.json()["identical"] is True and r.json()["units"] == 4, r.text
    r = await post(client, "ev-admin", f"/evaluation-periods/{period}/evaluations", {})
    run2 = r.json()
    assert run2["run_no"] == 2
    scores1 = {x["enterprise_id"]: x["score"] for x in results}
    scores2 = {x["enterprise_id"]: x["score"] for x in await all_results(client, "ev-admin", run2["id"])}
    assert scores1 != scores2
    assert run2["policies"][0]["config"]["weights"]["default"]["settlement_rate"] == 5.0

    # Stored results are immutable, even to the tenant's own role.
    async with tenant_transaction(SLUG) as conn:
        with pytest.raises(Exception, match="permission denied|immutable"):
            await conn.execute("UPDATE evaluation_results SET score = 0")

    # Publish run 1: the period closes with it; no further runs; it still reproduces identically.
    r = await post(client, "ev-js-officer", f"/evaluations/{run1['id']}/publish")
    assert r.status_code == 403
    r = await post(client, "ev-admin", f"/evaluations/{run1['id']}/publish")
    assert r.status_code == 200 and r.json()["published_at"] and r.json()["period"]["status"] == "closed"
    assert r.json()["period"]["final_evaluation_id"] == run1["id"]
    r = await post(client, "ev-admin", f"/evaluation-periods/{period}/evaluations", {})
    assert r.status_code == 409 and r.json()["allowed"] == ["reproduce"]
    r = await post(client, "ev-admin", f"/evaluations/{run2['id']}/publish")
    assert r.status_code == 409
    await set_weights(demo, settlement=80.0)
    assert (await post(client, "ev-admin", f"/evaluations/{run1['id']}/reproduce")).json()["identical"] is True

    # The public pages: the published run, nothing personal.
    r = await client.get(f"/public/{SLUG}/evaluations")
    assert r.status_code == 200 and [e["id"] for e in r.json()] == [run1["id"]]
    r = await client.get(f"/public/{SLUG}/evaluations/{run1['id']}", params={"limit": 500})
    assert r.status_code == 200 and r.json()["total"] == 4
    public = {x["name"]: x for x in r.json()["results"]}
    assert public[seeded["js-a"].name]["score"] == a["score"]
    assert "金山" in public[seeded["js-a"].name]["district"]
    assert (await client.get(f"/public/{SLUG}/evaluations/{run2['id']}")).status_code == 404
    r = await client.get(f"/public/{SLUG}/evaluations/{run1['id']}", params={"class": "B"})
    assert [x["enterprise_class"] for x in r.json()["results"]] == ["B"]
    async with tenant_transaction(SLUG) as conn:
        consumers = {row[0] for row in await conn.fetch("SELECT DISTINCT consumer_name FROM complaints")}
        phones = {row[0] for row in await conn.fetch("SELECT DISTINCT consumer_phone FROM complaints")}
    assert consumers and phones
    for url in (f"/public/{SLUG}/evaluations", f"/public/{SLUG}/evaluations/{run1['id']}?limit=500"):
        text = (await client.get(url)).text
        assert not PHONE.search(text) and not ID_NUMBER.search(text), url
        assert not any(name in text for name in consumers) and not any(p in text for p in phones), url


async def test_exit_proposals_and_decisions(client, demo, seeded):
    settings = {"settings": {"exit_threshold": 100, "exit_consecutive_periods": 2}}
    ids = []
    for month in ("2026-05-01", "2026-06-01"):
        r = await post(client, "ev-admin", "/evaluation-periods", {"kind": "monthly", "starts_on": month})
        ids.append(r.json()["id"])
    r = await post(client, "ev-admin", f"/evaluation-periods/{ids[1]}/evaluations", settings)
    assert r.status_code == 201 and r.json()["proposals_raised"] == 0  # May not evaluated yet: no run of two
    r = await post(client, "ev-admin", f"/evaluation-periods/{ids[0]}/evaluations", settings)
    assert r.json()["proposals_raised"] == 0  # April does not exist
    r = await post(client, "ev-admin", f"/evaluation-periods/{ids[1]}/evaluations", settings)
    june = r.json()
    low_in_both = {x["enterprise_id"] for x in await all_results(client, "ev-admin", june["id"]) if x["below_threshold"]}
    may_runs = (await get(client, "ev-admin", f"/evaluation-periods/{ids[0]}/evaluations")).json()
    low_in_may = {x["enterprise_id"] for x in await all_results(client, "ev-admin", may_runs[-1]["id"]) if x["below_threshold"]}
    expected = low_in_both & low_in_may
    assert expected and june["proposals_raised"] == len(expected)

    # Jinshan's officer sees the proposals about Jinshan's units only; Pudong's about Pudong's.
    js = (await get(client, "ev-js-officer", "/revocation-proposals", status="proposed")).json()
    pd = (await get(client, "ev-pd-officer", "/revocation-proposals", status="proposed")).json()
    assert {p["enterprise_id"] for p in js} | {p["enterprise_id"] for p in pd} == expected
    assert all(p["node_code"].startswith("310116") for p in js) and all(p["node_code"].startswith("310115") for p in pd)
    assert all(p["ground"] == "low_settlement_rate" and p["source"] == "evaluation" and "2026-05, 2026-06" in p["detail"]
               for p in js + pd)
    # evaluating June again raises no second proposal while one is undecided
    r = await post(client, "ev-admin", f"/evaluation-periods/{ids[1]}/evaluations", settings)
    assert r.json()["proposals_raised"] == 0

    assert len(js) >= 2  # A and B handled complaints in both months
    target = next(p for p in js if p["enterprise_name"] == seeded["js-a"].name)
    r = await post(client, "ev-pd-officer", f"/revocation-proposals/{target['id']}/decision",
                   {"decision": "revoke", "note": "x"})
    assert r.status_code == 404
    r = await post(client, "ev-js-head", f"/revocation-proposals/{target['id']}/decision",
                   {"decision": "revoke", "note": "x"})
    assert r.status_code == 403
    r = await post(client, "ev-js-officer", f"/revocation-proposals/{target['id']}/decision", {"decision": "revoke"})
    assert r.status_code == 400 and "note" in r.text
    r = await post(client, "ev-js-officer", f"/revocation-proposals/{target['id']}/decision",
                   {"decision": "revoke", "note": "连续两期评价低于阈值，依第二十二条第三项撤销"})
    assert r.status_code == 200 and r.json()["status"] == "revoked" and r.json()["decided_node"] == "310116", r.text
    async with tenant_transaction(SLUG) as conn:
        unit = await conn.fetchrow("SELECT status, revocation_ground, revocation_detail FROM enterprises WHERE id = $1::uuid",
                                   target["enterprise_id"])
    assert (unit["status"], unit["revocation_ground"]) == ("revoked", "low_settlement_rate")
    assert "第二十二条" in unit["revocation_detail"]
    r = await post(client, "ev-js-officer", f"/revocation-proposals/{target['id']}/decision",
                   {"decision": "dismiss", "note": "again"})
    assert r.status_code == 409
    other = next(p for p in js if p["id"] != target["id"])
    r = await post(client, "ev-js-officer", f"/revocation-proposals/{other['id']}/decision",
                   {"decision": "dismiss", "note": "整改中，暂不撤销"})
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    async with tenant_transaction(SLUG) as conn:
        assert await conn.fetchval("SELECT status FROM enterprises WHERE id = $1::uuid", other["enterprise_id"]) == "active"


async def test_grounds_raised_from_a_complaint_or_spot_check(client, seeded):
    async with tenant_transaction(SLUG) as conn:
        b = await conn.fetchrow("SELECT id FROM enterprises WHERE name = $1", seeded["js-b"].name)
        complaint = await conn.fetchval("SELECT id FROM complaints WHERE enterprise_id = $1 LIMIT 1", b["id"])
        pd_complaint = await conn.fetchval(
            "SELECT id FROM complaints WHERE enterprise_id <> $1 AND node_code LIKE '310115%' LIMIT 1", b["id"])
    body = {"enterprise_id": str(b["id"]), "ground": "untrue_feedback", "source": "complaint",
            "detail": "抽查发现反馈的退款记录不实"}
    r = await post(client, "ev-js-officer", "/revocation-proposals", body)
    assert r.status_code == 400 and r.json()["field"] == "complaint_id"
    r = await post(client, "ev-js-officer", "/revocation-proposals", {**body, "complaint_id": str(pd_complaint)})
    assert r.status_code == 404 and r.json()["field"] == "complaint_id"
    r = await post(client, "ev-js-officer", "/revocation-proposals", {**body, "ground": "made_up", "complaint_id": str(complaint)})
    assert r.status_code == 400 and "ground" in r.text
    r = await post(client, "ev-pd-officer", "/revocation-proposals", {**body, "complaint_id": str(complaint)})
    assert r.status_code == 404 and r.json()["field"] == "enterprise_id"
    r = await post(client, "ev-js-officer", "/revocation-proposals", {**body, "complaint_id": str(complaint)})
    assert r.status_code == 201 and r.json()["source"] == "complaint" and r.json()["status"] == "proposed", r.text
    r = await post(client, "ev-js-officer", "/revocation-proposals",
                   {"enterprise_id": str(b["id"]), "ground": "deliberate_delay_or_refusal", "source": "spot_check",
                    "detail": "抽查：多次拖延联系消费者"})
    assert r.status_code == 201 and r.json()["source"] == "spot_check"


def test_a_failing_scoring_plugin_leaves_the_unit_unscored_and_is_counted():
    """The evaluation's per-node scorer: a plugin that raises is skipped (the unit gets no score), its
    failure is counted, and nothing escapes to the run."""
    import types

    from core.evaluation.scoring import NodeScorer as _NodeScorer
    from core.pluginhost.host import PluginHost
    from odr_plugin_api import Family, Indicators, PluginInfo, Scope, hookimpl

    @hookimpl
    def odr_plugin_info():
        return PluginInfo(name="t_raising_score", version="0.1", title="raises", families=(Family.SCORING,))

    @hookimpl
    def odr_score_enterprise(scope, indicators):
        raise RuntimeError("consumer 13800138000 broke me")

    host = PluginHost()
    host.register(types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_score_enterprise=odr_score_enterprise),
                  name="t_raising_score")
    scorer = _NodeScorer(types.SimpleNamespace(host=host), Scope(tenant="x", node_path=("1",)),
                         frozenset({"t_raising_score"}))
    indicators = Indicators(handled=3, settlement_rate=1.0, satisfaction=None, avg_cycle_days=None,
                            on_time_contact_rate=1.0, on_time_close_rate=1.0)
    result, plugin, failure = scorer.score(indicators)
    assert (result, plugin) == (None, None)
    assert (failure["plugin"], failure["hook"], failure["error"]) == ("t_raising_score", "odr_score_enterprise",
                                                                       "RuntimeError")
    assert "13800138000" not in str(failure)
    assert host.failures[("t_raising_score", "odr_score_enterprise")] == 1
    assert scorer.policies() == [("t_raising_score", "0.1", None)]


async def test_units_left_unscored_carry_the_reason_and_block_publication_until_decided(client, demo, seeded):
    """Issue 27 (3): a scoring plugin that fails leaves its units unscored with the reason; the run
    counts them; publishing needs an explicit decision with a reason, recorded; reproduce counts them.
    Also (7): the conflict with the province's formula names the node it comes from and the fix."""
    import types

    from odr_plugin_api import Family, PluginInfo, ScoreResult, hookimpl

    state = {"broken": False}

    @hookimpl
    def odr_plugin_info():
        return PluginInfo(name="t_flaky_score", version="0.1", title="flaky", families=(Family.SCORING,))

    @hookimpl
    def odr_score_enterprise(scope, indicators):
        if state["broken"]:
            raise ZeroDivisionError("float division by zero")
        return ScoreResult(formula="t_flaky_score", version="0.1", score=50.0)

    demo.host.register(types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_score_enterprise=odr_score_enterprise),
                       name="t_flaky_score")
    plugin_path = f"/api/tenants/{SLUG}/policy/310116/plugins"
    head = await login(client, "ev-js-officer")
    try:
        r = await client.put(f"{plugin_path}/t_flaky_score", json={"active": True}, headers=head)
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert "odr_national_score (inherited from node 310000)" in detail and "switch it off at node 310116" in detail
        r = await client.put(f"{plugin_path}/odr_national_score", json={"active": False}, headers=head)
        assert r.status_code == 200, r.text
        r = await client.put(f"{plugin_path}/t_flaky_score", json={"active": True}, headers=head)
        assert r.status_code == 200, r.text
        state["broken"] = True

        r = await post(client, "ev-admin", "/evaluation-periods", {"kind": "monthly", "starts_on": "2026-04-01"})
        assert r.status_code == 201, r.text
        r = await post(client, "ev-admin", f"/evaluation-periods/{r.json()['id']}/evaluations", {})
        assert r.status_code == 201, r.text
        run = r.json()
        results = await all_results(client, "ev-admin", run["id"])
        failed = [x for x in results if x["score_failure"]]
        assert failed and run["unscored"] == len(failed)
        for x in failed:
            assert x["score"] is None and x["node_code"].startswith("310116")
            assert (x["score_failure"]["plugin"], x["score_failure"]["hook"], x["score_failure"]["error"]) == (
                "t_flaky_score", "odr_score_enterprise", "ZeroDivisionError")
        assert all(x["score"] is not None for x in results if x["node_code"] == "310115" and x["handled"])

        r = await post(client, "ev-admin", f"/evaluations/{run['id']}/reproduce")
        assert r.status_code == 200 and r.json()["unscored"] == len(failed), r.text

        from odr.app import create_app
        from tests.console_helpers import TOKEN, signed_in

        console = await signed_in(create_app(demo, manage_lifecycle=False), "ev-admin")
        try:
            page = (await console.get(f"/ui/evaluation/runs/{run['id']}?lang=en")).text
            assert 'id="unscored-count"' in page and 'name="accept_unscored"' in page
            assert 'data-score-failure="t_flaky_score"' in page and "failed in odr_score_enterprise (ZeroDivisionError)" in page
            r = await console.post(f"/ui/evaluation/runs/{run['id']}/publish", data={"_csrf_token": TOKEN.search(page).group(1)})
            assert r.status_code == 409 and "unscored" in r.text
        finally:
            await console.aclose()
        r = await post(client, "ev-admin", f"/evaluations/{run['id']}/publish")
        assert r.status_code == 409 and "unscored" in r.json()["detail"] and r.json()["allowed"] == ["accept_unscored"]
        r = await post(client, "ev-admin", f"/evaluations/{run['id']}/publish", {"accept_unscored": True})
        assert r.status_code == 400 and r.json()["field"] == "reason", r.text
        r = await post(client, "ev-admin", f"/evaluations/{run['id']}/publish",
                       {"accept_unscored": True, "reason": "金山区插件故障，其余区县按期公示"})
        assert r.status_code == 200, r.text
        decided = r.json()["unscored_accepted"]
        assert decided["reason"] == "金山区插件故障，其余区县按期公示" and decided["by"] and decided["at"]
        assert r.json()["published_at"]
    finally:
        async with platform_transaction() as conn:
            await conn.execute("DELETE FROM odr.plugin_activations WHERE tenant = $1 AND node_code = '310116'"
                               " AND plugin IN ('t_flaky_score', 'odr_national_score')", SLUG)
        demo.host.unregister("t_flaky_score")
        demo.forget_activations(SLUG)
