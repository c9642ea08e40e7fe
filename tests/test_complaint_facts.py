"""complaint_facts (tenant migration 0004) always equals its source view: after seeding history, after a
complaint's walk through the API and after a unit is reclassified."""

from __future__ import annotations

import pytest_asyncio

from core.db.engine import tenant_transaction
from tests.complaint_helpers import active_unit, consumer
from tests.conftest import login
from tests.report_helpers import seeded_copy

SLUG = "factsh"
DIFF_SQL = """
SELECT count(*) FROM (
    (SELECT * FROM complaint_facts EXCEPT ALL SELECT * FROM complaint_facts_source)
    UNION ALL
    (SELECT * FROM complaint_facts_source EXCEPT ALL SELECT * FROM complaint_facts)
) d
"""


@pytest_asyncio.fixture(scope="module")
async def tenant(demo):
    async with seeded_copy(demo, "shanghai", SLUG, ()):
        yield SLUG


async def diff_and_count() -> tuple[int, int]:
    async with tenant_transaction(SLUG) as conn:
        return await conn.fetchval(DIFF_SQL), await conn.fetchval("SELECT count(*) FROM complaint_facts")


async def test_facts_follow_history_walk_and_reclassification(client, tenant):
    diff, n = await diff_and_count()
    assert diff == 0 and n > 50

    unit = await active_unit(SLUG, "310116-01")
    cons = await login(client, await consumer(client, SLUG), "demo12315-pw")
    body = {"company_name": "事实测试公司", "credit_code": unit["credit_code"], "consumer_name": "张三",
            "consumer_phone": "13800001111", "subject": "退款", "description": "未退款", "category": "网购",
            "route": "odr"}
    r = await client.post(f"/api/tenants/{SLUG}/complaints", json=body, headers=cons)
    assert r.status_code in (200, 201), r.text
    cid = r.json()["complaint"]["id"]
    async with tenant_transaction(SLUG) as conn:
        row = await conn.fetchrow("SELECT state, fed, contact_late FROM complaint_facts WHERE complaint_id = $1::uuid", cid)
    assert row["fed"] is False and row["contact_late"] is None

    spec = await login(client, unit["specialist"])
    assert row["state"] == "with_enterprise"
    url = f"/api/tenants/{SLUG}/complaints/{cid}/actions"
    assert (await client.post(f"{url}/contact", json={}, headers=spec)).status_code == 200
    r = await client.post(f"{url}/feedback", json={"handling_time": "1天", "process": "电话协商", "method": "refund",
                                                    "result": "已退款", "settled": True, "amount_recovered": 88.5},
                          headers=spec)
    assert r.status_code == 200, r.text
    async with tenant_transaction(SLUG) as conn:
        row = await conn.fetchrow(
            "SELECT state, fed, settled, amount_recovered_fen, contact_late, close_late FROM complaint_facts WHERE complaint_id = $1::uuid", cid)
    assert (row["state"], row["fed"], row["settled"], row["amount_recovered_fen"]) == ("feedback_submitted", True, True, 8850)
    assert (row["contact_late"], row["close_late"]) == (False, False)
    assert (await diff_and_count())[0] == 0

    async with tenant_transaction(SLUG) as conn:
        eid = await conn.fetchval("SELECT enterprise_id FROM complaint_facts WHERE enterprise_id IS NOT NULL LIMIT 1")
        await conn.execute("""UPDATE enterprises SET classification = '{"scheme": "t", "code": "Z", "label": "Z"}'
                              WHERE id = $1""", eid)
        assert await conn.fetchval("SELECT count(*) FROM complaint_facts WHERE enterprise_id = $1 AND enterprise_class <> 'Z'", eid) == 0
    assert (await diff_and_count())[0] == 0


async def test_facts_follow_a_schema_qualified_write_from_another_search_path(tenant, pg_url):
    import asyncpg

    conn = await asyncpg.connect(pg_url)  # default search_path: not the tenant's
    try:
        cid = await conn.fetchval(
            f"""INSERT INTO t_{SLUG}.complaints (number, source, consumer_name, consumer_phone, company_name, odr_unit,
                    node_code, node_path, subject, description, state)
                VALUES ('qualified-1', 'consumer', '王五', '13700001111', '某公司', false, '310116', '310000/310116',
                        'x', 'y', 'registered') RETURNING id""")
        assert await conn.fetchval(f"SELECT state FROM t_{SLUG}.complaint_facts WHERE complaint_id = $1", cid) == "registered"
    finally:
        await conn.close()
    assert (await diff_and_count())[0] == 0
