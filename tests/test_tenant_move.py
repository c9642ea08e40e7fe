"""``odr tenant move``: a tenant moved from the primary to the second cluster by logical replication
while consumers keep filing complaints through the API; every acknowledged complaint is on the target
once, none twice, the write pause answered 503 with Retry-After; interrupted moves resume or roll back."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import asyncpg
import msgspec
import pytest

from core.db import clusters
from core.db.engine import WritesPaused, tenant_transaction
from tenants.manifest import load_manifest
from tenants.move import MoveError, abort_move, drop_source, move_tenant
from tenants.onboarding import offboard, onboard
from tests.complaint_helpers import active_unit, consumer
from tests.conftest import login
from tests.helpers import small_manifest

SLUG = "mvfj"


@pytest.fixture(autouse=True)
async def logical_source(pg_url):
    """The primary is the source of the moves: it needs wal_level = logical (tests/servers.py gives the
    embedded test server that; an ODR_TEST_DATABASE_URL server must have it configured)."""
    conn = await asyncpg.connect(pg_url)
    try:
        level = await conn.fetchval("SHOW wal_level")
    finally:
        await conn.close()
    if level != "logical":
        if os.environ.get("CI"):
            pytest.fail("the test PostgreSQL needs wal_level = logical for the tenant move tests")
        pytest.skip(f"the test PostgreSQL (ODR_TEST_DATABASE_URL) has wal_level = {level}, not logical")


class Interrupted(Exception):
    pass


async def _schema_on(url: str, slug: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", f"t_{slug}"))
    finally:
        await conn.close()


class _StaleProcess:
    """The mover's view of :mod:`core.db.clusters` with ``forget_placement`` doing nothing: this
    process then learns of the pause and the switch only from the source's refusal (a web machine
    whose Valkey message was lost)."""

    def __getattr__(self, name):
        return getattr(clusters, name)

    @staticmethod
    def forget_placement(slug=None) -> None:
        return None


@pytest.mark.parametrize("informed", [True, False], ids=["informed", "stale-placement"])
async def test_move_under_intake_load_loses_and_doubles_nothing(client, two_clusters, pg_url, second_pg_url, informed,
                                                                monkeypatch):
    if not informed:
        import tenants.move

        monkeypatch.setattr(tenants.move, "clusters", _StaleProcess())
        monkeypatch.setattr(clusters, "PLACEMENT_TTL", 30.0)
    await offboard(SLUG)
    await onboard(msgspec.structs.replace(load_manifest("fujian"), slug=SLUG), host=two_clusters.host, actor="tests")
    two_clusters.forget_tenant(SLUG)
    unit = await active_unit(SLUG, "350102")
    headers = await login(client, await consumer(client, SLUG), "demo12315-pw")
    body = {"company_name": "迁移测试电商", "credit_code": unit["credit_code"], "subject": "预付卡退费",
            "description": "商家停业，余额无法退还。", "consumer_name": "李四", "consumer_phone": "13800002222"}
    acknowledged: dict[str, str] = {}
    refused = {"503": 0, "without_retry_after": 0}
    stop = asyncio.Event()
    run = uuid.uuid4().hex[:6]

    async def filer(n: int) -> None:
        i = 0
        while not stop.is_set():
            key = f"{run}-{n}-{i}"
            while True:  # the same key until acknowledged: a repeat never files twice
                r = await client.post(f"/api/tenants/{SLUG}/complaints", json={**body, "idempotency_key": key}, headers=headers)
                if r.status_code in (200, 201):
                    acknowledged[key] = r.json()["complaint"]["id"]
                    break
                assert r.status_code == 503, r.text
                refused["503"] += 1
                refused["without_retry_after"] += "Retry-After" not in r.headers
                await asyncio.sleep(0.05)
            i += 1

    filers = [asyncio.create_task(filer(n)) for n in range(6)]
    try:
        await asyncio.sleep(1.0)
        before = len(acknowledged)
        report = await move_tenant(SLUG, "second")
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*filers)

    assert before > 0 and report.state == "done"
    assert all(t.equal for t in report.tables) and report.rows > 0
    assert report.write_pause_ms > 0
    print(f"write pause {report.write_pause_ms:.0f} ms; {len(acknowledged)} acknowledged, {refused['503']} answered 503")
    assert refused["without_retry_after"] == 0
    assert (await clusters.placement(SLUG)).cluster == "second"
    async with tenant_transaction(SLUG) as conn:  # now on the second cluster
        rows = await conn.fetch("SELECT idempotency_key, count(*) AS n, min(id::text) AS id FROM complaints"
                                " WHERE idempotency_key LIKE $1 GROUP BY 1", f"%{run}-%")
        facts = await conn.fetchval("SELECT count(*) FROM complaint_facts")
        complaints = await conn.fetchval("SELECT count(*) FROM complaints")
        registered = await conn.fetchval("SELECT count(*) FROM complaint_events WHERE kind = 'registered'")
    present = {r["idempotency_key"].split(":", 1)[-1]: r["id"] for r in rows}
    assert max(r["n"] for r in rows) == 1  # 0 duplicates
    assert present == acknowledged  # acknowledged = present
    assert facts == complaints == registered  # triggers did not fire twice for copied rows
    # the sequences were carried: a complaint filed now gets a fresh number
    r = await client.post(f"/api/tenants/{SLUG}/complaints", json={**body, "idempotency_key": f"{run}-after"}, headers=headers)
    assert r.status_code == 201, r.text
    # the source is kept until the operator drops it
    assert await _schema_on(pg_url, SLUG) and await _schema_on(second_pg_url, SLUG)
    assert (await drop_source(SLUG))["dropped"] is True
    assert not await _schema_on(pg_url, SLUG)
    with pytest.raises(MoveError, match="^to: mvfj is on cluster second already"):
        await move_tenant(SLUG, "second")
    await offboard(SLUG)


async def test_an_interrupted_move_rolls_back_or_resumes(two_clusters, second_pg_url):
    slug = "mvint"
    await offboard(slug)
    await onboard(small_manifest(slug), host=two_clusters.host)
    async with tenant_transaction(slug) as conn:
        await conn.execute("INSERT INTO notifications (recipient, kind) VALUES ('x', 'before-move')")

    async def crash_at(state: str):
        async def hook(now: str) -> None:
            if now == state:
                raise Interrupted(state)
        return hook

    # interrupted once copied, at the switch: rolled back, the tenant writes on its source again
    with pytest.raises(Interrupted):
        await move_tenant(slug, "second", after_state=await crash_at("switching"))
    with pytest.raises(MoveError, match="^to: a move of mvint to second is open"):
        await move_tenant(slug, "primary")
    assert (await abort_move(slug)).state == "rolled_back"
    assert not await _schema_on(second_pg_url, slug)
    async with tenant_transaction(slug) as conn:
        await conn.execute("INSERT INTO notifications (recipient, kind) VALUES ('x', 'after-abort')")
    # interrupted while copying: run again, it resumes and finishes
    with pytest.raises(Interrupted):
        await move_tenant(slug, "second", after_state=await crash_at("copying"))
    report = await move_tenant(slug, "second")
    assert report.resumed and report.state == "done"
    async with tenant_transaction(slug) as conn:
        kinds = sorted(r["kind"] for r in await conn.fetch("SELECT kind FROM notifications"))
    assert kinds == ["after-abort", "before-move"]
    await offboard(slug)


async def test_a_paused_tenant_answers_503_with_retry_after(client, two_clusters):
    from core.db.admin import admin_transaction

    async with admin_transaction() as conn:
        await conn.execute("UPDATE odr.tenants SET writes_paused_at = now() WHERE slug = 'fjc2'")
    clusters.forget_placement("fjc2")
    try:
        with pytest.raises(WritesPaused):
            async with tenant_transaction("fjc2"):
                pass
        r = await client.get("/public/fjc2/odr-check", params={"credit_code": "91000000000000000X"})
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    finally:
        async with admin_transaction() as conn:
            await conn.execute("UPDATE odr.tenants SET writes_paused_at = NULL WHERE slug = 'fjc2'")
        clusters.forget_placement("fjc2")


async def test_the_command_moves_prints_the_write_pause_and_drops_the_source(two_clusters, pg_url, tmp_path):
    import re
    import subprocess
    import sys
    from pathlib import Path

    slug = "mvcli"
    await offboard(slug)
    await onboard(small_manifest(slug), host=two_clusters.host)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODR_")}
    env.update({"ODR_DATABASE_URL": pg_url, "ODR_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"})
    root = Path(__file__).resolve().parent.parent

    def odr(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "odr", *args], cwd=root, env=env, capture_output=True, text=True,
                              timeout=120)

    moved = await asyncio.to_thread(odr, "tenant", "move", slug, "--to", "second")
    assert moved.returncode == 0, moved.stderr[-2000:]
    assert re.search(rf"moved {slug} from primary to second: \d+ rows in \d+ tables verified \(counts and checksums\), "
                     r"write pause \d+ ms", moved.stdout), moved.stdout
    clusters.forget_placement(slug)
    assert (await clusters.placement(slug)).cluster == "second"
    dropped = await asyncio.to_thread(odr, "tenant", "drop-source", slug)
    assert dropped.returncode == 0 and '"dropped": true' in dropped.stdout
    await offboard(slug)


# -- the events feed across a move --------------------------------------------------------------
async def _next_xid(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())::text"))
    finally:
        await conn.close()


async def _burn_xids(url: str, n: int) -> None:
    """Advance a cluster's transaction counter by ``n`` (each autocommit statement is a transaction)."""
    conn = await asyncpg.connect(url)
    try:
        for _ in range(n):
            await conn.fetchval("SELECT pg_current_xact_id()")
    finally:
        await conn.close()


async def test_the_events_feed_continues_after_a_move_to_a_cluster_whose_xids_are_behind(two_clusters, pg_url,
                                                                                         second_pg_url):
    """A feed reader's cursor taken on the source goes on working on the target, whose transaction ids
    are far lower than the source's: every event comes out exactly once, in order, none skipped."""
    from core.notifications.events_feed import parse_cursor, read_feed
    from tests.complaint_helpers import active_unit

    slug = "mvfeed"
    await offboard(slug)
    manifest = small_manifest(slug)
    await onboard(manifest, host=two_clusters.host)
    root = manifest.nodes[0].code
    node = await two_clusters.node(slug, root)
    path = "/".join(node.path)
    unit = await active_unit(slug, root)

    async def add_events(n: int, kind: str) -> None:
        for i in range(n):  # one transaction each: several transaction ids
            async with tenant_transaction(slug) as conn:
                cid = await conn.fetchval(
                    """INSERT INTO complaints (number, source, consumer_name, consumer_phone, enterprise_id, company_name,
                           odr_unit, node_code, node_path, subject, description, state)
                       VALUES ($1, 'consumer', '王五', '13900001111', $2, '测试电商', true, $3, $4, '退货', '退货被拒',
                               'with_enterprise') RETURNING id""",
                    f"F{uuid.uuid4().hex[:12].upper()}", uuid.UUID(unit["id"]), root, path)
                await conn.execute(
                    """INSERT INTO complaint_events (complaint_id, kind, actor_id, actor_role, node_code)
                       VALUES ($1, $2, 'tests', 'consumer', $3)""", cid, f"{kind}-{i}", root)

    seen: list[tuple[int, str]] = []  # (event id, kind) in the order handed out
    cursors: list[str] = []

    async def read_all(after: str) -> str:
        while True:
            async with tenant_transaction(slug) as conn:
                page = await read_feed(conn, node_path=node.path, after=parse_cursor(after), limit=3)
            seen.extend((e.id, e.kind) for e in page.events)
            cursors.extend(e.cursor for e in page.events)
            after = page.next
            if not page.more:
                return after

    # the source's transaction counter well ahead of the target's (the bad case of a move)
    margin = 3000
    behind = await _next_xid(pg_url) - await _next_xid(second_pg_url)
    if behind < margin:
        await _burn_xids(pg_url, margin - behind)
    await add_events(4, "before")
    cursor = await read_all("0")
    assert [k for _, k in seen if k.startswith("before")] == [f"before-{i}" for i in range(4)]
    await add_events(3, "unread")  # written on the source, not yet read
    report = await move_tenant(slug, "second")
    assert report.state == "done" and all(t.equal for t in report.tables)
    assert report.feed_shift > 0  # the target's clock was advanced above the copied keys
    assert (await clusters.placement(slug)).cluster == "second"
    assert await _next_xid(second_pg_url) + 1000 < await _next_xid(pg_url)  # the target's xids are behind
    await add_events(5, "after")  # written on the target
    await read_all(cursor)
    async with tenant_transaction(slug) as conn:
        everything = [(r["id"], r["kind"]) for r in await conn.fetch(
            "SELECT e.id, e.kind FROM complaint_events e JOIN complaints c ON c.id = e.complaint_id"
            " WHERE c.node_path = $1 OR c.node_path LIKE $2 ORDER BY e.id", path, path + "/%")]
    ids = [i for i, _ in seen]
    assert len(ids) == len(set(ids))  # nothing twice
    assert sorted(seen) == everything  # nothing lost: every event of the tenant, once
    kinds = [k for _, k in seen]
    assert kinds[-12:] == [f"before-{i}" for i in range(4)] + [f"unread-{i}" for i in range(3)] + \
        [f"after-{i}" for i in range(5)]  # in the order written
    assert len(cursors) == len(set(cursors))
    await drop_source(slug)
    await offboard(slug)
