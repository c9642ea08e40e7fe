"""Notification delivery out of the request path, on real PostgreSQL and real local receivers:
an e-mail (aiosmtpd), a signed webhook and an SMS (the vendor example gateway posting to a local HTTP
receiver) for a breach warning fired by the timer worker; a receiver that answers 503 gets its retries
with back-off and ends in the dead-letter list (API), while intake keeps acknowledging complaints and
the other channels keep delivering; a delivery worker stopped in the middle of sending and started
again delivers every row (duplicates only of the same idempotency key); the events feed never skips an
event committed late, and a node's event subscription receives its subtree's events in batches.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import subprocess
import sys
import types
import uuid
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio

from core.db.engine import platform_transaction, tenant_transaction
from core.notifications.bus import MemoryBus
from core.notifications.delivery_worker import DeliveryWorker
from core.pluginhost.activations import save_activation
from core.timers.queue import MemoryTimerQueue
from core.timers.schedule import schedule
from core.timers.worker import TimerWorker
from odr_plugin_api import verify_webhook
from odr_plugin_api.channels import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.complaint_helpers import active_unit, consumer
from tests.conftest import login
from tests.receivers import HttpReceiver, SmtpReceiver
from tests.test_timers import until, soon

T = "shanghai"
JINSHAN, PUDONG, FENGJING = "310116", "310115", "310116-02"
CONSUMER_NAME = "欧阳娜娜"
CONSUMER_PHONE = "13700001234"
SECRET = "test-webhook-secret"
SMS_SECRET = "acme-app-secret"
ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "plugins" / "vendor-examples" / "acme-sms-gateway"


# -- helpers -------------------------------------------------------------------------------------
async def activate(demo, node: str, plugin: str, config: dict | None, *, active: bool = True) -> None:
    paths = {c: n.path for c, n in (await demo.nodes(T)).items()}
    async with platform_transaction() as conn:
        await save_activation(conn, demo.host, tenant=T, node_code=node, plugin=plugin, active=active, config=config,
                              actor="tests", node_paths=paths)
    demo.forget_activations(T)


async def make_complaint(demo, node: str, enterprise_id: str) -> types.SimpleNamespace:
    path = "/".join((await demo.node(T, node)).path)
    number = f"D{uuid.uuid4().hex[:12].upper()}"
    async with tenant_transaction(T) as conn:
        cid = await conn.fetchval(
            """INSERT INTO complaints (number, source, consumer_name, consumer_phone, enterprise_id, company_name,
                   odr_unit, node_code, node_path, subject, description, state)
               VALUES ($1, 'consumer', $2, $3, $4, '测试电商', true, $5, $6, '退货', '七天无理由退货被拒', 'with_enterprise')
               RETURNING id""",
            number, CONSUMER_NAME, CONSUMER_PHONE, uuid.UUID(enterprise_id), node, path)
        await conn.execute(
            """INSERT INTO complaint_events (complaint_id, kind, actor_id, actor_role, node_code, after)
               VALUES ($1, 'registered', 'tests', 'consumer', $2, '{"state": "with_enterprise"}')""", cid, node)
    return types.SimpleNamespace(id=cid, number=number, node=node)


async def breach(complaint) -> uuid.UUID:
    async with tenant_transaction(T) as conn:
        return await schedule(conn, kind="close_breach", due_at=soon(0.3), complaint_id=complaint.id)


async def deliveries(where: str = "true", *args) -> list[dict]:
    async with tenant_transaction(T) as conn:
        rows = await conn.fetch(f"SELECT * FROM deliveries WHERE {where} ORDER BY id", *args)
    return [dict(r) for r in rows]


def no_personal_data(*texts: str | bytes, masked: bool = False) -> None:
    """Neither the consumer's name nor phone in ``texts`` (``masked``: the masked forms may be)."""
    for text in texts:
        s = text.decode() if isinstance(text, bytes) else text
        assert CONSUMER_NAME not in s and CONSUMER_PHONE not in s and CONSUMER_NAME[1:] not in s, s
        if not masked:
            assert CONSUMER_PHONE[-4:] not in s and CONSUMER_NAME[0] not in s, s


@pytest.fixture(scope="module")
def receivers():
    r = types.SimpleNamespace(smtp=SmtpReceiver(), hook=HttpReceiver(), sms=HttpReceiver(answer=b'{"code": "OK", "message_id": "m-1"}'),
                              failing=HttpReceiver(status=503))
    yield r
    for x in (r.smtp, r.hook, r.sms, r.failing):
        x.close()


@pytest_asyncio.fixture(scope="module")
async def channels(demo, receivers):
    """Jinshan (310116) switches on e-mail, the signed webhook and the vendor SMS gateway; Pudong (310115)
    a webhook whose receiver answers 503. All switched off again afterwards. The SMS gateway is a
    vendor's plugin: it runs in an isolated worker (with network, as a channel), as the platform runs it."""
    if "acme_sms_gateway" not in demo.host.infos:
        sys.path.insert(0, str(VENDOR))
        import acme_sms_gateway

        demo.host.register(acme_sms_gateway, name="acme_sms_gateway", isolate="acme_sms_gateway")
    await activate(demo, JINSHAN, "odr_email", {"host": "127.0.0.1", "port": receivers.smtp.port, "security": "none",
                                                  "sender": "odr@jinshan.example"})
    await activate(demo, JINSHAN, "odr_webhook", {"url": receivers.hook.url(), "secret": SECRET})
    await activate(demo, JINSHAN, "acme_sms_gateway", {
        "endpoint": receivers.sms.url("/sms/send"), "app_key": "k1", "app_secret": SMS_SECRET, "sign_name": "金山市场监管",
        "templates": {"deadline_breached": "SMS_900001", "deadline_warning": "SMS_900002"}})
    await activate(demo, PUDONG, "odr_webhook", {"url": receivers.failing.url(), "secret": SECRET})
    yield
    for node, plugin in ((JINSHAN, "odr_email"), (JINSHAN, "odr_webhook"), (JINSHAN, "acme_sms_gateway"),
                         (PUDONG, "odr_webhook"), (FENGJING, "odr_webhook")):
        await activate(demo, node, plugin, None, active=False)


@pytest_asyncio.fixture
async def running(demo):
    """A timer worker and a delivery worker (fast polls, 0.2 s first back-off, 3 attempts)."""
    timers = TimerWorker(demo, MemoryTimerQueue(), MemoryBus(), reconcile_seconds=0.3, poll_seconds=0.1, name="t-deliv")
    sender = DeliveryWorker(demo, poll_seconds=0.1, retry_seconds=0.2, max_attempts=3, lease_seconds=2, name="d-test")
    timers.start()
    sender.start()
    yield types.SimpleNamespace(timers=timers, sender=sender)
    await sender.stop()
    await timers.stop()


# -- acceptance ----------------------------------------------------------------------------------
async def test_breach_reaches_email_webhook_and_sms_and_a_failing_receiver_ends_dead_while_intake_goes_on(
        demo, client, channels, receivers, running):
    officer = await login(client, "js-officer")
    unit = await active_unit(T, JINSHAN)
    specialist = await login(client, unit["specialist"])
    # the bureau officer wants e-mail and SMS, the enterprise's specialist e-mail only
    for headers, channel, address in ((officer, "odr_email", "officer@jinshan.example"),
                                      (officer, "acme_sms_gateway", "13800138000"),
                                      (specialist, "odr_email", "odr@shop.example")):
        r = await client.put(f"/api/tenants/{T}/me/channels/{channel}", json={"enabled": True, "address": address},
                             headers=headers)
        assert r.status_code == 200, r.text
    mine = (await client.get(f"/api/tenants/{T}/me/channels/", headers=officer)).json()
    assert {c["channel"]: c["enabled"] for c in mine} == {"acme_sms_gateway": True, "odr_email": True}

    # Pudong's bureau system is down (503); its cases keep coming in through the API meanwhile
    pd_unit = await active_unit(T, PUDONG)
    failing_case = await make_complaint(demo, PUDONG, pd_unit["id"])
    await breach(failing_case)

    case = await make_complaint(demo, JINSHAN, unit["id"])
    await breach(case)

    cons = await login(client, await consumer(client, T), "demo12315-pw")
    acknowledged = []
    for i in range(5):
        r = await client.post(f"/api/tenants/{T}/complaints", headers=cons, json={
            "company_name": "某电商公司", "credit_code": pd_unit["credit_code"], "subject": f"质量问题{i}",
            "description": "收到的商品无法使用，要求退款。", "consumer_name": CONSUMER_NAME, "consumer_phone": CONSUMER_PHONE,
            "consumer_address": "上海市浦东新区某路1号", "amount_claimed": 99.0, "route": "odr"})
        acknowledged.append(r.status_code)
    assert acknowledged == [201] * 5

    # e-mail: the officer (node recipient) and the specialist (enterprise recipient), each once
    mails = await until(lambda: len(receivers.smtp.messages) >= 2 and receivers.smtp.messages, timeout=20, what="two e-mails")
    ours = [m for m in receivers.smtp.messages if case.number in m["Subject"]]
    assert sorted(m["To"] for m in ours) == ["odr@shop.example", "officer@jinshan.example"]
    for m in ours:
        assert "超时" in m["Subject"] and m["X-ODR-Idempotency-Key"]
        no_personal_data(m["Subject"], m.get_content())
    # webhook: one signed request per notification recipient, verifiable with the secret
    hooks = await until(lambda: [r for r in receivers.hook.received() if case.number.encode() in r["body"]
                                 and b"deadline_breached" in r["body"]] or None, timeout=20, what="webhook")
    await until(lambda: len([r for r in receivers.hook.received() if case.number.encode() in r["body"]
                             and b"deadline_breached" in r["body"]]) == 2, timeout=10, what="two webhooks")
    hooks = [r for r in receivers.hook.received() if case.number.encode() in r["body"] and b"deadline_breached" in r["body"]]
    for h in hooks:
        headers = {k.lower(): v for k, v in h["headers"].items()}
        assert verify_webhook(SECRET, headers[TIMESTAMP_HEADER.lower()], h["body"], headers[SIGNATURE_HEADER.lower()])
        assert not verify_webhook("wrong", headers[TIMESTAMP_HEADER.lower()], h["body"], headers[SIGNATURE_HEADER.lower()])
        body = msgspec.json.decode(h["body"])
        assert body["kind"] == "deadline_breached" and body["payload"]["complaint_number"] == case.number
        assert body["idempotency_key"] == headers[IDEMPOTENCY_HEADER.lower()]
        no_personal_data(h["body"])
    assert sorted(msgspec.json.decode(h["body"])["recipient"] for h in hooks) == sorted(
        [f"enterprise:{unit['id']}", f"node:{JINSHAN}"])
    # SMS: the template id and its parameters for the officer's phone, signed for the gateway
    sms = await until(lambda: [r for r in receivers.sms.received("/sms/send") if case.number.encode() in r["body"]] or None,
                      timeout=20, what="SMS")
    assert len(sms) == 1
    sent = msgspec.json.decode(sms[0]["body"])
    assert sent["template_id"] == "SMS_900001" and sent["phone"] == "13800138000" and sent["sign_name"] == "金山市场监管"
    assert sent["params"]["number"] == case.number and sent["params"]["milestone"] == "closing"
    assert verify_webhook(SMS_SECRET, sms[0]["headers"]["X-Acme-Timestamp"], sms[0]["body"], sms[0]["headers"]["X-Acme-Signature"])
    no_personal_data(sms[0]["body"])
    assert demo.host.workers["acme_sms_gateway"].round_trips >= 1  # sent from its isolated worker

    # the failing receiver: exactly 3 attempts per delivery, with growing gaps, then dead-lettered
    dead = await until(lambda: deliveries("node_code = $1 AND state = 'dead'", PUDONG), timeout=30,
                       what="dead-lettered deliveries")
    dead_breach = await until(lambda: deliveries("node_code = $1 AND state = 'dead' AND kind = 'deadline_breached'", PUDONG),
                              timeout=30, what="breach dead-lettered")
    assert {d["attempts"] for d in dead_breach} == {3} and {d["last_error"] for d in dead_breach} == {"HTTP 503"}
    key = dead_breach[0]["idempotency_key"]
    tries = [r for r in receivers.failing.received() if r["headers"].get(IDEMPOTENCY_HEADER) == key]
    assert len(tries) == 3
    # the intake's new-case notices go to the same failing webhook: queued, never blocking intake
    new_cases = await deliveries("node_code = $1 AND kind = 'new_case'", PUDONG)
    assert len(new_cases) >= 5

    # the bureau sees the dead letters (addresses masked), and can queue one again
    admin = await login(client, "sh-admin")
    listed = (await client.get(f"/api/tenants/{T}/nodes/{PUDONG}/deliveries", params={"state": "dead"}, headers=admin)).json()
    assert any(d["idempotency_key"] == key and d["last_error"] == "HTTP 503" and d["attempts"] == 3 for d in listed)
    assert all(d["state"] == "dead" for d in listed)
    pd_head = await login(client, "pd-office-head")  # 310115-01: the deliveries of 310115 are not in its subtree
    assert (await client.get(f"/api/tenants/{T}/nodes/{PUDONG}/deliveries", headers=pd_head)).status_code == 404
    receivers.failing.status = 200
    r = await client.post(f"/api/tenants/{T}/nodes/{PUDONG}/deliveries/{dead_breach[0]['id']}/retry", headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "pending"
    await until(lambda: deliveries("id = $1 AND state = 'delivered'", dead_breach[0]["id"]), timeout=10, what="retried")
    receivers.failing.status = 503

    # deliveries of the Jinshan notifications: all delivered, one row per (notification, channel, recipient)
    rows = await deliveries("message->'params'->>'number' = $1", case.number)
    assert sorted((r["channel"], r["state"]) for r in rows) == sorted(
        [("odr_email", "delivered")] * 2 + [("odr_webhook", "delivered")] * 2 + [("acme_sms_gateway", "delivered")])
    assert len({r["idempotency_key"] for r in rows}) == len(rows)


async def test_channel_choice_is_validated_and_names_the_field(demo, client, channels):
    officer = await login(client, "js-officer")
    r = await client.put(f"/api/tenants/{T}/me/channels/odr_email", json={"enabled": True, "address": "not-an-address"},
                         headers=officer)
    assert r.status_code == 400 and "address" in r.text
    r = await client.put(f"/api/tenants/{T}/me/channels/acme_sms_gateway", json={"enabled": True, "address": "12345"},
                         headers=officer)
    assert r.status_code == 400 and "address" in r.text
    r = await client.put(f"/api/tenants/{T}/me/channels/odr_email", json={"enabled": True}, headers=officer)
    assert r.status_code == 400 and "address" in r.text
    r = await client.put(f"/api/tenants/{T}/me/channels/odr_webhook", json={"enabled": True, "address": "a@b.cn"},
                         headers=officer)
    assert r.status_code == 404  # the webhook is the bureau's, configured per node, not a personal choice
    r = await client.put(f"/api/tenants/{T}/me/channels/odr_email", json={"enabled": False}, headers=officer)
    assert r.status_code == 200 and r.json()["enabled"] is False


async def test_a_delivery_worker_stopped_while_sending_loses_nothing(demo, channels):
    """20 notifications to a slow webhook receiver; the first worker is stopped while requests are in
    flight (their outcome never recorded), a second one takes over after the lease: every delivery is
    delivered, the receiver saw every idempotency key, duplicates only of keys already seen."""
    slow = HttpReceiver(delay=0.5)
    try:
        await activate(demo, FENGJING, "odr_webhook", {"url": slow.url(), "secret": SECRET})
        marker = uuid.uuid4().hex[:10]
        async with tenant_transaction(T) as conn:
            await conn.execute(
                """INSERT INTO notifications (recipient, kind, payload)
                   SELECT 'node:' || $1, 'deadline_warning', jsonb_build_object('complaint_number', $2 || '-' || g)
                   FROM generate_series(1, 20) g""", FENGJING, marker)
        first = DeliveryWorker(demo, poll_seconds=0.1, retry_seconds=0.2, max_attempts=5, lease_seconds=1.5,
                               concurrency=4, name="d-first")
        first.start()
        # requests arrive and are answered only 0.5 s later: stopping now leaves them in hand
        await until(lambda: slow.arrivals(marker.encode()) > len(slow.received()), timeout=15, what="requests in flight")
        await first.stop(timeout=0.01)  # stops mid-send: leased rows stay pending
        leased = await deliveries("message->'params'->>'number' LIKE $1 AND state = 'pending' AND attempts > 0", marker + "-%")
        assert leased, "the first worker was stopped with deliveries in hand"
        second = DeliveryWorker(demo, poll_seconds=0.1, retry_seconds=0.2, max_attempts=5, lease_seconds=1.5,
                                concurrency=8, name="d-second")
        second.start()
        try:
            rows = await until(lambda: _all_delivered(marker), timeout=40, what="all 20 delivered after the restart")
        finally:
            await second.stop()
        keys = [r["headers"].get(IDEMPOTENCY_HEADER) for r in slow.received() if marker.encode() in r["body"]]
        assert set(keys) == {r["idempotency_key"] for r in rows} and len(rows) == 20
        print(f"\nrestart: 20 deliveries, {len(keys)} requests received, {len(keys) - len(set(keys))} duplicates "
              f"(same idempotency key), {len(leased)} leased when the first worker stopped, 0 lost")
    finally:
        slow.close()


async def test_odr_worker_killed_while_delivering_and_started_again_loses_nothing(demo, channels, pg_url, tmp_path):
    """The real ``odr worker`` process, SIGKILLed while requests to a slow webhook are in flight, then
    started again: every delivery ends delivered, the receiver saw every idempotency key; duplicates
    (at-least-once) are counted."""
    slow = HttpReceiver(delay=0.3)
    worker = None
    try:
        await activate(demo, FENGJING, "odr_webhook", {"url": slow.url(), "secret": SECRET})
        marker = uuid.uuid4().hex[:10]
        async with tenant_transaction(T) as conn:
            await conn.execute(
                """INSERT INTO notifications (recipient, kind, payload)
                   SELECT 'node:' || $1, 'deadline_breached', jsonb_build_object('complaint_number', $2 || '-' || g)
                   FROM generate_series(1, 20) g""", FENGJING, marker)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ODR_", "PYTEST_"))}
        env.update({"ODR_DATABASE_URL": pg_url, "ODR_DATA_DIR": str(tmp_path), "ODR_SECRET_KEY": "k" * 40,
                    "ODR_LOG_LEVEL": "WARNING", "ODR_DELIVERY_POLL_SECONDS": "0.1", "ODR_DELIVERY_LEASE_SECONDS": "2",
                    "ODR_DELIVERY_RETRY_SECONDS": "0.2", "ODR_TIMER_RECONCILE_SECONDS": "3600",
                    "ODR_OUTBOUND_ALLOW_HOSTS": demo.settings.outbound_allow_hosts})

        def start() -> subprocess.Popen:
            log = open(tmp_path / "worker.log", "ab")
            return subprocess.Popen([sys.executable, "-m", "odr.cli", "worker"], env=env, cwd=ROOT, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

        worker = start()
        await until(lambda: slow.arrivals(marker.encode()) >= 3 and slow.arrivals(marker.encode()) > len(slow.received()),
                    timeout=60, interval=0.01, what="the worker process delivering")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        before = await deliveries("message->'params'->>'number' LIKE $1", marker + "-%")
        in_hand = [r for r in before if r["state"] == "pending" and r["attempts"] > 0]
        assert len(before) == 20 and in_hand, "killed with deliveries in hand"
        worker = start()
        rows = await until(lambda: _all_delivered(marker), timeout=60, what="all 20 delivered after the restart")
        keys = [r["headers"].get(IDEMPOTENCY_HEADER) for r in slow.received() if marker.encode() in r["body"]]
        assert set(keys) == {r["idempotency_key"] for r in rows}
        print(f"\nodr worker SIGKILLed: 20 deliveries, {len(in_hand)} in hand at the kill, {len(keys)} requests "
              f"received, {len(keys) - len(set(keys))} duplicates (same idempotency key), 0 lost")
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(15)
        slow.close()


async def _all_delivered(marker: str):
    rows = await deliveries("message->'params'->>'number' LIKE $1", marker + "-%")
    return rows if len(rows) == 20 and all(r["state"] == "delivered" for r in rows) else None


# -- outbound events feed ------------------------------------------------------------------------
async def test_events_feed_never_skips_an_event_committed_late(demo, client, channels):
    admin = await login(client, "sh-admin")
    unit = await active_unit(T, JINSHAN)
    case = await make_complaint(demo, JINSHAN, unit["id"])
    first = (await client.get(f"/api/tenants/{T}/nodes/{JINSHAN}/events", params={"limit": 500}, headers=admin)).json()
    cursor = first["next"]
    while first["more"]:
        first = (await client.get(f"/api/tenants/{T}/nodes/{JINSHAN}/events", params={"after": cursor, "limit": 500},
                                  headers=admin)).json()
        cursor = first["next"]

    # B takes its transaction id first, A inserts an event (lower id), B inserts one (higher id) and commits
    a_inserted, release_a = asyncio.Event(), asyncio.Event()

    async def late_a():
        async with tenant_transaction(T) as conn:
            await conn.fetchval("SELECT pg_current_xact_id()")
            eid = await conn.fetchval(
                """INSERT INTO complaint_events (complaint_id, kind, actor_id, actor_role, node_code)
                   VALUES ($1, 'late_a', 'tests', 'system', $2) RETURNING id""", case.id, JINSHAN)
            a_inserted.set()
            await release_a.wait()
            return eid

    async with tenant_transaction(T) as b:
        await b.fetchval("SELECT pg_current_xact_id()")  # B's xid is older than A's
        task = asyncio.create_task(late_a(), context=contextvars.Context())  # its own transaction, not B's
        await a_inserted.wait()
        b_id = await b.fetchval(
            """INSERT INTO complaint_events (complaint_id, kind, actor_id, actor_role, node_code)
               VALUES ($1, 'early_b', 'tests', 'system', $2) RETURNING id""", case.id, JINSHAN)
    page = (await client.get(f"/api/tenants/{T}/nodes/{JINSHAN}/events", params={"after": cursor}, headers=admin)).json()
    kinds = [e["kind"] for e in page["events"]]
    assert "early_b" in kinds and "late_a" not in kinds  # A still runs: its event is not out yet
    release_a.set()
    a_id = await task
    assert a_id < b_id  # a naive "id > last id" cursor would now skip A's event
    later = (await client.get(f"/api/tenants/{T}/nodes/{JINSHAN}/events", params={"after": page["next"]},
                              headers=admin)).json()
    assert [e["kind"] for e in later["events"]] == ["late_a"]
    event = later["events"][0]
    assert event["complaint"]["number"] == case.number
    assert event["complaint"]["consumer_name"] == CONSUMER_NAME[0] + "***"
    assert event["complaint"]["consumer_phone"] == "137****1234"
    assert (await client.get(f"/api/tenants/{T}/nodes/{JINSHAN}/events", params={"after": "garbage"},
                             headers=admin)).status_code == 400
    # paging by 1 from the start of this case's events returns each exactly once
    seen, after = [], cursor
    while True:
        p = (await client.get(f"/api/tenants/{T}/nodes/{JINSHAN}/events", params={"after": after, "limit": 1},
                              headers=admin)).json()
        if not p["events"]:
            break
        seen += [e["id"] for e in p["events"]]
        after = p["next"]
    assert len(seen) == len(set(seen)) and {a_id, b_id} <= set(seen)
    # an office head of Pudong does not see Jinshan's feed
    pd_head = await login(client, "pd-office-head")
    assert (await client.get(f"/api/tenants/{T}/nodes/{JINSHAN}/events", headers=pd_head)).status_code == 404


async def test_event_subscription_delivers_the_subtrees_events_through_the_signed_webhook(demo, client, channels,
                                                                                          receivers, running):
    admin = await login(client, "sh-admin")
    r = await client.put(f"/api/tenants/{T}/nodes/{JINSHAN}/event-subscription", json={"start": "now"}, headers=admin)
    assert r.status_code == 200, r.text
    unit = await active_unit(T, JINSHAN)
    case = await make_complaint(demo, "310116-01", unit["id"])  # under Jinshan
    other = await make_complaint(demo, PUDONG, (await active_unit(T, PUDONG))["id"])

    def batches():
        out = []
        for req in receivers.hook.received():
            body = msgspec.json.decode(req["body"])
            if body["kind"] == "case_events":
                out.append((req, body))
        return out

    found = await until(lambda: [b for b in batches() if any(e["complaint"]["number"] == case.number
                                                            for e in b[1]["payload"]["events"])] or None,
                        timeout=20, what="a case-events batch")
    req, body = found[0]
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert verify_webhook(SECRET, headers[TIMESTAMP_HEADER.lower()], req["body"], headers[SIGNATURE_HEADER.lower()])
    events = [e for _, b in batches() for e in b["payload"]["events"]]
    assert not any(e["complaint"]["number"] == other.number for e in events)  # Pudong is not Jinshan's subtree
    no_personal_data(req["body"], masked=True)
    sub = (await client.get(f"/api/tenants/{T}/nodes/{JINSHAN}/event-subscription", headers=admin)).json()
    assert sub["active"] and sub["cursor"] != "0"
    r = await client.delete(f"/api/tenants/{T}/nodes/{JINSHAN}/event-subscription", headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False


# -- console ------------------------------------------------------------------------------------
async def test_console_channel_choices_and_the_dead_letter_list_with_retry(demo, channels):
    from odr.app import create_app
    from tests.console_helpers import TOKEN, signed_in

    app = create_app(demo, manage_lifecycle=False)
    officer = await signed_in(app, "js-officer")
    page = await officer.get("/ui/channels?lang=en")
    assert page.status_code == 200 and "E-mail address" in page.text and "Mobile phone" in page.text
    token = TOKEN.search(page.text).group(1)
    bad = await officer.post("/ui/channels/odr_email", data={"enabled": "on", "address": "nope", "_csrf_token": token})
    assert bad.status_code == 400 and "address" in bad.text and 'aria-invalid="true"' in bad.text
    ok = await officer.post("/ui/channels/odr_email", data={"enabled": "on", "address": "js@jinshan.example",
                                                            "_csrf_token": token})
    assert ok.status_code == 303
    assert "js@jinshan.example" in (await officer.get("/ui/channels")).text

    key = f"{T}:console-test:{uuid.uuid4().hex}"
    async with tenant_transaction(T) as conn:
        dead_id = await conn.fetchval(
            """INSERT INTO deliveries (idempotency_key, channel, node_code, recipient, address, kind, message, state,
                                       attempts, last_error, finished_at)
               VALUES ($1, 'odr_email', $2, 'account:x', 'someone@pd.example', 'deadline_breached',
                       '{"params": {"number": "DCONSOLE1"}}', 'dead', 3, 'SMTP 550', now()) RETURNING id""",
            key, PUDONG)
    admin = await signed_in(app, "sh-admin")
    listed = await admin.get("/ui/bureau/deliveries?lang=en")
    assert listed.status_code == 200 and "DCONSOLE1" in listed.text and "SMTP 550" in listed.text
    assert "someone@pd.example" not in listed.text and "s***@pd.example" in listed.text  # masked
    token = TOKEN.search(listed.text).group(1)
    r = await admin.post(f"/ui/bureau/deliveries/{dead_id}/retry", data={"_csrf_token": token})
    assert r.status_code == 303
    async with tenant_transaction(T) as conn:
        row = await conn.fetchrow("SELECT state, attempts FROM deliveries WHERE id = $1", dead_id)
        # leave nothing pending for other tests' workers
        await conn.execute("UPDATE deliveries SET state = 'skipped', finished_at = now() WHERE id = $1", dead_id)
    assert (row["state"], row["attempts"]) == ("pending", 0)
    specialist_view = await (await signed_in(app, "pd-office-head")).get("/ui/bureau/deliveries")
    assert "DCONSOLE1" not in specialist_view.text  # 310115-01 does not cover 310115's deliveries


# -- write-only secrets in a channel's configuration ---------------------------------------------
ZHUJING = "310116-01"
FIRST_SECRET = "zhujing-first-webhook-secret"
SECOND_SECRET = "zhujing-second-webhook-secret"


async def _signed_request(receiver: HttpReceiver, node: str) -> tuple[str, bytes, str]:
    """(timestamp, body, signature) of the webhook request that carries a new notification to ``node``."""
    marker = f"S{uuid.uuid4().hex[:10]}"
    async with tenant_transaction(T) as conn:
        await conn.execute("""INSERT INTO notifications (recipient, kind, payload)
                              VALUES ('node:' || $1, 'deadline_warning', jsonb_build_object('complaint_number', $2::text))""",
                           node, marker)
    got = await until(lambda: [r for r in receiver.received() if marker.encode() in r["body"]] or None, timeout=20,
                      what="the webhook request")
    headers = {k.lower(): v for k, v in got[0]["headers"].items()}
    return headers[TIMESTAMP_HEADER.lower()], got[0]["body"], headers[SIGNATURE_HEADER.lower()]


async def _stored_config(node: str) -> dict:
    async with platform_transaction() as conn:
        raw = await conn.fetchval("SELECT config FROM odr.plugin_activations WHERE tenant=$1 AND node_code=$2"
                                  " AND plugin='odr_webhook'", T, node)
    return msgspec.json.decode(raw)


async def test_a_webhook_secret_is_write_only_and_signs_until_it_is_replaced(demo, client, channels, running):
    """Set through the API, the secret is never read back (API as every bureau role that may read the
    node, audit, OpenAPI, console form); saves without it, or with the configuration as read back,
    keep signing with it; a new one (console) signs instead; cleared, it is empty; no audit row holds it."""
    from odr.app import create_app
    from odr_plugin_api import SECRET_MASK
    from tests.console_helpers import TOKEN, signed_in

    hook = HttpReceiver()
    url = f"/api/tenants/{T}/policy/{ZHUJING}"
    officer = await login(client, "js-officer")

    def webhook(answer) -> dict:
        return next(c for c in answer.json()["choices"] if c["plugin"] == "odr_webhook")

    try:
        r = await client.put(f"{url}/plugins/odr_webhook", json={"active": True, "config": {
            "url": hook.url(), "secret": FIRST_SECRET}}, headers=officer)
        assert r.status_code == 200 and FIRST_SECRET not in r.text, r.text
        for who in ("sh-admin", "js-officer", "js-office-head"):  # every role that reads this node's policy
            headers = await login(client, who)
            r = await client.get(url, headers=headers)
            assert r.status_code == 200 and FIRST_SECRET not in r.text
            assert webhook(r)["config"]["secret"] == SECRET_MASK and webhook(r)["secrets"] == ["secret"]
            assert webhook(r)["source"] == ZHUJING
            audit = await client.get(f"{url}/audit", headers=headers)
            assert audit.status_code == 200 and FIRST_SECRET not in audit.text
        assert (await client.get(url, headers=await login(client, "sh-consumer"))).status_code in (403, 404)
        openapi = (await client.get("/schema/openapi.json")).text
        assert "are never shown" in openapi and "keeps the value in force" in openapi
        assert verify_webhook(FIRST_SECRET, *await _signed_request(hook, ZHUJING))

        # saved without the secret, then with the configuration as read back (masked): kept
        r = await client.put(f"{url}/plugins/odr_webhook", json={"active": True, "config": {
            "url": hook.url(), "timeout_seconds": 5}}, headers=officer)
        assert r.status_code == 200 and webhook(r)["config"]["timeout_seconds"] == 5
        as_read = {**webhook(r)["config"], "kinds": ["deadline_warning"]}
        r = await client.put(f"{url}/plugins/odr_webhook", json={"active": True, "config": as_read}, headers=officer)
        assert r.status_code == 200 and webhook(r)["config"]["secret"] == SECRET_MASK
        assert (await _stored_config(ZHUJING))["secret"] == FIRST_SECRET
        assert verify_webhook(FIRST_SECRET, *await _signed_request(hook, ZHUJING))
        r = await client.put(f"{url}/plugins/odr_webhook", json={"active": True, "config": {"secret": "x" * 201}},
                             headers=officer)
        assert r.status_code == 400 and "config.secret" in r.text and "x" * 201 not in r.text

        # the console: neither the form nor the read-only view holds it; empty keeps, a new one replaces
        app = create_app(demo, manage_lifecycle=False)
        head_page = await (await signed_in(app, "js-office-head")).get(f"/ui/policy?node={ZHUJING}")
        assert head_page.status_code == 200 and FIRST_SECRET not in head_page.text and SECRET_MASK in head_page.text
        console = await signed_in(app, "js-officer")
        page = await console.get(f"/ui/policy?node={ZHUJING}")
        assert page.status_code == 200 and FIRST_SECRET not in page.text
        assert 'type="password" name="cfg.secret"' in page.text and 'data-secret="set"' in page.text
        form = {"_csrf_token": TOKEN.search(page.text).group(1), "active": "on", "cfg.url": hook.url(),
                "cfg.secret": "", "cfg.timeout_seconds": "4", "cfg.kinds": ""}
        action = f"/ui/policy/{ZHUJING}/plugins/odr_webhook"
        assert (await console.post(action, data=form)).status_code == 303
        stored = await _stored_config(ZHUJING)
        assert stored["secret"] == FIRST_SECRET and stored["timeout_seconds"] == 4
        refused = await console.post(action, data={**form, "cfg.secret": SECOND_SECRET, "cfg.url": "ftp://nope"})
        assert refused.status_code == 400 and 'id="cfg-odr_webhook-url-err"' in refused.text
        assert SECOND_SECRET not in refused.text and (await _stored_config(ZHUJING))["secret"] == FIRST_SECRET
        assert (await console.post(action, data={**form, "cfg.secret": SECOND_SECRET})).status_code == 303
        signed = await _signed_request(hook, ZHUJING)
        assert verify_webhook(SECOND_SECRET, *signed) and not verify_webhook(FIRST_SECRET, *signed)

        # cleared with the form's checkbox
        assert (await console.post(action, data={**form, "cfg.secret.clear": "on"})).status_code == 303
        assert (await _stored_config(ZHUJING))["secret"] == ""
        assert webhook(await client.get(url, headers=officer))["config"]["secret"] == ""

        # the audit: no row holds either secret; the three changes of it are named
        async with platform_transaction() as conn:
            rows = await conn.fetch("SELECT old::text AS old, new::text AS new FROM odr.plugin_activation_audit"
                                    " WHERE tenant=$1 AND plugin='odr_webhook'", T)
        assert rows and not any(s in (r["old"] or "") + r["new"] for r in rows for s in (FIRST_SECRET, SECOND_SECRET))
        audit = (await client.get(f"{url}/audit", headers=officer)).json()
        changed = [a for a in audit if a["node_code"] == ZHUJING and a["plugin"] == "odr_webhook"
                   and a["new"].get("secrets_changed") == ["secret"]]
        assert len(changed) == 3, audit[:8]
    finally:
        await activate(demo, ZHUJING, "odr_webhook", None, active=False)
        hook.close()


LEGACY_SECRET = "legacy-audited-webhook-secret"


async def test_secrets_audited_before_they_were_write_only_are_masked_on_reading_and_by_migration_0003(client, pg_url):
    import asyncpg

    from core.db.shared_migrations.m0003_audit_secrets import mask_statements

    legacy = msgspec.json.encode({"active": True, "config": {"url": "http://127.0.0.1:9/old", "secret": LEGACY_SECRET}}).decode()
    conn = await asyncpg.connect(pg_url)
    try:
        row_id = await conn.fetchval(
            "INSERT INTO odr.plugin_activation_audit (tenant, node_code, plugin, actor, old, new)"
            " VALUES ($1, $2, 'odr_webhook', 'before-0003', $3::jsonb, $3::jsonb) RETURNING id", T, PUDONG, legacy)
        audit = await client.get(f"/api/tenants/{T}/policy/{PUDONG}/audit", headers=await login(client, "sh-admin"))
        assert audit.status_code == 200 and "before-0003" in audit.text and LEGACY_SECRET not in audit.text
        async with conn.transaction():
            await conn.execute("SET LOCAL search_path = odr")
            for _ in range(2):  # idempotent
                for statement in mask_statements():
                    await conn.execute(statement)
        row = await conn.fetchrow("SELECT old::text AS old, new::text AS new FROM odr.plugin_activation_audit WHERE id = $1",
                                  row_id)
        for state in (msgspec.json.decode(row["old"]), msgspec.json.decode(row["new"])):
            assert state["config"] == {"url": "http://127.0.0.1:9/old", "secret": "********"}
    finally:
        await conn.execute("DELETE FROM odr.plugin_activation_audit WHERE actor = 'before-0003'")
        await conn.close()
