"""The acceptance walk of the ODR core, for each demo province, entirely through the HTTP API:
an enterprise applies, is reviewed and approved; a consumer files; the case is dispatched, screened,
accepted, contacted, settled, fed back, rated and closed; a second case is not settled and leaves
ODR; the timeline shows every step. Then the unit is revoked and its specialists' tokens stop working."""

from __future__ import annotations

import pytest
import pytest_asyncio

from core.auth import tokens
from tests.complaint_helpers import consumer
from tests.conftest import login
from tests.pii_answers import AnswerScan
from tests.test_enterprises import application, credit_code

PROVINCES = {
    # tenant: reviewing district, its bureau officer, the office (所) there, its head
    "shanghai": ("310116", "js-officer", "310116-01", "js-office-head"),
    "jiangsu": ("320205", "wx-officer", "320205-01", "xs-office-head"),
    "fujian": ("350102", "fz-officer", "350102-01", "gl-office-head"),
}


@pytest_asyncio.fixture
async def answers(client, pg_url):
    async with AnswerScan(client, pg_url) as scan:
        yield scan


@pytest.mark.parametrize("tenant", sorted(PROVINCES))
async def test_walk(client, demo, tenant, monkeypatch, answers):
    await walk(client, tenant, *PROVINCES[tenant], monkeypatch=monkeypatch)
    # nobody got a consumer's phone or address of a case they did not handle at that moment
    assert answers.answers >= 20 and answers.findings == [], (answers.answers, answers.findings)


async def walk(client, tenant: str, district: str, officer: str, office: str, head: str, *, monkeypatch) -> None:
    """The whole walk for ``tenant`` (also run for tenants on a second cluster, tests/test_clusters.py)."""
    code = credit_code()
    data, files = application(code, node_code=district)
    r = await client.post(f"/public/{tenant}/odr-applications", data=data, files=files)
    assert r.status_code == 201, r.text
    app_id, unit_id = r.json()["application_id"], r.json()["enterprise_id"]
    r = await client.post(f"/api/tenants/{tenant}/odr-applications/{app_id}/review",
                          json={"decision": "approve", "method": "site_inspection"}, headers=await login(client, officer))
    assert r.status_code == 200, r.text
    cred = next(c for c in r.json()["initial_credentials"] if c["role"] == "person_in_charge")
    spec = await login(client, cred["username"], cred["password"])
    r = await client.get(f"/public/{tenant}/odr-check", params={"credit_code": code})
    assert r.json()["odr_unit"] is True

    user = await consumer(client, tenant)
    cons = await login(client, user, "demo12315-pw")
    body = {"company_name": data["name"], "credit_code": code, "subject": "预付卡退费纠纷",
            "description": "商家停业，预付卡余额无法退还。", "consumer_name": "周女士", "consumer_phone": "13611112222",
            "amount_claimed": 800.0}
    r = await client.post(f"/api/tenants/{tenant}/complaints", json=body, headers=cons)
    assert r.status_code == 201 and r.json()["odr_notice"], r.text
    cid = r.json()["complaint"]["id"]
    url = f"/api/tenants/{tenant}/complaints/{cid}/actions"
    steps = [
        ("dispatch", await login(client, officer), {"office": office}, "dispatched"),
        ("accept", await login(client, head), {"note": "符合受理条件"}, "with_enterprise"),
        ("contact", spec, {"note": "已联系"}, "contacted"),
        ("negotiate", spec, {}, "negotiating"),
        ("feedback", spec, {"handling_time": "3天", "process": "协商退还余额", "method": "refund", "settled": True,
                            "result": "退还800元", "amount_recovered": 800.0}, "feedback_submitted"),
        ("rate", cons, {"satisfaction": 4, "comment": "较满意"}, "feedback_submitted"),
        ("close", await login(client, head), {"note": "办结"}, "closed"),
    ]
    for action, headers, payload, state in steps:
        r = await client.post(f"{url}/{action}", json=payload, headers=headers)
        assert r.status_code == 200, (action, r.text)
        assert r.json()["state"] == state, action
    timeline = (await client.get(f"/api/tenants/{tenant}/complaints/{cid}/timeline", headers=cons)).json()
    assert [e["kind"] for e in timeline] == ["registered"] + [s[0] for s in steps]
    assert all(e["actor_id"] and e["at"] for e in timeline)

    # the second case is not settled and leaves ODR as an ordinary complaint
    r = await client.post(f"/api/tenants/{tenant}/complaints", json={**body, "route": "odr"}, headers=cons)
    c2 = r.json()["complaint"]["id"]
    url2 = f"/api/tenants/{tenant}/complaints/{c2}/actions"
    assert (await client.post(f"{url2}/contact", json={}, headers=spec)).status_code == 200
    r = await client.post(f"{url2}/feedback", json={"handling_time": "5天", "process": "多次协商", "method": "other",
                                                    "settled": False, "result": "未达成一致"}, headers=spec)
    assert r.status_code == 200
    r = await client.post(f"{url2}/leave_odr", json={"reason": "协商不成，消费者向市场监管部门投诉"}, headers=cons)
    assert r.status_code == 200 and r.json()["state"] == "left_odr"
    kinds = [e["kind"] for e in (await client.get(f"/api/tenants/{tenant}/complaints/{c2}/timeline", headers=cons)).json()]
    assert kinds == ["registered", "contact", "feedback", "leave_odr"]

    # revocation (Art. 22) closes the unit's accounts: even tokens issued before stop working
    r = await client.post(f"/api/tenants/{tenant}/odr-units/{unit_id}/revocation",
                          json={"ground": "untrue_feedback", "detail": "抽查发现反馈不实"}, headers=await login(client, officer))
    assert r.status_code == 200, r.text
    monkeypatch.setattr(tokens, "INACTIVE_REFRESH", 0.0)
    assert (await client.get(f"/api/tenants/{tenant}/complaints", headers=spec)).status_code == 401
