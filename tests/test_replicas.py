"""Read replicas: a real streaming standby of the second cluster (pg_basebackup -R of the embedded
server, started as a hot standby). Reports and evaluation reads go to it while its lag is under
ODR_REPLICA_MAX_LAG_SECONDS and say so; with replay paused beyond the bound they read the primary."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import asyncpg
import pytest
import pytest_asyncio

from core.auth.principal import Role
from core.db import clusters
from tenants.clusters import set_replicas
from tests.conftest import login
from tests.report_helpers import seeded_copy
from tests.servers import Standby

SLUG = "rpc2"
ACCOUNTS = (("rp-admin", Role.PROVINCE_ADMIN, "310000"), ("rp-js-officer", Role.BUREAU_OFFICER, "310116"))


@pytest.fixture(scope="module")
def standby(second_pg):
    replica = Standby(second_pg)
    yield replica
    replica.stop()


async def _replayed(url: str, complaints: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    conn = await asyncpg.connect(url)
    try:
        while True:
            n = await conn.fetchval("SELECT CASE WHEN to_regclass('t_rpc2.complaints') IS NULL THEN -1 ELSE"
                                    " (SELECT count(*) FROM t_rpc2.complaints) END")
            if n == complaints:
                return
            assert time.monotonic() < deadline, f"the standby did not replay the tenant ({n} of {complaints})"
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


@pytest_asyncio.fixture(scope="module")
async def on_replica(two_clusters, standby):
    await set_replicas("second", [standby.url])
    try:
        async with seeded_copy(two_clusters, "shanghai", SLUG, ACCOUNTS, cluster="second",
                               per_unit={"js-a": 30, "js-b": 8}) as summary:
            await _replayed(standby.url, sum(u.complaints for u in summary.units))
            yield {u.key: u for u in summary.units}
    finally:
        await set_replicas("second", [])
        pools, clusters.STATE.replica_pools = clusters.STATE.replica_pools, {}
        for pool in pools.values():
            await pool.close()
        clusters.STATE.replica_lag.clear()


async def class_table(client):
    r = await client.get(f"/api/tenants/{SLUG}/reports/class-table", params={"node": "310116"},
                         headers=await login(client, "rp-js-officer"))
    assert r.status_code == 200, r.text
    return r.json()


async def test_reports_and_evaluations_read_the_replica_and_say_so(client, on_replica):
    body = await class_table(client)
    assert body["read_from"]["server"] == "replica" and body["read_from"]["cluster"] == "second"
    assert 0 <= body["read_from"]["lag_seconds"] <= 30
    rows = {row["enterprise_class"]: row for row in body["rows"]}
    assert rows["A"]["handled"] == on_replica["js-a"].complaints == 30
    assert rows["B"]["handled"] == on_replica["js-b"].complaints == 8
    admin = await login(client, "rp-admin")
    r = await client.post(f"/api/tenants/{SLUG}/evaluation-periods",
                          json={"kind": "yearly", "starts_on": f"{dt.date.today().year}-01-01"}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/tenants/{SLUG}/evaluation-periods/{r.json()['id']}/evaluations", json={}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["read_from"]["server"] == "replica" and r.json()["scored"] >= 3
    csv = await client.get(f"/api/tenants/{SLUG}/reports/class-table", params={"node": "310116", "format": "xlsx"},
                           headers=await login(client, "rp-js-officer"))
    assert csv.status_code == 200


async def test_a_replica_lagging_beyond_the_bound_is_not_read(client, on_replica, standby, monkeypatch):
    monkeypatch.setattr(clusters.STATE, "max_lag", 0.5)
    replica = await asyncpg.connect(standby.url)
    try:
        await replica.execute("SELECT pg_wal_replay_pause()")
        from core.db.engine import tenant_transaction

        await asyncio.sleep(0.8)
        async with tenant_transaction(SLUG) as conn:  # WAL the standby receives but does not replay
            await conn.execute("INSERT INTO notifications (recipient, kind) VALUES ('lag-test', 'lag-test')")
        for _ in range(50):
            clusters.STATE.replica_lag.clear()
            if (await clusters.replica_lag(standby.url) or 0) > 0.5:
                break
            await asyncio.sleep(0.1)
        body = await class_table(client)
        assert body["read_from"] == {"server": "primary", "cluster": "second", "lag_seconds": 0.0}
    finally:
        await replica.execute("SELECT pg_wal_replay_resume()")
        await replica.close()
    monkeypatch.setattr(clusters.STATE, "max_lag", 30.0)
    clusters.STATE.replica_lag.clear()
    assert (await class_table(client))["read_from"]["server"] == "replica"
