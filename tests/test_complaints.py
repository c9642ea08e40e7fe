"""Complaints end to end through the API: state machine, timeline, roles, masking, idempotency, bad input."""

from __future__ import annotations

import logging
import uuid

import asyncpg
import pytest

from core.db.engine import tenant_transaction
from tests.complaint_helpers import active_unit, consumer
from tests.conftest import login
from tests.sample_files import PNG

TENANTS = {
    # tenant: (district of the unit, officer who dispatches, office, office head)
    "shanghai": ("310116", "js-officer", "310116-01", "js-office-head"),
    "jiangsu": ("320205", "wx-officer", "320205-01", "xs-office-head"),
    "fujian": ("350102", "fz-officer", "350102-01", "gl-office-head"),
}
PHONE = "13912345678"
NAME = "李小龙"


def intake(unit, **extra):
    body = {
        "company_name": "某电商公司",
        "credit_code": unit["credit_code"],
        "subject": "网购商品质量问题",
        "description": "收到的电饭煲无法加热，要求退货退款。",
        "consumer_name": NAME,
        "consumer_phone": PHONE,
        "consumer_address": "上海市金山区朱泾镇某路1号",
        "amount_claimed": 399.0,
        "category": "家用电器",
    }
    body.update(extra)
    return body


async def act(client, tenant, cid, action, user, body=None, password="demo12315"):
    return await client.post(
        f"/api/tenants/{tenant}/complaints/{cid}/actions/{action}", json=body or {}, headers=await login(client, user, password)
    )


@pytest.mark.parametrize("tenant", sorted(TENANTS))
async def test_full_walk_settled_and_unsettled(client, demo, tenant, caplog):
    district, officer, office, head = TENANTS[tenant]
    unit = await active_unit(tenant, district)
    spec = unit["specialist"]
    user = await consumer(client, tenant)
    cons = await login(client, user, "demo12315-pw")
    caplog.set_level(logging.DEBUG)

    r = await client.post(f"/api/tenants/{tenant}/complaints", json=intake(unit), headers=cons)
    assert r.status_code == 201, r.text
    assert r.json()["odr_notice"] and "ODR" in r.json()["odr_notice"]
    c = r.json()["complaint"]
    cid = c["id"]
    assert c["state"] == "registered" and c["node_code"] == district and c["odr_unit"] is True

    assert (await act(client, tenant, cid, "dispatch", officer, {"office": office})).json()["state"] == "dispatched"
    r = await act(client, tenant, cid, "accept", head, {"note": "符合受理条件，企业在ODR名录中"})
    assert r.status_code == 200, r.text
    policy = "odr_jinshan_deadline" if district == "310116" else "odr_national_deadline"  # Jinshan runs its own
    assert r.json()["state"] == "with_enterprise" and r.json()["contact_due"] and r.json()["deadline_policy"] == policy
    r = await act(client, tenant, cid, "contact", spec, {"note": "已电话联系消费者"})
    assert r.json()["state"] == "contacted"
    assert r.json()["consumer"] == {"name": NAME, "phone": PHONE, "address": "上海市金山区朱泾镇某路1号", "masked": False}
    assert (await act(client, tenant, cid, "negotiate", spec)).json()["state"] == "negotiating"
    feedback = {"handling_time": "2天", "process": "与消费者电话协商，同意退货退款", "method": "refund",
                "settled": True, "result": "已退款399元", "amount_recovered": 399.0}
    assert (await act(client, tenant, cid, "feedback", spec, feedback)).json()["state"] == "feedback_submitted"
    r = await client.get(f"/api/tenants/{tenant}/complaints/{cid}", headers=cons)
    assert r.json()["feedback"]["result"] == "已退款399元" and "rate" in r.json()["allowed_actions"]
    assert (await act(client, tenant, cid, "rate", user, {"satisfaction": 5, "comment": "满意"}, "demo12315-pw")).json()["rating"] == 5
    r = await act(client, tenant, cid, "close", head, {"note": "审核反馈，办结"})
    assert r.json()["state"] == "closed" and r.json()["closed_at"]
    r = await client.get(f"/api/tenants/{tenant}/complaints/{cid}/timeline", headers=await login(client, head))
    assert [e["kind"] for e in r.json()] == [
        "registered", "dispatch", "accept", "contact", "negotiate", "feedback", "rate", "close"
    ]
    assert [e["after"]["state"] for e in r.json()][-1] == "closed"
    async with tenant_transaction(tenant) as conn:
        timers = await conn.fetch("SELECT kind, fired_at, cancelled_at FROM timers WHERE complaint_id = $1::uuid", cid)
    assert len(timers) == 4 and all(t["cancelled_at"] for t in timers)

    # a second case, not settled: it leaves ODR and becomes an ordinary complaint
    r = await client.post(f"/api/tenants/{tenant}/complaints", json=intake(unit, route="odr"), headers=cons)
    c2 = r.json()["complaint"]
    assert c2["state"] == "with_enterprise"  # the direct ODR route (Art. 23)
    await act(client, tenant, c2["id"], "contact", spec)
    unsettled = {**feedback, "settled": False, "result": "双方未达成一致", "amount_recovered": 0}
    await act(client, tenant, c2["id"], "feedback", spec, unsettled)
    # the direct route leaves the case at the unit's district bureau: its officer reviews it
    r = await act(client, tenant, c2["id"], "close", officer)
    assert r.status_code == 409 and "leave_odr" in r.json()["allowed"]
    r = await act(client, tenant, c2["id"], "leave_odr", officer, {"reason": "协商未果，转为普通投诉"})
    assert r.json()["state"] == "left_odr"
    r = await client.get(f"/api/tenants/{tenant}/complaints/{c2['id']}/timeline", headers=cons)
    assert [e["kind"] for e in r.json()] == ["registered", "contact", "feedback", "leave_odr"]
    assert PHONE not in caplog.text and NAME not in caplog.text


async def test_roles_and_masking(client, demo):
    unit = await active_unit("shanghai", "310116")
    other_unit = await active_unit("shanghai", "310116")
    user = await consumer(client, "shanghai")
    cons = await login(client, user, "demo12315-pw")
    r = await client.post("/api/tenants/shanghai/complaints", json=intake(unit, route="odr"), headers=cons)
    cid = r.json()["complaint"]["id"]
    path = f"/api/tenants/shanghai/complaints/{cid}"
    # another tenant (Xishan office head) and another subtree (Pudong office head): nothing
    assert (await client.get(f"/api/tenants/shanghai/complaints/{cid}", headers=await login(client, "xs-office-head"))).status_code == 404
    assert (await client.get(path, headers=await login(client, "pd-office-head"))).status_code == 404
    assert (await act(client, "shanghai", cid, "urge", "pd-office-head", {"note": "请尽快处理"})).status_code == 404
    # another enterprise's specialist, another consumer: nothing
    assert (await client.get(path, headers=await login(client, other_unit["specialist"]))).status_code == 404
    other = await login(client, await consumer(client, "shanghai"), "demo12315-pw")
    assert (await client.get(path, headers=other)).status_code == 404
    assert (await client.get("/api/tenants/shanghai/complaints", headers=other)).json() == []
    # the province supervises but does not handle: masked; the enterprise handles it: unmasked
    r = await client.get(path, headers=await login(client, "sh-admin"))
    assert r.json()["consumer"] == {"name": "李**", "phone": "139****5678", "address": "上海市金山区****", "masked": True}
    r = await client.get(path, headers=await login(client, unit["specialist"]))
    assert r.json()["consumer"]["phone"] == PHONE
    listed = (await client.get("/api/tenants/shanghai/complaints", headers=await login(client, unit["specialist"]))).json()
    assert [c["id"] for c in listed] == [cid]
    assert (await act(client, "shanghai", cid, "urge", "sh-admin", {"note": "督办：请按时联系"})).status_code == 200
    # once closed or out of ODR, the enterprise no longer sees the consumer's contact
    await act(client, "shanghai", cid, "withdraw", user, {}, "demo12315-pw")
    r = await client.get(path, headers=await login(client, unit["specialist"]))
    assert r.json()["consumer"]["masked"] is True and r.json()["state"] == "withdrawn"
    mine = await login(client, user, "demo12315-pw")
    assert [c["id"] for c in (await client.get("/api/tenants/shanghai/complaints", params={"state": "withdrawn"}, headers=mine)).json()] == [cid]
    assert (await client.get("/api/tenants/shanghai/complaints", params={"state": "closed"}, headers=mine)).json() == []
    r = await client.get("/api/tenants/shanghai/complaints", params={"state": "lost"}, headers=mine)
    assert r.status_code == 400 and "state" in r.json()["detail"]


async def test_idempotent_intake(client, demo):
    unit = await active_unit("fujian", "350102")
    cons = await login(client, await consumer(client, "fujian"), "demo12315-pw")
    body = intake(unit, idempotency_key=f"retry-{uuid.uuid4()}")
    first = await client.post("/api/tenants/fujian/complaints", json=body, headers=cons)
    again = await client.post("/api/tenants/fujian/complaints", json=body, headers=cons)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["complaint"]["id"] == again.json()["complaint"]["id"]
    assert len((await client.get("/api/tenants/fujian/complaints", headers=cons)).json()) == 1


async def counts(tenant):
    async with tenant_transaction(tenant) as conn:
        return (await conn.fetchval("SELECT count(*) FROM complaints"), await conn.fetchval("SELECT count(*) FROM complaint_events"),
                await conn.fetchval("SELECT count(*) FROM timers"))


async def test_bad_input_is_refused_naming_the_problem_and_writes_nothing(client, demo):
    unit = await active_unit("shanghai", "310116")
    user = await consumer(client, "shanghai")
    cons = await login(client, user, "demo12315-pw")
    before = await counts("shanghai")
    url = "/api/tenants/shanghai/complaints"
    r = await client.post(url, json=intake(unit, enterprise_id=str(uuid.uuid4()), credit_code=None), headers=cons)
    assert r.status_code == 404 and "enterprise_id" in r.json()["detail"]
    body = intake(unit)
    del body["consumer_phone"]
    r = await client.post(url, json=body, headers=cons)
    assert r.status_code == 400 and r.json()["field"] == "consumer_phone"
    r = await client.post(url, json=intake(unit, consumer_phone="call me"), headers=cons)
    assert r.status_code == 400 and r.json()["field"] == "consumer_phone"
    r = await client.post(url, content=b'{"company_name": ', headers={**cons, "content-type": "application/json"})
    assert r.status_code == 400
    r = await client.post(url, json=intake(unit, credit_code=None, company_name="路边小店"), headers=cons)
    assert r.status_code == 400 and "node_code" in r.json()["detail"]
    r = await client.post(url, json=intake(unit, route="odr", credit_code=None, node_code="310116"), headers=cons)
    assert r.status_code == 400 and "route" in r.json()["detail"]
    assert await counts("shanghai") == before
    # wrong state, wrong role, unknown action, bad action body
    cid = (await client.post(url, json=intake(unit), headers=cons)).json()["complaint"]["id"]
    before = await counts("shanghai")
    r = await act(client, "shanghai", cid, "close", "js-officer")
    assert r.status_code == 409
    assert r.json()["allowed"] == ["dispatch", "return", "urge", "spot_check", "return_visit", "interview"]
    assert (await act(client, "shanghai", cid, "contact", user, {}, "demo12315-pw")).status_code == 403
    assert (await act(client, "shanghai", cid, "teleport", "js-officer")).status_code == 404
    r = await act(client, "shanghai", cid, "dispatch", "js-officer", {"office": "310115-01"})
    assert r.status_code == 400 and "office" in r.json()["detail"]
    r = await act(client, "shanghai", cid, "dispatch", "js-officer", {"offize": "310116-01"})
    assert r.status_code == 400
    r = await act(client, "shanghai", cid, "return", "js-officer", {"reason": ""})
    assert r.status_code == 400 and r.json()["field"] == "reason"
    assert await counts("shanghai") == before
    # oversized and wrongly typed attachments
    big = b"%PDF-" + b"0" * (5 * 1024 * 1024)
    r = await client.post(f"{url}/{cid}/messages", data={"body": "证据"}, files={"file": ("a.pdf", big, "application/pdf")}, headers=cons)
    assert r.status_code == 413 and "file" in r.json()["detail"]
    r = await client.post(f"{url}/{cid}/messages", data={"body": "证据"}, files={"file": ("a.pdf", b"MZ not a pdf", "application/pdf")}, headers=cons)
    assert r.status_code == 400 and "file" in r.json()["detail"]
    r = await client.post(f"{url}/{cid}/messages", data={"body": "订单截图"}, files={"file": ("a.png", PNG, "image/png")}, headers=cons)
    assert r.status_code == 201, r.text
    msgs = (await client.get(f"{url}/{cid}/messages", headers=await login(client, "js-officer"))).json()
    assert msgs[0]["attachments"][0]["content_type"] == "image/png"


async def test_events_are_append_only_for_the_application(client, demo):
    async with tenant_transaction("shanghai") as conn:
        assert await conn.fetchval("SELECT count(*) FROM complaint_events") > 0
    for sql in ("UPDATE complaint_events SET note = 'x'", "DELETE FROM complaint_events", "TRUNCATE complaint_events"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with tenant_transaction("shanghai") as conn:
                await conn.execute(sql)
