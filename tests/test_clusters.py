"""Tenants on two real PostgreSQL clusters (the test server and a second embedded one): placement in
the registry, the acceptance walk and the cross-tenant checks for tenants on the second cluster, the
timer worker firing there, and an evaluation and a report computed there.

The demo tenants (shanghai, jiangsu, fujian) are on the primary; copies of Jiangsu and Fujian (``jsc2``,
``fjc2``) are on the cluster ``second`` (``tests.conftest.two_clusters``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid

import asyncpg
import msgspec
import pytest
import pytest_asyncio

from core.auth.principal import Role
from core.db import clusters
from core.db.engine import ENGINE, platform_transaction, tenant_transaction
from core.notifications.bus import MemoryBus
from core.timers.queue import MemoryTimerQueue
from core.timers.schedule import schedule
from core.timers.worker import TimerWorker
from tenants.clusters import ClusterError, add_cluster, list_clusters
from tenants.manifest import PluginChoice
from tenants.onboarding import OnboardingError, offboard, onboard
from tests.conftest import SECOND_CLUSTER_TENANTS, login
from tests.console_helpers import signed_in
from tests.helpers import small_manifest
from tests.report_helpers import seeded_copy
from tests.test_odr_walk import PROVINCES, walk

SECOND = sorted(SECOND_CLUSTER_TENANTS.values())


async def test_placement_is_in_the_registry_and_shown_to_the_operator(client, two_clusters):
    rows = {c.name: c for c in await list_clusters()}
    assert rows["primary"].role == "primary" and rows["primary"].url is None
    assert {"shanghai", "jiangsu", "fujian"} <= set(rows["primary"].tenants)
    assert rows["second"].role == "tenants" and rows["second"].tenants == SECOND
    op = await login(client, "operator")
    listed = {t["slug"]: t["cluster"] for t in (await client.get("/api/platform/tenants", headers=op)).json()}
    assert listed["shanghai"] == "primary" and listed["jsc2"] == listed["fjc2"] == "second"
    ui = await signed_in(client._transport.app, "operator")
    try:
        page = (await ui.get("/ui/operator?lang=en")).text
    finally:
        await ui.aclose()
    table = page[page.index('id="clusters"'):]
    assert "Database clusters and tenant placement" in page and "fjc2, jsc2" in table
    tenants_table = page[page.index('id="tenants"'):page.index('id="clusters"')]
    assert tenants_table.count("<td>second</td>") == 2
    for slug in SECOND:
        assert (await clusters.placement(slug)).cluster == "second"


async def test_schemas_and_roles_live_on_the_tenants_cluster_only(two_clusters, pg_url, second_pg_url):
    primary, second = await asyncpg.connect(pg_url), await asyncpg.connect(second_pg_url)
    try:
        for slug in SECOND:
            assert await second.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1",
                                         f"t_{slug}") == f"owner_{slug}"
            assert not await primary.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", f"t_{slug}")
            # the runtime login there holds the runtime role without inheriting it, and no owner role
            row = await second.fetchrow(
                """SELECT m.inherit_option, m.set_option FROM pg_auth_members m
                   JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
                   WHERE r.rolname = $1 AND u.rolname = 'odr_app'""", f"t_{slug}")
            assert row is not None and row["inherit_option"] is False and row["set_option"] is True
            assert not await second.fetchval("SELECT pg_has_role('odr_app', $1, 'MEMBER')", f"owner_{slug}")
        assert not await second.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = 't_shanghai'")
        assert not await second.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = 'odr'")  # shared schema: primary only
        login_row = await second.fetchrow("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = 'odr_app'")
        assert (login_row["rolsuper"], login_row["rolcreaterole"]) == (False, False)
    finally:
        await primary.close()
        await second.close()


def _c2(name: str) -> str:
    return f"c2-{name}"


@pytest.mark.parametrize("source", sorted(SECOND_CLUSTER_TENANTS))
async def test_walk_on_the_second_cluster(client, two_clusters, source, monkeypatch):
    district, officer, office, head = PROVINCES[source]
    await walk(client, SECOND_CLUSTER_TENANTS[source], district, _c2(officer), office, _c2(head), monkeypatch=monkeypatch)


async def test_cross_tenant_checks_on_the_second_cluster(two_clusters):
    async with tenant_transaction("jsc2") as conn:
        assert await conn.fetchval("SELECT count(*) FROM jurisdictions") > 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.fetch("SELECT * FROM t_fjc2.jurisdictions")
    pool = await clusters.cluster_pool("second")
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.fetch("SELECT * FROM t_jsc2.jurisdictions")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute("SELECT set_config('role', 'owner_jsc2', true)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute("SELECT set_config('role', 'postgres', true)")
    # the primary's runtime login cannot reach a tenant of the second cluster there either: no such schema
    async with platform_transaction() as conn:
        assert not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = 't_jsc2'")


async def test_interleaved_requests_on_both_clusters_stay_in_their_schema(two_clusters):
    slugs = ["shanghai", "jiangsu", *SECOND]
    rng = random.Random(16)
    marker = uuid.uuid4().hex[:8]
    committed = {slug: 0 for slug in slugs}

    async def request(i: int) -> None:
        slug = rng.choice(slugs)
        fail = rng.random() < 0.15
        try:
            async with tenant_transaction(slug) as conn:
                await conn.execute("INSERT INTO notifications (recipient, kind) VALUES ($1, $2)", slug, f"{marker}{i}")
                if fail:
                    raise RuntimeError("injected")
                await asyncio.sleep(0)
            committed[slug] += 1
        except RuntimeError:
            pass

    await asyncio.gather(*(request(i) for i in range(300)))
    for slug in slugs:
        async with tenant_transaction(slug) as conn:
            rows = await conn.fetch("SELECT recipient FROM notifications WHERE kind LIKE $1", f"{marker}%")
        assert {r["recipient"] for r in rows} <= {slug} and len(rows) == committed[slug]
    for pool in (ENGINE.pool, await clusters.cluster_pool("second")):
        conns = [await pool.acquire() for _ in range(pool.get_size())]
        try:
            for c in conns:
                row = await c.fetchrow("SELECT current_user AS u, current_setting('search_path') AS p")
                assert row["u"] == "odr_app" and "t_" not in row["p"]
        finally:
            for c in conns:
                await pool.release(c)


async def test_bad_cluster_input_is_refused_naming_the_field(two_clusters, pg_url):
    with pytest.raises(OnboardingError, match="^cluster: no cluster named 'nowhere'"):
        await onboard(small_manifest("nocluster"), host=two_clusters.host, cluster="nowhere")
    assert (await clusters.placement("nocluster")).cluster == "primary"  # nothing registered
    with pytest.raises(ClusterError, match="^name: "):
        await add_cluster("Bad Name", pg_url, app_role="odr_app", admin_role="odr_admin")
    with pytest.raises(ClusterError, match="^url: cannot connect"):
        await add_cluster("unreachable", "postgresql://postgres@127.0.0.1:1/postgres", app_role="odr_app",
                          admin_role="odr_admin")
    with pytest.raises(ClusterError, match="^name: cluster 'second' exists with other URLs"):
        await add_cluster("second", pg_url, app_role="odr_app", admin_role="odr_admin")


async def test_onboarding_on_the_second_cluster_is_all_or_nothing(two_clusters, second_pg_url):
    manifest = small_manifest("halfc2")
    await offboard("halfc2")
    # the registry's half (on the primary) fails after the tenant's half ran on the second cluster:
    # a plugin choice whose configuration does not validate
    root = manifest.nodes[0].code
    bad = msgspec.structs.replace(manifest, plugins=[
        PluginChoice(node=root, plugin="odr_jinshan_deadline", config={"contact_days": "many"})])
    with pytest.raises(ValueError):
        await onboard(bad, host=two_clusters.host, cluster="second")
    assert (await clusters.placement("halfc2")).cluster == "primary"  # not registered
    second = await asyncpg.connect(second_pg_url)
    try:
        assert not await second.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = 't_halfc2'")
        assert not await second.fetchval("SELECT 1 FROM pg_roles WHERE rolname IN ('t_halfc2', 'owner_halfc2')")
        result = await onboard(manifest, host=two_clusters.host, cluster="second")
        assert result.created and result.cluster == "second"
        assert (await onboard(manifest, host=two_clusters.host, cluster="second")).created is False
        assert await offboard("halfc2")
        assert not await second.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = 't_halfc2'")
    finally:
        await second.close()


async def test_timer_worker_fires_a_due_timer_of_a_tenant_on_the_second_cluster(two_clusters):
    slug = "jsc2"
    async with tenant_transaction(slug) as conn:
        eid = await conn.fetchval(
            """INSERT INTO enterprises (name, credit_code, unit_type, node_code, status)
               VALUES ('第二集群电商', $1, 'enterprise', '320205', 'active') RETURNING id""",
            "91" + "".join(random.choice("0123456789") for _ in range(16)))
        path = await conn.fetchval("SELECT path FROM jurisdictions WHERE code = '320205-01'")
        cid = await conn.fetchval(
            """INSERT INTO complaints (number, source, consumer_name, consumer_phone, enterprise_id, company_name,
                   odr_unit, node_code, node_path, subject, description, state)
               VALUES ($1, 'consumer', '张三', '13900001111', $2, '第二集群电商', true, '320205-01', $3, '退货', '被拒',
                       'with_enterprise') RETURNING id""", f"C2{uuid.uuid4().hex[:10]}", eid, path)
        tid = await schedule(conn, kind="close_breach", due_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1),
                             complaint_id=cid)
    worker = TimerWorker(two_clusters, MemoryTimerQueue(), MemoryBus(), reconcile_seconds=0.3, poll_seconds=0.1,
                         name="second-cluster-timers")
    worker.start()
    try:
        for _ in range(150):
            async with tenant_transaction(slug) as conn:
                if await conn.fetchval("SELECT fired_at FROM timers WHERE id = $1", tid):
                    break
            await asyncio.sleep(0.1)
    finally:
        await worker.stop()
    async with tenant_transaction(slug) as conn:
        assert await conn.fetchval("SELECT count(*) FROM complaint_events WHERE complaint_id = $1 AND kind = 'deadline_breached'", cid) == 1
        assert await conn.fetchval("SELECT count(*) FROM notifications WHERE kind = 'deadline_breached' AND complaint_id = $1", cid) >= 1


EVAL_SLUG = "evc2"
EVAL_ACCOUNTS = (
    ("c2-ev-admin", Role.PROVINCE_ADMIN, "310000"),
    ("c2-ev-js-officer", Role.BUREAU_OFFICER, "310116"),
)


@pytest_asyncio.fixture(scope="module")
async def seeded_second(two_clusters):
    async with seeded_copy(two_clusters, "shanghai", EVAL_SLUG, EVAL_ACCOUNTS, cluster="second",
                           per_unit={"js-a": 40, "js-b": 12}) as summary:
        yield {u.key: u for u in summary.units}


async def test_an_evaluation_and_a_report_run_on_the_second_cluster(client, seeded_second):
    assert (await clusters.placement(EVAL_SLUG)).cluster == "second"
    admin = await login(client, "c2-ev-admin")
    api = f"/api/tenants/{EVAL_SLUG}"
    r = await client.post(f"{api}/evaluation-periods", json={"kind": "yearly", "starts_on": f"{dt.date.today().year}-01-01"},
                          headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post(f"{api}/evaluation-periods/{r.json()['id']}/evaluations", json={}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["scored"] >= 3
    r = await client.get(f"{api}/reports/class-table", params={"node": "310116"},
                         headers=await login(client, "c2-ev-js-officer"))
    assert r.status_code == 200, r.text
    rows = {row["enterprise_class"]: row for row in r.json()["rows"]}
    for key, cls in (("js-a", "A"), ("js-b", "B")):
        u = seeded_second[key]
        assert rows[cls]["handled"] == u.complaints == {"js-a": 40, "js-b": 12}[key]
        assert rows[cls]["settled"] == u.settled


async def test_odr_migrate_reaches_tenants_on_the_second_cluster(two_clusters):
    from tenants.migrate import migrate_all

    report = await migrate_all(slugs=SECOND)
    assert [(t.slug, t.ok) for t in report.tenants] == [(s, True) for s in SECOND]


async def test_a_placement_change_reaches_every_process_through_valkey(two_clusters, valkey_url):
    from core.pluginhost.invalidation import PLACEMENT_CHANNEL, PolicyInvalidation

    listener = PolicyInvalidation(two_clusters, valkey_url)
    await listener.start()
    try:
        await clusters.placement("fjc2")
        assert clusters.cached_placement("fjc2") is not None
        assert await PolicyInvalidation(two_clusters, valkey_url).publish("fjc2", PLACEMENT_CHANNEL)
        for _ in range(100):
            if clusters.cached_placement("fjc2") is None:
                break
            await asyncio.sleep(0.02)
        assert clusters.cached_placement("fjc2") is None
        assert listener.received >= 1
    finally:
        await listener.stop()
