"""``/health`` answers 503 naming the database check when it failed or timed out, ``degraded`` with 200
naming Valkey when only Valkey does not answer (intake goes on without it), never 500:
checked against a database whose table the check reads is really locked, and against a Valkey address
where nothing listens."""

from __future__ import annotations

import asyncpg
import httpx

from tests.helpers import app_with_settings


async def test_a_database_check_that_times_out_answers_503_naming_it(client, demo, pg_url):
    assert (await client.get("/health")).status_code == 200
    holder = await asyncpg.connect(pg_url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE odr.tenants IN ACCESS EXCLUSIVE MODE")  # the check's count waits
            r = await client.get("/health")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["database"] == "timeout" and body["status"] == "degraded", body
        assert any(f.startswith("database: timed out") for f in body["failed"]), body
        assert int(r.headers["retry-after"]) > 0
    finally:
        await holder.close()
    r = await client.get("/health")  # the lock is gone: healthy again at once
    assert r.status_code == 200 and r.json()["database"] == "ok" and r.json()["valkey"] == "ok", r.text


async def test_a_valkey_that_does_not_answer_is_named_degraded_but_not_503(demo):
    app = app_with_settings(demo, valkey_url="valkey://127.0.0.1:9")  # nothing listens there
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://odr.test") as c:
        r = await c.get("/health")
    assert r.status_code == 200, r.text  # a balancer keeps the worker: intake works without Valkey
    body = r.json()
    assert body["status"] == "degraded" and body["valkey"] in ("down", "timeout") and body["database"] == "ok", body
    assert [f.split(":")[0] for f in body["failed"]] == ["valkey"], body
