"""SLA timers on real PostgreSQL and real Valkey: exactly-once firing across workers, nothing lost on
restart or FLUSHALL, effects and notifications, live push over SSE, the in-memory variant.

Complaints and enterprises are inserted directly (the complaint API is written elsewhere). Due times
are seconds away and workers reconcile every fraction of a second; waits are bounded polls.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import socket
import time
import types
import uuid
from contextlib import asynccontextmanager

import httpx
import msgspec
import pytest
import pytest_asyncio
import valkey.asyncio as valkey

from odr.app import create_app
from core.db.engine import platform_transaction, tenant_transaction
from core.notifications.bus import MemoryBus, ValkeyBus
from core.runtime import Platform
from core.timers import fire as fire_module
from core.timers.queue import QUEUE_KEY, MemoryTimerQueue, ValkeyTimerQueue, member
from core.timers.schedule import (
    cancel_contact_clocks,
    schedule,
    schedule_complaint_clocks,
)
from core.timers.worker import TimerWorker
from odr_plugin_api import Family, PluginInfo, hookimpl
from tests.conftest import login

T = "shanghai"
CONSUMER_NAME = "张小明"
CONSUMER_PHONE = "13912345678"


# -- helpers -------------------------------------------------------------------------------------
def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def soon(seconds: float) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=seconds)


async def until(pred, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``pred`` (sync or async) until truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


def credit_code() -> str:
    return "91" + "".join(random.choice("0123456789") for _ in range(16))


async def make_enterprise(node: str = "310116") -> uuid.UUID:
    async with tenant_transaction(T) as conn:
        return await conn.fetchval(
            """INSERT INTO enterprises (name, credit_code, unit_type, node_code, status)
               VALUES ($1, $2, 'enterprise', $3, 'active') RETURNING id""",
            f"测试电商{uuid.uuid4().hex[:6]}",
            credit_code(),
            node,
        )


async def make_complaint(demo, node: str = "310116-01", enterprise_id: uuid.UUID | None = None, **extra) -> types.SimpleNamespace:
    path = "/".join((await demo.node(T, node)).path)
    number = f"T{uuid.uuid4().hex[:12].upper()}"
    async with tenant_transaction(T) as conn:
        cid = await conn.fetchval(
            """INSERT INTO complaints (number, source, consumer_name, consumer_phone, enterprise_id, company_name,
                   odr_unit, node_code, node_path, subject, description, state, contacted_at)
               VALUES ($1, 'consumer', $2, $3, $4, '测试电商', true, $5, $6, '退货', '七天无理由退货被拒', 'with_enterprise', $7)
               RETURNING id""",
            number,
            CONSUMER_NAME,
            CONSUMER_PHONE,
            enterprise_id,
            node,
            path,
            extra.get("contacted_at"),
        )
    return types.SimpleNamespace(id=cid, number=number, node=node, enterprise_id=enterprise_id)


async def add_timer(kind: str, due: dt.datetime, **subject) -> uuid.UUID:
    async with tenant_transaction(T) as conn:
        return await schedule(conn, kind=kind, due_at=due, **subject)


async def timer(timer_id: uuid.UUID):
    async with tenant_transaction(T) as conn:
        return await conn.fetchrow("SELECT * FROM timers WHERE id = $1", timer_id)


async def fired(timer_id: uuid.UUID) -> bool:
    return (await timer(timer_id))["fired_at"] is not None


async def all_fired(ids) -> bool:
    async with tenant_transaction(T) as conn:
        return await conn.fetchval("SELECT count(*) FROM timers WHERE id = ANY($1) AND fired_at IS NOT NULL", list(ids)) == len(ids)


async def events(complaint_id: uuid.UUID, kind: str | None = None) -> list:
    async with tenant_transaction(T) as conn:
        rows = await conn.fetch(
            "SELECT * FROM complaint_events WHERE complaint_id = $1 AND ($2::text IS NULL OR kind = $2) ORDER BY id",
            complaint_id,
            kind,
        )
    return [dict(r, before=msgspec.json.decode(r["before"]) if r["before"] else None, after=msgspec.json.decode(r["after"])) for r in rows]


async def notifications(complaint_id: uuid.UUID | None = None, enterprise_id: uuid.UUID | None = None) -> list:
    async with tenant_transaction(T) as conn:
        rows = await conn.fetch(
            """SELECT * FROM notifications WHERE ($1::uuid IS NULL OR complaint_id = $1)
                 AND ($2::uuid IS NULL OR enterprise_id = $2) ORDER BY id""",
            complaint_id,
            enterprise_id,
        )
    return [dict(r, payload=msgspec.json.decode(r["payload"])) for r in rows]


async def breach_count(enterprise_id: uuid.UUID) -> int:
    async with tenant_transaction(T) as conn:
        return await conn.fetchval("SELECT breach_count FROM enterprises WHERE id = $1", enterprise_id)


async def breaches(complaint_id: uuid.UUID) -> list[str]:
    async with tenant_transaction(T) as conn:
        return list(await conn.fetchval("SELECT breaches FROM complaints WHERE id = $1", complaint_id))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- fixtures ------------------------------------------------------------------------------------
@pytest_asyncio.fixture
async def vk(valkey_url):
    client = valkey.from_url(valkey_url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def workers(demo, valkey_url, vk):
    """Factory of timer workers (Valkey queue and bus unless given); all stopped after the test."""
    made: list[TimerWorker] = []

    def make(queue=None, bus=None, *, reconcile: float = 0.5, name: str | None = None, start: bool = True):
        w = TimerWorker(
            demo,
            queue if queue is not None else ValkeyTimerQueue(valkey_url),
            bus if bus is not None else ValkeyBus(valkey_url),
            reconcile_seconds=reconcile,
            poll_seconds=0.1,
            name=name or f"test-worker-{len(made)}",
        )
        made.append(w)
        if start:
            w.start()
        return w

    yield make
    for w in made:
        await w.stop()
        await w.queue.close()
        await w.bus.close()


@asynccontextmanager
async def serving(app):
    """The app on a real HTTP server in this event loop (httpx's ASGI transport cannot stream)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", timeout_graceful_shutdown=2)
    )
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


class SSEReader:
    """Reads one SSE response into parsed events ({event, id, data, comment})."""

    def __init__(self, http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self.events: asyncio.Queue[dict] = asyncio.Queue()
        self.status: int | None = None
        self._task = asyncio.create_task(self._read(http, url, headers))

    async def _read(self, http, url, headers):
        async with http.stream("GET", url, headers=headers, timeout=None) as r:
            self.status = r.status_code
            current: dict = {}
            async for line in r.aiter_lines():
                if line == "":
                    if current:
                        await self.events.put(current)
                    current = {}
                elif line.startswith(":"):
                    current["comment"] = line[1:].strip()
                else:
                    field, _, value = line.partition(":")
                    current[field] = value[1:] if value.startswith(" ") else value

    async def next(self, timeout: float = 10.0, *, data_only: bool = True) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            ev = await asyncio.wait_for(self.events.get(), max(0.01, deadline - time.monotonic()))
            if not data_only or ev.get("data"):
                return ev

    async def connected(self) -> None:
        ev = await self.next(data_only=False)
        assert ev.get("comment") == "connected", ev

    async def close(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass


# -- tests ---------------------------------------------------------------------------------------
async def test_a_due_timer_fires_once_with_breach_event_count_and_notification(demo, workers, caplog):
    caplog.set_level("DEBUG")
    eid = await make_enterprise()
    case = await make_complaint(demo, enterprise_id=eid)
    contact_due = soon(1.2)
    async with tenant_transaction(T) as conn:
        ids = await schedule_complaint_clocks(
            conn, case.id, contact_due, soon(3600), dt.timedelta(seconds=1)
        )
    w = workers()
    await until(lambda: fired(ids["contact_breach"]), what="the contact breach")

    breach_row = await timer(ids["contact_breach"])
    assert breach_row["fired_at"] >= breach_row["due_at"]  # never early
    assert (await timer(ids["contact_warning"]))["fired_at"] is not None
    assert (await timer(ids["close_breach"]))["fired_at"] is None  # due in an hour
    assert await breaches(case.id) == ["contact"]
    assert await breach_count(eid) == 1

    [warning] = await events(case.id, "deadline_warning")
    assert warning["after"]["milestone"] == "contact"
    assert dt.datetime.fromisoformat(warning["after"]["due"]) == contact_due
    [breach] = await events(case.id, "deadline_breached")
    assert (breach["actor_id"], breach["actor_role"], breach["node_code"]) == ("system", "system", "310116-01")
    assert breach["before"] == {"breaches": []}
    assert breach["after"]["breaches"] == ["contact"]
    assert dt.datetime.fromisoformat(breach["after"]["due"]) == contact_due

    notes = await notifications(case.id)
    assert sorted((n["kind"], n["recipient"]) for n in notes) == sorted(
        [(k, r) for k in ("deadline_warning", "deadline_breached") for r in (f"enterprise:{eid}", "node:310116-01")]
    )
    for n in notes:
        assert n["payload"]["complaint_number"] == case.number
        assert n["payload"]["milestone"] == "contact"
    text = msgspec.json.encode([n["payload"] for n in notes]).decode() + caplog.text
    assert CONSUMER_NAME not in text and CONSUMER_PHONE not in text

    # More reconciles and polls change nothing: exactly once.
    await w.reconcile()
    await asyncio.sleep(0.3)
    assert len(await events(case.id, "deadline_breached")) == 1
    assert len(await notifications(case.id)) == 4
    assert await breach_count(eid) == 1


async def test_liaison_change_not_filed_in_time_becomes_overdue_and_counts(demo, workers):
    eid = await make_enterprise()
    async with tenant_transaction(T) as conn:
        lc = await conn.fetchval(
            """INSERT INTO liaison_changes (enterprise_id, role, changed_on, due_at, deadline_explanation)
               VALUES ($1, 'staff', current_date, now() + interval '1 second', '{}') RETURNING id""",
            eid,
        )
        tid = await schedule(conn, kind="liaison_breach", due_at=soon(0.8), liaison_change_id=lc)
    workers()
    await until(lambda: fired(tid), what="the liaison breach")
    async with tenant_transaction(T) as conn:
        assert await conn.fetchval("SELECT status FROM liaison_changes WHERE id = $1", lc) == "overdue"
    assert await breach_count(eid) == 1
    notes = await notifications(enterprise_id=eid)
    assert {(n["kind"], n["recipient"]) for n in notes} == {
        ("liaison_overdue", f"enterprise:{eid}"),
        ("liaison_overdue", "node:310116"),
    }


async def test_racing_workers_fire_each_timer_exactly_once(demo, workers):
    """Two Valkey workers share the queue; a third holds its own in-memory copy of every timer, so
    every timer is attempted by two workers at once: only PostgreSQL's claim keeps it once."""
    eid = await make_enterprise()
    cases = [await make_complaint(demo, enterprise_id=eid) for _ in range(24)]
    ids = []
    for i, case in enumerate(cases):
        # a third already overdue (fired by concurrent reconciles), the rest due within 1-2 s
        due = soon(-5) if i % 3 == 0 else soon(1.0 + (i % 5) * 0.2)
        ids.append(await add_timer("close_breach", due, complaint_id=case.id))
    ws = [workers(name="vk-a"), workers(name="vk-b"), workers(MemoryTimerQueue(), name="mem-c")]
    await until(lambda: all_fired(ids), what="every timer to fire")
    await asyncio.sleep(0.5)  # let any double firing surface

    for case in cases:
        assert len(await events(case.id, "deadline_breached")) == 1
        assert await breaches(case.id) == ["close"]
    assert await breach_count(eid) == len(cases)
    assert len(await notifications(enterprise_id=eid)) == 2 * len(cases)
    assert sum(w.fired for w in ws) >= len(cases)


async def test_a_worker_stopped_before_due_fires_after_restart(demo, workers, vk):
    case_queued = await make_complaint(demo)
    case_popped = await make_complaint(demo)
    due = soon(1.5)
    t_queued = await add_timer("contact_breach", due, complaint_id=case_queued.id)
    t_popped = await add_timer("contact_breach", due, complaint_id=case_popped.id)
    first = workers(reconcile=30)
    await until(lambda: first.reconciles >= 1, what="the first reconcile")
    await until(lambda: vk.zscore(QUEUE_KEY, member(T, t_popped)), what="timers queued in Valkey")
    await first.stop()
    # A crashed worker had popped this one from Valkey and never fired it.
    assert await vk.zrem(QUEUE_KEY, member(T, t_popped)) == 1

    await until(lambda: utcnow() > due + dt.timedelta(seconds=0.3), what="the due moment to pass")
    assert not await fired(t_queued) and not await fired(t_popped)  # nobody was running

    second = workers(reconcile=30)
    await until(lambda: all_fired([t_queued, t_popped]), what="both timers after the restart")
    for case in (case_queued, case_popped):
        assert len(await events(case.id, "deadline_breached")) == 1
    assert second.fired >= 2


async def test_valkey_flushall_while_timers_are_pending_loses_nothing(demo, workers, vk):
    cases = [await make_complaint(demo) for _ in range(6)]
    ids = [await add_timer("close_warning", soon(2.0 + i * 0.2), complaint_id=c.id) for i, c in enumerate(cases)]
    w = workers(reconcile=0.5)
    await until(lambda: _all_queued(vk, ids), what="timers queued in Valkey")
    await vk.flushall()
    assert await vk.zcard(QUEUE_KEY) == 0
    assert not any([await fired(i) for i in ids])
    await until(lambda: all_fired(ids), what="every timer after FLUSHALL")
    for c in cases:
        assert len(await events(c.id, "deadline_warning")) == 1
    assert w.reconciles >= 2


async def _all_queued(vk, ids) -> bool:
    scores = [await vk.zscore(QUEUE_KEY, member(T, i)) for i in ids]
    return all(s is not None for s in scores)


async def test_cancelled_and_already_met_timers_never_fire(demo, workers, vk):
    eid = await make_enterprise()
    cancelled_case = await make_complaint(demo, enterprise_id=eid)
    met_case = await make_complaint(demo, enterprise_id=eid, contacted_at=utcnow())  # contacted, not cancelled
    control = await make_complaint(demo, enterprise_id=eid)
    t_cancel = await add_timer("contact_breach", soon(1.0), complaint_id=cancelled_case.id)
    t_met = await add_timer("contact_breach", soon(1.0), complaint_id=met_case.id)
    t_control = await add_timer("contact_breach", soon(1.2), complaint_id=control.id)
    w = workers()
    await until(lambda: _all_queued(vk, [t_cancel]), what="the timer to be queued")
    async with tenant_transaction(T) as conn:
        assert await cancel_contact_clocks(conn, cancelled_case.id) == 1
    await until(lambda: fired(t_control), what="the control timer")
    await w.reconcile()
    await asyncio.sleep(0.3)

    assert (await timer(t_cancel))["fired_at"] is None
    met = await timer(t_met)
    assert met["fired_at"] is None and met["cancelled_at"] is not None
    for case in (cancelled_case, met_case):
        assert await events(case.id) == []
        assert await notifications(case.id) == []
        assert await breaches(case.id) == []
    assert await breach_count(eid) == 1  # the control only


async def test_a_crash_mid_fire_rolls_back_and_the_timer_fires_later(demo, workers, monkeypatch):
    eid = await make_enterprise()
    case = await make_complaint(demo, enterprise_id=eid)
    tid = await add_timer("close_breach", soon(0.5), complaint_id=case.id)
    real_record = fire_module.record
    attempts = []
    checked = asyncio.Event()

    async def crash_once(conn, **kw):
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("worker died mid-transaction")
        await checked.wait()  # hold the retry until the rolled-back state was looked at
        return await real_record(conn, **kw)

    monkeypatch.setattr(fire_module, "record", crash_once)
    workers(reconcile=1.0)
    await until(lambda: len(attempts) >= 1, what="the first attempt")
    await asyncio.sleep(0.1)  # the failed transaction has rolled back
    assert (await timer(tid))["fired_at"] is None
    assert await events(case.id) == [] and await breaches(case.id) == [] and await breach_count(eid) == 0
    checked.set()
    await until(lambda: fired(tid), what="the retry by reconcile")
    assert len(attempts) == 2
    assert len(await events(case.id, "deadline_breached")) == 1
    assert await breach_count(eid) == 1


def _notify_plugins(calls: list):
    def recorder():
        @hookimpl
        def odr_plugin_info():
            return PluginInfo(name="t_notify_recorder", version="0.1", title="records", families=(Family.NOTIFICATION,))

        @hookimpl
        def odr_notify(scope, kind, recipients, payload):
            calls.append((scope.tenant, scope.node_path, kind, list(recipients), dict(payload)))

        return types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_notify=odr_notify)

    def raiser():
        @hookimpl
        def odr_plugin_info():
            return PluginInfo(name="t_notify_raiser", version="0.1", title="raises", families=(Family.NOTIFICATION,))

        @hookimpl(tryfirst=True)
        def odr_notify(scope, kind, recipients, payload):
            raise RuntimeError(f"SMS gateway down for {CONSUMER_PHONE}")

        return types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_notify=odr_notify)

    return recorder(), raiser()


async def test_odr_notify_reaches_active_vendor_plugins_and_a_failing_one_is_contained(demo, client, workers, caplog):
    calls: list = []
    plugins = _notify_plugins(calls)
    names = []
    try:
        for p in plugins:
            name = p.odr_plugin_info().name
            demo.host.register(p, name=name)
            names.append(name)
            r = await client.put(
                f"/api/tenants/{T}/policy/310116/plugins/{name}", json={"active": True},
                headers=await login(client, "js-officer"),
            )
            assert r.status_code == 200, r.text
        eid = await make_enterprise()
        inside = await make_complaint(demo, enterprise_id=eid)  # 310116-01: plugins active (inherited)
        outside = await make_complaint(demo, node="310115-01")  # Pudong: not active there
        t1 = await add_timer("contact_breach", soon(0.5), complaint_id=inside.id)
        t2 = await add_timer("contact_breach", soon(0.7), complaint_id=outside.id)
        failures_before = demo.host.failures[("t_notify_raiser", "odr_notify")]
        workers()
        await until(lambda: all_fired([t1, t2]), what="both timers")
        await until(lambda: len(calls) >= 1, what="the recorder plugin")
        await asyncio.sleep(0.3)
        assert len(calls) == 1
        tenant, node_path, kind, recipients, payload = calls[0]
        assert (tenant, node_path[-1], kind) == (T, "310116-01", "deadline_breached")
        assert recipients == [f"enterprise:{eid}", "node:310116-01"]
        assert payload["complaint_number"] == inside.number
        assert demo.host.failures[("t_notify_raiser", "odr_notify")] == failures_before + 1
        assert CONSUMER_PHONE not in caplog.text and CONSUMER_NAME not in caplog.text
        assert len(await events(outside.id, "deadline_breached")) == 1  # the worker went on
    finally:
        async with platform_transaction() as conn:
            await conn.execute("DELETE FROM odr.plugin_activations WHERE plugin = ANY($1)", names)
        for name in names:
            demo.host.unregister(name)
        demo.forget_activations(T)


async def test_sse_stream_delivers_to_the_node_subtree_only(demo, client, workers, vk):
    app = create_app(demo, manage_lifecycle=False)
    assert isinstance(app.state.notify_bus, ValkeyBus)
    async with serving(app) as base, httpx.AsyncClient(base_url=base) as http:
        url = f"/api/tenants/{T}/notifications/stream"
        office = SSEReader(http, url, await login(client, "js-office-head"))  # 310116-01
        district = SSEReader(http, url, await login(client, "js-officer"))  # 310116, above it
        pudong = SSEReader(http, url, await login(client, "pd-office-head"))  # 310115-01, other subtree
        readers = (office, district, pudong)
        try:
            for r in readers:
                await r.connected()
            workers()  # publishes through its own Valkey connection
            js_case = await make_complaint(demo, node="310116-01", enterprise_id=await make_enterprise())
            await add_timer("contact_breach", soon(0.3), complaint_id=js_case.id)
            for r in (office, district):
                ev = await r.next()
                assert ev["event"] == "deadline_breached"
                data = msgspec.json.decode(ev["data"])
                assert data["recipient"] == "node:310116-01" and int(ev["id"]) == data["id"]
                assert data["payload"]["complaint_number"] == js_case.number
                assert CONSUMER_NAME not in ev["data"] and CONSUMER_PHONE not in ev["data"]

            pd_case = await make_complaint(demo, node="310115-01")
            await add_timer("contact_breach", soon(0.3), complaint_id=pd_case.id)
            ev = await pudong.next()  # its first event is its own: the Jinshan one never reached it
            assert msgspec.json.decode(ev["data"])["payload"]["complaint_number"] == pd_case.number
            await asyncio.sleep(0.3)
            for r in (office, district):  # and Pudong's never reached Jinshan
                assert all(pd_case.number not in (e.get("data") or "") for e in _drain(r))
        finally:
            for r in readers:
                await r.close()
        assert all(r.status == 200 for r in readers)

        # The same visibility in the list.
        mine = (await http.get(f"/api/tenants/{T}/notifications", headers=await login(client, "js-office-head"))).json()
        numbers = {n["payload"]["complaint_number"] for n in mine}
        assert js_case.number in numbers and pd_case.number not in numbers
        theirs = (await http.get(f"/api/tenants/{T}/notifications", headers=await login(client, "pd-office-head"))).json()
        numbers = {n["payload"]["complaint_number"] for n in theirs}
        assert pd_case.number in numbers and js_case.number not in numbers
        # Marking read: only one's own; others' are 404.
        own_id = next(n["id"] for n in mine if n["payload"]["complaint_number"] == js_case.number)
        h = await login(client, "js-office-head")
        r = await http.post(f"/api/tenants/{T}/notifications/{own_id}/read", headers=h)
        assert r.status_code == 200 and r.json()["read_at"]
        r = await http.post(f"/api/tenants/{T}/notifications/{own_id}/read", headers=await login(client, "pd-office-head"))
        assert r.status_code == 404
        # Another tenant's user cannot open this tenant's stream or list.
        r = await http.get(f"/api/tenants/{T}/notifications", headers=await login(client, "wx-officer"))
        assert r.status_code == 404
    await app.state.notify_bus.close()


def _drain(reader: SSEReader) -> list[dict]:
    out = []
    while not reader.events.empty():
        out.append(reader.events.get_nowait())
    return out


async def test_sse_replays_from_last_event_id(demo, client, workers):
    case = await make_complaint(demo, node="310116-02")
    tid = await add_timer("close_breach", soon(0.2), complaint_id=case.id)
    workers()
    await until(lambda: fired(tid), what="the timer")
    async with tenant_transaction(T) as conn:
        nid = await conn.fetchval("SELECT id FROM notifications WHERE complaint_id = $1", case.id)
    app = create_app(demo, manage_lifecycle=False)
    async with serving(app) as base, httpx.AsyncClient(base_url=base) as http:
        h = {**await login(client, "js-officer"), "Last-Event-ID": str(nid - 1)}
        reader = SSEReader(http, f"/api/tenants/{T}/notifications/stream", h)
        try:
            ev = await reader.next()
            assert int(ev["id"]) == nid
            assert msgspec.json.decode(ev["data"])["payload"]["complaint_number"] == case.number
        finally:
            await reader.close()
    await app.state.notify_bus.close()


async def test_in_memory_queue_and_broadcaster_fire_and_push(demo, settings, client, vk):
    """The embedded default: no Valkey anywhere; the app's in-process bus is the worker's."""
    local = Platform(msgspec.structs.replace(settings, valkey_url=None), host=demo.host)
    app = create_app(local, manage_lifecycle=False)
    bus = app.state.notify_bus
    assert isinstance(bus, MemoryBus)
    queue = MemoryTimerQueue()
    eid = await make_enterprise()
    case = await make_complaint(demo, enterprise_id=eid)
    async with serving(app) as base, httpx.AsyncClient(base_url=base) as http:
        reader = SSEReader(http, f"/api/tenants/{T}/notifications/stream", await login(client, "js-office-head"))
        try:
            await reader.connected()
            async with tenant_transaction(T) as conn:
                ids = await schedule_complaint_clocks(conn, case.id, soon(1.0), soon(1.4), dt.timedelta(seconds=0.5))
            w = TimerWorker(local, queue, bus, reconcile_seconds=0.3, poll_seconds=0.1, name="memory-worker")
            w.start()
            try:
                await until(lambda: all_fired(list(ids.values())), what="all four clocks")
                seen = [msgspec.json.decode((await reader.next())["data"]) for _ in range(4)]
            finally:
                await w.stop()
        finally:
            await reader.close()
    assert sorted((n["kind"], n["payload"]["milestone"]) for n in seen) == [
        ("deadline_breached", "close"), ("deadline_breached", "contact"),
        ("deadline_warning", "close"), ("deadline_warning", "contact"),
    ]
    assert await breaches(case.id) in (["contact", "close"], ["close", "contact"])
    assert await breach_count(eid) == 2
    assert await queue.size() == 0


async def test_memory_queue_orders_moves_and_pops_once():
    q = MemoryTimerQueue()
    await q.add([("shanghai:a", 30.0), ("shanghai:b", 10.0), ("shanghai:c", 20.0)])
    await q.add([("shanghai:a", 5.0)])  # moved earlier
    assert await q.next_due() == 5.0
    assert await q.pop_due(15.0) == ["shanghai:a", "shanghai:b"]
    assert await q.pop_due(15.0) == []
    assert await q.pop_due(100.0) == ["shanghai:c"]
    assert await q.next_due() is None


async def test_valkey_queue_pops_each_member_to_one_consumer(valkey_url, vk):
    qs = [ValkeyTimerQueue(valkey_url) for _ in range(4)]
    try:
        members = [f"shanghai:{uuid.uuid4()}" for _ in range(200)]
        await qs[0].add([(m, 1.0 + i) for i, m in enumerate(members)])
        await qs[0].add([(members[0], 1.0)])  # idempotent
        assert await qs[1].size() == 200
        results = await asyncio.gather(*(q.pop_due(1_000.0, 7) for q in qs for _ in range(10)))
        popped = [m for r in results for m in r]
        assert sorted(popped) == sorted(members) and len(popped) == len(set(popped))
    finally:
        for q in qs:
            await q.close()
