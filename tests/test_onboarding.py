"""Onboarding: one transaction, idempotent, nothing left behind by a failure or a kill."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import asyncpg
import pytest

from core.db.admin import owner_transaction
from core.db.engine import platform_transaction, tenant_transaction
from tenants.manifest import load_manifest
from tenants.onboarding import offboard, onboard
from tests.conftest import login
from tests.helpers import schema_role_registry, small_manifest


async def test_demo_tenants_have_their_tree_and_version(demo):
    async with tenant_transaction("jiangsu") as conn:
        rows = await conn.fetch("SELECT code, path FROM jurisdictions ORDER BY path")
    async with owner_transaction("jiangsu") as conn:  # the migration record is the owner's alone
        version = await conn.fetchval("SELECT max(id) FROM _migrations")
    paths = {r["code"]: r["path"] for r in rows}
    assert paths["320205-01"] == "320000/320200/320205/320205-01"  # province -> city -> district -> office
    async with platform_transaction() as conn:
        assert await conn.fetchval("SELECT schema_version FROM odr.tenants WHERE slug='jiangsu'") == version


async def test_onboarding_twice_is_a_no_op(demo):
    async with platform_transaction() as conn:
        before = await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%'")
    result = await onboard(load_manifest("shanghai"), host=demo.host, demo=True)
    assert result.created is False
    async with platform_transaction() as conn:
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%'") == before
    async with tenant_transaction("shanghai") as conn:
        assert await conn.fetchval("SELECT count(*) FROM jurisdictions") == 6


async def test_a_failure_half_way_leaves_no_schema_role_or_registry_row(platform):
    manifest = small_manifest("halfway", bad_code=True)  # the last node violates the table's CHECK
    with pytest.raises(Exception, match="check constraint"):
        await onboard(manifest, host=platform.host)
    async with platform_transaction() as conn:
        assert await schema_role_registry(conn, "halfway") == (False, False, False)
    # and the same slug onboards cleanly afterwards
    assert (await onboard(small_manifest("halfway"), host=platform.host)).created
    await offboard("halfway")


async def superuser_fetchval(settings, sql: str):
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_an_onboarding_killed_half_way_leaves_nothing(platform, settings):
    """A real process is SIGKILLed while its onboarding transaction is inserting the tree."""
    script = textwrap.dedent(
        f"""
        import asyncio
        from core.runtime import Platform
        from core.settings import Settings
        from tenants.onboarding import onboard
        from tests.helpers import small_manifest

        async def main():
            p = Platform(Settings(database_url={settings.database_url!r}, data_dir={settings.data_dir!r}))
            await p.start(migrate=False)
            await onboard(small_manifest("killed", extra_nodes=60000), host=p.host)

        asyncio.run(main())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=os.getcwd())
    try:
        seen = False
        for _ in range(600):
            # as the server's superuser: the onboarding runs on the administration login, whose
            # queries the runtime login may not read in pg_stat_activity
            seen = bool(await superuser_fetchval(
                settings, "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'INSERT INTO jurisdictions%' AND state <> 'idle'"))
            if seen or proc.poll() is not None:
                break
            await asyncio.sleep(0.02)
        assert seen, "the onboarding never reached the tree insert"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    for _ in range(200):  # PostgreSQL notices the dead client and rolls back
        busy = await superuser_fetchval(settings, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO jurisdictions%'")
        async with platform_transaction() as conn:
            state = await schema_role_registry(conn, "killed")
        if not busy:
            break
        await asyncio.sleep(0.05)
    assert state == (False, False, False)


async def test_operator_onboards_through_the_api_idempotently(client):
    headers = await login(client, "operator")
    manifest = {
        "slug": "apiprov",
        "name": "接口省",
        "nodes": [
            {"code": "990000", "name": "省局", "level": "province"},
            {"code": "990100", "name": "市局", "level": "city", "parent": "990000"},
        ],
    }
    r = await client.post("/api/platform/tenants", json=manifest, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["created"] is True
    r = await client.post("/api/platform/tenants", json=manifest, headers=headers)
    assert r.status_code == 200 and r.json()["created"] is False
    r = await client.get("/api/platform/tenants", headers=headers)
    assert "apiprov" in [t["slug"] for t in r.json()]
    await offboard("apiprov")


async def test_onboarding_api_rejects_bad_manifests_naming_the_field(client):
    headers = await login(client, "operator")
    bad_parent = {
        "slug": "badprov",
        "name": "x",
        "nodes": [
            {"code": "980000", "name": "p", "level": "province"},
            {"code": "980100", "name": "c", "level": "city", "parent": "nope"},
        ],
    }
    r = await client.post("/api/platform/tenants", json=bad_parent, headers=headers)
    assert r.status_code == 400
    assert "nodes[1]" in r.json()["detail"] and "parent" in r.json()["detail"]
    r = await client.post("/api/platform/tenants", json={"slug": "Bad Slug", "name": "x", "nodes": []}, headers=headers)
    assert r.status_code == 400 and "slug" in r.json()["detail"]
    r = await client.post("/api/platform/tenants", json={"slug": "x1", "nodes": []}, headers=headers)
    assert r.status_code == 400 and r.json()["field"] == "name"
    async with platform_transaction() as conn:
        assert await schema_role_registry(conn, "badprov") == (False, False, False)


async def test_only_operators_onboard(client):
    r = await client.post(
        "/api/platform/tenants",
        json={"slug": "sneaky", "name": "x", "nodes": [{"code": "1", "name": "p", "level": "province"}]},
        headers=await login(client, "sh-admin"),
    )
    assert r.status_code == 403
