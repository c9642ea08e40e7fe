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


# -- the events feed across a move or a restore ---------------------------------------------------
async def _next_xid(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())::text"))
    finally:
        await conn.close()


async def _put_source_ahead(source_url: str, target_url: str, margin: int = 3000) -> None:
    """Advance the source cluster's transaction counter until it is ``margin`` ahead of the target's
    (each autocommit statement of a throwaway connection is a transaction): the bad case of a move."""
    behind = await _next_xid(source_url) - await _next_xid(target_url)
    conn = await asyncpg.connect(source_url)
    try:
        for _ in range(margin - behind):
            await conn.fetchval("SELECT pg_current_xact_id()")
    finally:
        await conn.close()


class _FeedTenant:
    """A small tenant with complaints and events at its root node, and a feed reader that records
    every event handed out."""

    def __init__(self, platform, slug: str) -> None:
        self.platform, self.slug = platform, slug
        self.seen: list[tuple[int, str]] = []  # (event id, kind) in the order handed out
        self.cursors: list[str] = []

    async def onboard(self) -> None:
        from tests.complaint_helpers import active_unit

        await offboard(self.slug)
        manifest = small_manifest(self.slug)
        await onboard(manifest, host=self.platform.host)
        self.root = manifest.nodes[0].code
        self.node = await self.platform.node(self.slug, self.root)
        self.path = "/".join(self.node.path)
        self.unit = (await active_unit(self.slug, self.root))["id"]

    async def add_events(self, n: int, kind: str) -> None:
        for i in range(n):  # one transaction each: several transaction ids
            async with tenant_transaction(self.slug) as conn:
                cid = await conn.fetchval(
                    """INSERT INTO complaints (number, source, consumer_name, consumer_phone, enterprise_id, company_name,
                           odr_unit, node_code, node_path, subject, description, state)
                       VALUES ($1, 'consumer', '王五', '13900001111', $2, '测试电商', true, $3, $4, '退货', '退货被拒',
                               'with_enterprise') RETURNING id""",
                    f"F{uuid.uuid4().hex[:12].upper()}", uuid.UUID(self.unit), self.root, self.path)
                await conn.execute(
                    """INSERT INTO complaint_events (complaint_id, kind, actor_id, actor_role, node_code)
                       VALUES ($1, $2, 'tests', 'consumer', $3)""", cid, f"{kind}-{i}", self.root)

    async def read_all(self, after: str) -> str:
        from core.notifications.events_feed import parse_cursor, read_feed

        while True:
            async with tenant_transaction(self.slug) as conn:
                page = await read_feed(conn, node_path=self.node.path, after=parse_cursor(after), limit=3)
            self.seen.extend((e.id, e.kind) for e in page.events)
            self.cursors.extend(e.cursor for e in page.events)
            after = page.next
            if not page.more:
                return after

    async def assert_every_event_once_in_order(self, kinds: list[str]) -> None:
        async with tenant_transaction(self.slug) as conn:
            everything = [(r["id"], r["kind"]) for r in await conn.fetch(
                "SELECT e.id, e.kind FROM complaint_events e JOIN complaints c ON c.id = e.complaint_id"
                " WHERE c.node_path = $1 OR c.node_path LIKE $2 ORDER BY e.id", self.path, self.path + "/%")]
        ids = [i for i, _ in self.seen]
        assert len(ids) == len(set(ids)) and len(self.cursors) == len(set(self.cursors))  # nothing twice
        assert sorted(self.seen) == everything  # nothing lost: every event of the subtree, once
        assert [k for _, k in self.seen][-len(kinds):] == kinds  # in the order written


async def test_the_events_feed_continues_after_a_move_to_a_cluster_whose_xids_are_behind(two_clusters, pg_url,
                                                                                         second_pg_url):
    """A feed reader's cursor taken on the source goes on working on the target, whose transaction ids
    are far lower than the source's: every event comes out exactly once, in order, none skipped."""
    t = _FeedTenant(two_clusters, "mvfeed")
    await t.onboard()
    await _put_source_ahead(pg_url, second_pg_url)
    await t.add_events(4, "before")
    cursor = await t.read_all("0")
    assert [k for _, k in t.seen if k.startswith("before")] == [f"before-{i}" for i in range(4)]
    await t.add_events(3, "unread")  # written on the source, not yet read
    report = await move_tenant(t.slug, "second")
    assert report.state == "done" and all(c.equal for c in report.tables)
    assert report.feed_shift > 0  # the target's clock was advanced above the copied keys
    assert (await clusters.placement(t.slug)).cluster == "second"
    assert await _next_xid(second_pg_url) + 1000 < await _next_xid(pg_url)  # the target's xids are behind
    await t.add_events(5, "after")  # written on the target
    await t.read_all(cursor)
    await t.assert_every_event_once_in_order(
        [f"before-{i}" for i in range(4)] + [f"unread-{i}" for i in range(3)] + [f"after-{i}" for i in range(5)])
    await drop_source(t.slug)
    await offboard(t.slug)


async def test_the_events_feed_continues_after_a_restore_onto_another_server(two_clusters, pg_url, second_pg,
                                                                             second_pg_url, tmp_path):
    """``pg_dump`` of a tenant schema restored on a server whose transaction ids are behind, then
    ``odr migrate``: the reader's cursor from before goes on, every event once, in order."""
    import subprocess
    from pathlib import Path

    from core.db.admin import admin_transaction
    from tenants.migrate import migrate_tenant
    from tenants.onboarding import drop_schema_and_roles
    from tenants.roles import create_roles

    t = _FeedTenant(two_clusters, "rsfeed")
    await t.onboard()
    await _put_source_ahead(pg_url, second_pg_url)
    await t.add_events(3, "before")
    cursor = await t.read_all("0")
    await t.add_events(2, "unread")
    dump, bin_path = tmp_path / "t_rsfeed.dump", Path(second_pg.bin_path)
    subprocess.run([str(bin_path / "pg_dump"), "-Fc", "-n", "t_rsfeed", "-f", str(dump), "-d", pg_url], check=True,
                   capture_output=True, timeout=60)
    async with admin_transaction("second") as conn:  # the roles first, as deploy/README's restore says
        await drop_schema_and_roles(conn, t.slug)
        await create_roles(conn, t.slug, runtime_login=await clusters.runtime_login("second"))
    subprocess.run([str(bin_path / "pg_restore"), "--exit-on-error", "-d", second_pg_url, str(dump)], check=True,
                   capture_output=True, timeout=60)
    from core.db.admin import admin_transaction as primary_admin

    async with primary_admin() as conn:  # the province now lives on the other server
        await conn.execute("UPDATE odr.tenants SET cluster = 'second' WHERE slug = $1", t.slug)
        await drop_schema_and_roles(conn, t.slug)
    clusters.forget_placement(t.slug)
    async with tenant_transaction(t.slug) as conn:  # restored as is: the clock is behind the keys
        assert await conn.fetchval("SELECT feed_clock() < max(feed_key) FROM complaint_events")
    assert (await migrate_tenant(t.slug)).ok
    async with tenant_transaction(t.slug) as conn:
        assert await conn.fetchval("SELECT feed_clock() > max(feed_key) FROM complaint_events")
    await t.add_events(4, "after")
    await t.read_all(cursor)
    await t.assert_every_event_once_in_order(
        [f"before-{i}" for i in range(3)] + [f"unread-{i}" for i in range(2)] + [f"after-{i}" for i in range(4)])
    await offboard(t.slug)
