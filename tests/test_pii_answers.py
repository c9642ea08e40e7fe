"""The scan of answers for personal data (tests/pii_answers.py) decides from the complaint rows who
handles a case: the consumer, the bureau node where it sits (it moves on dispatch), the enterprise
while the case is in ODR; nobody else, the province's admin and other provinces included."""

from __future__ import annotations

import json
import uuid

import asyncpg

from tests.complaint_helpers import active_unit, consumer
from tests.conftest import DEMO_PASSWORD
from tests.pii_answers import findings


async def principal(client, username: str, password: str = DEMO_PASSWORD) -> tuple[dict, dict]:
    r = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["principal"], {"Authorization": f"Bearer {r.json()['token']}"}


async def test_who_may_see_a_consumers_phone_and_address_is_read_from_the_case(client, demo, pg_url):
    unit = await active_unit("shanghai", "310116")
    user = await consumer(client, "shanghai")
    me, cons = await principal(client, user, "demo12315-pw")
    phone, address = "1390000" + str(uuid.uuid4().int)[:4], f"上海市金山区扫描路{uuid.uuid4().int % 1000}号"
    r = await client.post("/api/tenants/shanghai/complaints", headers=cons, json={
        "company_name": "测试", "credit_code": unit["credit_code"], "subject": "退款", "description": "未退款",
        "consumer_name": "李四", "consumer_phone": phone, "consumer_address": address, "node_code": "310116"})
    assert r.status_code == 201, r.text
    cid = r.json()["complaint"]["id"]
    leaked = json.dumps({"consumer": {"phone": phone, "address": address}}, ensure_ascii=False)

    conn = await asyncpg.connect(pg_url)
    try:
        async def judged(who: dict | None, body: str = leaked, sent: str = "") -> int:
            return len(await findings(conn, who, body, sent=sent))

        officer, officer_h = await principal(client, "js-officer")
        head, _ = await principal(client, "js-office-head")
        admin, admin_h = await principal(client, "sh-admin")
        other, _ = await principal(client, "wx-officer")
        operator, _ = await principal(client, "operator")
        spec, _ = await principal(client, unit["specialist"])
        assert await judged(me) == 0 and await judged(officer) == 0  # the consumer; the node where it sits
        assert await judged(admin) == 2 and await judged(head) == 2  # the province above; the office below
        assert await judged(other) == 2 and await judged(operator) == 2 and await judged(None) == 2
        assert await judged(spec) == 2  # filed for the bureau: not in ODR, the enterprise does not handle it
        assert await judged(admin, sent=leaked) == 0  # what the caller sent may come back to them
        assert await judged(admin, body=leaked.replace(phone, phone[:3] + "****" + phone[-4:])) == 1  # the address

        r = await client.post(f"/api/tenants/shanghai/complaints/{cid}/actions/dispatch", headers=officer_h,
                              json={"office": "310116-01"})
        assert r.status_code == 200, r.text
        assert await judged(officer, body=r.text) == 0  # the answer to the dispatch is masked already
        assert await judged(officer) == 2 and await judged(head) == 0  # the case moved to the office
        # and what the API shows those who do not handle it holds neither
        for headers, who in ((admin_h, admin), (officer_h, officer)):
            body = (await client.get(f"/api/tenants/shanghai/complaints/{cid}", headers=headers)).text
            assert await judged(who, body=body) == 0, body
    finally:
        await conn.close()
