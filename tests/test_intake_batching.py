"""Group commit of complaint intake (core.complaints.batching): concurrent intakes share one tenant
transaction, and behave exactly as if they had been filed one by one."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest

from core.auth.principal import Principal, Role
from core.complaints import batching, service
from core.complaints.schemas import ComplaintIntake
from core.db.engine import tenant_transaction
from tests.complaint_helpers import active_unit

TENANT = "shanghai"


@pytest.fixture
async def use_batcher():
    """Install a batcher with the given settings on this event loop; restore the previous one after."""
    loop = asyncio.get_running_loop()
    previous = batching._BATCHERS.get(loop)

    def install(**kwargs) -> batching.IntakeBatcher:
        # as service.intake makes it: filed rows come back narrow, rows found by key in full
        b = batching.IntakeBatcher(service.FILED_COLUMNS, existing_columns=service.COMPLAINT_COLUMNS, **kwargs)
        batching._BATCHERS[loop] = b
        return b

    yield install
    if previous is None:
        batching._BATCHERS.pop(loop, None)
    else:
        batching._BATCHERS[loop] = previous


def person() -> Principal:
    name = f"c-{uuid.uuid4().hex[:8]}"
    return Principal(id=str(uuid.uuid4()), username=name, role=Role.CONSUMER, tenant=TENANT)


def complaint(unit: dict, key: str | None, **extra) -> ComplaintIntake:
    fields = dict(
        company_name="批量电商有限公司", enterprise_id=unit["id"], route="odr", subject="网购商品与描述不符",
        description="收到的商品与页面描述不一致，要求退货。", consumer_name="王五", consumer_phone="13700001111",
        amount_claimed=128.0, idempotency_key=key,
    )
    fields.update(extra)
    return ComplaintIntake(**fields)


async def full_work(ids: set[str]) -> dict[str, tuple[int, int, int]]:
    """complaint id -> (events, timers, notifications)."""
    async with tenant_transaction(TENANT) as conn:
        rows = await conn.fetch(
            """SELECT c.id::text AS id,
                      (SELECT count(*) FROM complaint_events e WHERE e.complaint_id = c.id) AS ev,
                      (SELECT count(*) FROM timers t WHERE t.complaint_id = c.id) AS tm,
                      (SELECT count(*) FROM notifications n WHERE n.complaint_id = c.id) AS nt
               FROM complaints c WHERE c.id = ANY($1::uuid[])""",
            list(ids),
        )
    return {r["id"]: (r["ev"], r["tm"], r["nt"]) for r in rows}


async def warm(platform, unit, who):
    """One intake through the ordinary path: the process now knows the unit (the batched path's condition)."""
    return await service.intake(platform, TENANT, who, complaint(unit, f"warm-{uuid.uuid4().hex}"))


async def test_concurrent_duplicates_within_a_batch_return_the_first(demo, use_batcher):
    b = use_batcher(window=0.05, max_batch=200)  # everything below lands in one batch
    unit = await active_unit(TENANT, "310116")
    who = person()
    await warm(demo, unit, who)
    run = uuid.uuid4().hex[:8]
    keys = [f"dup-{run}-{i % 5}" for i in range(20)] + [None, None]
    outboxes = [[] for _ in keys]
    results = await asyncio.gather(*(
        service.intake(demo, TENANT, who, complaint(unit, k), outboxes[i]) for i, k in enumerate(keys)
    ))
    assert b.batches == 1 and b.items == len(keys) and b.fallbacks == 0
    by_key: dict[str | None, set[str]] = {}
    for k, r in zip(keys, results):
        by_key.setdefault(k, set()).add(r.complaint.id)
    for i in range(5):
        k = f"dup-{run}-{i}"
        assert len(by_key[k]) == 1  # one complaint per key
        created = [r for kk, r in zip(keys, results) if kk == k and r.created]
        assert len(created) == 1  # the first filed it, the three others got it back (created=False)
    assert len(by_key[None]) == 2  # no key: two complaints
    for r, out in zip(results, outboxes):
        assert r.complaint.state == "with_enterprise" and r.odr_notice
        assert len(out) == (1 if r.created else 0)
        if r.created:
            assert out[0].notices[0].complaint_id == r.complaint.id
    ids = {r.complaint.id for r in results}
    assert len(ids) == 7
    assert set((await full_work(ids)).values()) == {(1, 4, 1)}


async def test_duplicates_across_batches_and_against_the_table(demo, use_batcher):
    b = use_batcher(max_batch=3, max_inflight=3)  # many small batches, several in flight at once
    unit = await active_unit(TENANT, "310116")
    who = person()
    await warm(demo, unit, who)
    run = uuid.uuid4().hex[:8]
    first = await service.intake(demo, TENANT, who, complaint(unit, f"old-{run}"))
    assert first.created
    keys = [f"x-{run}-{i % 4}" for i in range(24)] + [f"old-{run}"] * 4
    results = await asyncio.gather(*(service.intake(demo, TENANT, who, complaint(unit, k)) for k in keys))
    assert b.batches > 2 and b.fallbacks == 0
    per_key: dict[str, list] = {}
    for k, r in zip(keys, results):
        per_key.setdefault(k, []).append(r)
    for k, rs in per_key.items():
        assert len({r.complaint.id for r in rs}) == 1, k
        assert sum(r.created for r in rs) == (0 if k.startswith("old-") else 1), k
    assert {r.complaint.id for r in per_key[f"old-{run}"]} == {first.complaint.id}
    async with tenant_transaction(TENANT) as conn:
        n = await conn.fetchval("SELECT count(*) FROM complaints WHERE idempotency_key LIKE $1", f"{who.id}:x-{run}-%")
    assert n == 4
    ids = {r.complaint.id for r in results}
    assert set((await full_work(ids)).values()) == {(1, 4, 1)}


async def test_one_bad_item_does_not_fail_the_others(demo, use_batcher):
    b = use_batcher(window=0.05, max_batch=200)
    unit = await active_unit(TENANT, "310116")
    who = person()
    await warm(demo, unit, who)
    run = uuid.uuid4().hex[:8]
    # built in Python, so not validated by the API: the database's CHECK refuses the negative amount
    items = [complaint(unit, f"ok-{run}-{i}") for i in range(6)]
    items.insert(3, complaint(unit, f"bad-{run}", amount_claimed=-5.0))
    results = await asyncio.gather(*(service.intake(demo, TENANT, who, it) for it in items), return_exceptions=True)
    assert b.fallbacks == 1
    assert isinstance(results[3], asyncpg.CheckViolationError)
    good = [r for i, r in enumerate(results) if i != 3]
    assert all(r.created for r in good)
    async with tenant_transaction(TENANT) as conn:
        assert await conn.fetchval("SELECT count(*) FROM complaints WHERE idempotency_key = $1", f"{who.id}:bad-{run}") == 0
        assert await conn.fetchval("SELECT count(*) FROM complaints WHERE idempotency_key LIKE $1", f"{who.id}:ok-{run}-%") == 6
    assert set((await full_work({r.complaint.id for r in good})).values()) == {(1, 4, 1)}
    # the batcher keeps working afterwards
    again = await asyncio.gather(*(service.intake(demo, TENANT, who, complaint(unit, f"after-{run}-{i}")) for i in range(3)))
    assert all(r.created for r in again) and b.fallbacks == 1


async def test_a_unit_revoked_after_it_was_cached_is_looked_up_again_and_nothing_is_written(demo, use_batcher):
    use_batcher()
    unit = await active_unit(TENANT, "310116")
    who = person()
    await warm(demo, unit, who)  # cached in this process
    async with tenant_transaction(TENANT) as conn:
        await conn.execute("UPDATE enterprises SET status = 'revoked' WHERE id = $1::uuid", unit["id"])
        before = await conn.fetchval("SELECT count(*) FROM complaints WHERE enterprise_id = $1::uuid", unit["id"])
    key = f"stale-{uuid.uuid4().hex[:8]}"
    results = await asyncio.gather(
        *(service.intake(demo, TENANT, who, complaint(unit, f"{key}-{i}")) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, KeyError) and "enterprise_id" in str(r) for r in results)
    async with tenant_transaction(TENANT) as conn:
        assert await conn.fetchval("SELECT count(*) FROM complaints WHERE enterprise_id = $1::uuid", unit["id"]) == before


async def test_a_lone_intake_is_not_delayed_and_uses_the_batch(demo, use_batcher):
    b = use_batcher()
    unit = await active_unit(TENANT, "310116")
    who = person()
    await warm(demo, unit, who)
    r = await service.intake(demo, TENANT, who, complaint(unit, None, route="bureau"))
    assert r.created and r.complaint.state == "registered" and b.batches == 1
    assert (await full_work({r.complaint.id}))[r.complaint.id] == (1, 0, 0)


async def test_connections_come_back_clean_when_the_reset_rides_with_commit(demo):
    """The pool's reset (RESET ALL + RESET ROLE) is sent with the tenant transaction's COMMIT or
    ROLLBACK; a session-level change made inside the transaction still does not leak to the next user."""
    from core.db.engine import ENGINE

    pool = ENGINE.pool
    async with pool.acquire() as conn:
        clean = await conn.fetchrow("SELECT current_user AS u, current_setting('search_path') AS p, current_setting('application_name') AS a")
    for fail in (False, True):
        try:
            async with tenant_transaction(TENANT) as conn:
                await conn.execute("SET SESSION ROLE t_shanghai")
                await conn.execute("SET SESSION search_path = t_shanghai")
                await conn.execute("SET SESSION application_name = 'leaked'")
                if fail:
                    raise RuntimeError("roll back")
        except RuntimeError:
            pass
        conns = [await pool.acquire() for _ in range(pool.get_size())]
        try:
            for c in conns:
                row = await c.fetchrow("SELECT current_user AS u, current_setting('search_path') AS p, current_setting('application_name') AS a")
                assert dict(row) == dict(clean)
        finally:
            for c in conns:
                await pool.release(c)


@pytest.mark.parametrize("batched", [True, False])
async def test_the_complaint_answered_at_intake_is_the_complaint_stored(demo, use_batcher, monkeypatch, batched):
    """Intake answers with the complaint built from what it wrote and what the database generated,
    without reading it back: byte for byte the view a later read gives, for every route and source."""
    import msgspec

    b = use_batcher(window=0.05 if batched else 0.0)
    if not batched:
        monkeypatch.setattr("core.complaints.intake._cached_unit", lambda tenant, data: (False, None))  # every intake files alone
    unit = await active_unit(TENANT, "310116")
    who = person()
    officer = Principal(id=str(uuid.uuid4()), username="js-officer-t", role=Role.BUREAU_OFFICER, tenant=TENANT,
                        node_path=("310000", "310116"))
    await warm(demo, unit, who)
    run = uuid.uuid4().hex[:8]
    cases = [
        (who, complaint(unit, f"eq-{run}-1")),
        (who, complaint(unit, f"eq-{run}-2", route="bureau", consumer_address="上海市金山区朱泾镇某路1号", category="家用电器")),
        (who, complaint(unit, None, amount_claimed=0.1)),
        (who, ComplaintIntake(company_name="无名小店", subject="预付卡不退", description="门店关闭，预付卡余额无法退还。",
                              consumer_name="赵六", consumer_phone="+86-13700001111", node_code="310116")),
        (officer, complaint(unit, f"eq-{run}-5")),
    ]
    results = await asyncio.gather(*(service.intake(demo, TENANT, p, data, []) for p, data in cases))
    assert all(r.created for r in results)
    assert (b.batches >= 1 and b.fallbacks == 0) if batched else b.batches == 0
    for (p, _), r in zip(cases, results):
        stored = await service.get(demo, TENANT, p, r.complaint.id)
        assert msgspec.json.encode(r.complaint) == msgspec.json.encode(stored)


def test_complaint_ids_are_time_ordered_version_7_uuids():
    first = batching.new_ids(50)
    later = batching.new_ids(50)
    ids = first + later + [batching.new_id()]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert len(set(ids)) == len(ids)
    # the leading 48 bits are the millisecond clock: never decreasing from one batch to the next
    stamps = [i.int >> 80 for i in ids]
    assert stamps == sorted(stamps)
    assert abs(stamps[-1] - time.time_ns() // 1_000_000) < 5_000



async def test_intakes_that_waited_too_long_are_refused_before_their_batch_and_nothing_of_them_is_written(demo, use_batcher):
    """Age limit (ODR_INTAKE_MAX_WAIT_MS): while a batch is held up, the intakes queued behind it grow
    older than the limit and are refused with IntakeOverloaded (503) when they would join a batch;
    counted from the table: every refused key absent, every acknowledged one complete."""
    b = use_batcher(max_batch=4, max_inflight=1, max_wait=0.3)
    unit = await active_unit(TENANT, "310116")
    who = person()
    await warm(demo, unit, who)
    run = uuid.uuid4().hex[:8]
    keys = [f"age-{run}-{i}" for i in range(20)]
    async with tenant_transaction(TENANT) as blocker:
        # the first batch's INSERT waits for this lock; the others queue behind it
        await blocker.execute("LOCK TABLE complaints IN EXCLUSIVE MODE")
        tasks = [asyncio.create_task(service.intake(demo, TENANT, who, complaint(unit, k))) for k in keys]
        await asyncio.sleep(0.6)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    refused = [k for k, r in zip(keys, results) if isinstance(r, batching.IntakeOverloaded)]
    filed = {k: r for k, r in zip(keys, results) if not isinstance(r, BaseException)}
    assert len(refused) + len(filed) == len(keys), results
    # the held batch (up to max_batch, as many as had arrived) committed; everything behind it was refused
    assert 1 <= len(filed) <= 4 and b.expired == len(refused) == len(keys) - len(filed), results
    assert all(r.created for r in filed.values())
    async with tenant_transaction(TENANT) as conn:
        stored = {r["k"].split(":", 1)[1] for r in await conn.fetch(
            "SELECT idempotency_key AS k FROM complaints WHERE idempotency_key LIKE $1", f"{who.id}:age-{run}-%")}
    assert stored == set(filed)  # every acknowledged intake present, nothing of a refused one
    assert set((await full_work({r.complaint.id for r in filed.values()})).values()) == {(1, 4, 1)}
    # a request that already waited too long (for the event loop) before reaching the queue: refused at once
    token = batching.arrived_at.set(time.monotonic() - 1.0)
    try:
        with pytest.raises(batching.IntakeOverloaded):
            await service.intake(demo, TENANT, who, complaint(unit, f"late-{run}"))
    finally:
        batching.arrived_at.reset(token)
    async with tenant_transaction(TENANT) as conn:
        assert await conn.fetchval("SELECT count(*) FROM complaints WHERE idempotency_key = $1", f"{who.id}:late-{run}") == 0
    # and once the load is gone, intake works at once
    again = await asyncio.gather(*(service.intake(demo, TENANT, who, complaint(unit, f"after-{run}-{i}")) for i in range(3)))
    assert all(r.created for r in again)
