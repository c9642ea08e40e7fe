"""Plugins as untrusted code (issue 24): each implementation sees only its own configuration; a plugin
from outside the platform's distributions runs in an isolated worker process with no credentials, no
network (policy families), memory limits and a time budget, and is killed and restarted when it
overruns or dies; repeated failures open a per-plugin, per-node circuit breaker.

The misbehaving example vendor plugin (plugins/vendor-examples/acme-misbehaving-policy) misbehaves as
its configuration says; every test uses a real PluginHost, real worker processes, real sockets and the
real PostgreSQL of the test session.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import msgspec
import pytest

from core.deadlines.service import ComplaintDeadlines
from core.pluginhost.activations import Activation, effective_policy, make_scope
from core.pluginhost.host import PluginHost
from core.pluginhost.limits import PluginLimits
from odr_plugin_api import DeadlineRequest

ROOT = Path(__file__).resolve().parent.parent
MISBEHAVING_DIR = ROOT / "plugins" / "vendor-examples" / "acme-misbehaving-policy"
NAME = "acme_misbehaving_policy"
NODE_PATH = ("990000", "990100")
BUDGET_MS = 1000.0
"""The budget in these tests: generous, so that a well-behaved call never overruns on a loaded 2-core
machine, while the misbehaving ones (60 s sleeps, endless loops) always do."""
SLACK = 1.5  # seconds beyond the budget for a loaded 2-core machine (a worker start included)
OVERRAN = f"overran its {BUDGET_MS:.0f} ms budget"


@pytest.fixture(scope="module")
def misbehaving():
    sys.path.insert(0, str(MISBEHAVING_DIR))
    import acme_misbehaving_policy

    yield acme_misbehaving_policy
    sys.path.remove(str(MISBEHAVING_DIR))
    sys.modules.pop("acme_misbehaving_policy", None)


def make_host(misbehaving, *, isolated: bool, **limits) -> PluginHost:
    host = PluginHost("builtin", limits=PluginLimits(budget_ms=BUDGET_MS, **limits))
    host.load_entry_points()
    host.register(misbehaving, name=NAME, isolate=NAME if isolated else None)
    return host


@pytest.fixture
def isolated_host(misbehaving):
    host = make_host(misbehaving, isolated=True)
    yield host
    host.close()


def scope_with(host: PluginHost, node_path=NODE_PATH, **config):
    """The node scope as the platform builds it: the misbehaving plugin configured with ``config``
    and the e-mail channel active with a secret password, both at the node."""
    activations = [
        Activation(node_code=node_path[-1], plugin=NAME, active=True, config={"api_key": "own-key", **config}),
        Activation(node_code=node_path[-1], plugin="odr_email", active=True,
                   config={"host": "smtp.example.invalid", "password": "email-secret-pw"}),
    ]
    policy = effective_policy(host, "t_iso", node_path, activations)
    return make_scope(host, policy), policy.active


def decide(host: PluginHost, node_path=NODE_PATH, **config):
    scope, active = scope_with(host, node_path, **config)
    started = time.monotonic()
    plan, who = host.call_first("odr_deadline_policy", active=active, scope=scope,
                                request=DeadlineRequest(start=dt.datetime(2026, 5, 6, 10, tzinfo=dt.timezone.utc)))
    return plan, who, time.monotonic() - started


def observed(plan) -> dict:
    assert plan.legal_basis.startswith("observed: "), plan
    return json.loads(plan.legal_basis.removeprefix("observed: "))


def wait_for(predicate, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# -- least privilege -------------------------------------------------------------------------------
@pytest.mark.parametrize("isolated", [False, True], ids=["in_process", "isolated"])
def test_a_plugin_sees_only_its_own_configuration(misbehaving, isolated):
    host = make_host(misbehaving, isolated=isolated)
    try:
        scope, _ = scope_with(host, mode="other_config")
        assert scope.config("odr_email").password == "email-secret-pw"  # the host's node scope has it
        plan, who, _ = decide(host, mode="other_config")
        assert who == NAME
        seen = observed(plan)
        assert seen["configs"] == [NAME] and seen["own_api_key"] == "own-key"
        assert seen["email"] is None and seen["sms"] is None
        assert "email-secret-pw" not in plan.legal_basis
    finally:
        host.close()


# -- isolated worker: what it sees -------------------------------------------------------------------
def test_the_isolated_worker_has_no_credentials_in_its_environment(isolated_host, monkeypatch):
    monkeypatch.setenv("ODR_DATABASE_URL", "postgresql://odr_app:db-password@127.0.0.1:5432/odr")
    monkeypatch.setenv("ODR_SECRET_KEY", "jwt-signing-secret")
    monkeypatch.setenv("PGPASSWORD", "db-password")
    plan, who, _ = decide(isolated_host, mode="environ")
    assert who == NAME
    seen = observed(plan)
    assert seen["suspicious"] == [] and set(seen["keys"]) <= {"PATH", "LANG", "HOME", "TMPDIR"}, seen
    assert isolated_host.workers[NAME].pid != os.getpid()


def test_the_isolated_worker_cannot_reach_the_database_socket(isolated_host, pg_url):
    parsed = urlparse(pg_url)
    socket_dir = parse_qs(parsed.query).get("host", [parsed.hostname or ""])[0]
    assert socket_dir.startswith("/"), f"the test database is not on a Unix socket: {pg_url}"
    path = str(Path(socket_dir) / f".s.PGSQL.{parsed.port or 5432}")
    with socket.socket(socket.AF_UNIX) as s:  # this process can: the socket is live
        s.connect(path)
    plan, who, _ = decide(isolated_host, mode="connect", target=path)
    assert who == NAME
    assert observed(plan)["connect"] != "connected", observed(plan)


def test_the_isolated_policy_worker_cannot_reach_the_loopback_network(isolated_host):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        port = server.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # this process can
        plan, who, _ = decide(isolated_host, mode="connect", target=f"127.0.0.1:{port}")
        assert who == NAME
        assert observed(plan)["connect"] != "connected", observed(plan)
        ready = isolated_host.workers[NAME].ready
        assert "seccomp" in ready.limits, ready  # socket() refused: no TCP, no Unix socket
        if os.geteuid() == 0:  # a network namespace needs root (or CAP_SYS_ADMIN)
            assert ready.missing == [], ready
        else:  # without it the worker says so, and the seccomp filter alone keeps it off the network
            assert ready.missing == ["netns: EPERM"], ready
    finally:
        server.close()


# -- isolated worker: budget, limits, restart ---------------------------------------------------------
@pytest.mark.parametrize("mode", ["sleep", "spin"])
def test_a_plugin_overrunning_its_budget_is_killed_the_default_decides_and_the_worker_restarts(isolated_host, mode):
    plan, who, _ = decide(isolated_host, mode="behave")  # started, answering
    assert who == NAME
    worker = isolated_host.workers[NAME]
    first_pid = worker.pid
    plan, who, took = decide(isolated_host, mode=mode)
    assert who == "odr_national_deadline" and (plan.contact_days, plan.close_days) == (3, 10)
    assert took < BUDGET_MS / 1000 + SLACK, took
    assert worker.kills == 1
    assert wait_for(lambda: worker.pid is not None and worker.pid != first_pid), "the worker was not restarted"
    health = isolated_host.health.get(NAME, "t_iso", NODE_PATH[-1])
    assert health.overruns == 1 and health.failures == 0 and OVERRAN in health.reason
    assert isolated_host.failures[(NAME, "odr_deadline_policy")] == 1
    plan, who, _ = decide(isolated_host, mode="behave")  # the new worker answers
    assert who == NAME and plan.contact_days == 2


def test_a_plugin_allocating_4_gb_hits_its_memory_limit_and_the_default_decides(isolated_host):
    plan, who, took = decide(isolated_host, mode="allocate", allocate_gb=4.0)
    assert who == "odr_national_deadline"
    assert took < BUDGET_MS / 1000 + SLACK
    health = isolated_host.health.get(NAME, "t_iso", NODE_PATH[-1])
    assert health.failures == 1 and health.reason == "odr_deadline_policy raised MemoryError", health
    plan, who, _ = decide(isolated_host, mode="allocate", allocate_gb=0.1)  # within its limit: fine
    assert who == NAME and observed(plan)["allocated"] == int(0.1 * 1024 ** 3)


def test_a_dying_worker_is_restarted_and_a_raising_plugin_logs_no_personal_data(isolated_host, caplog):
    plan, who, _ = decide(isolated_host, mode="behave")
    worker = isolated_host.workers[NAME]
    first_pid = worker.pid
    with caplog.at_level(logging.INFO):
        plan, who, _ = decide(isolated_host, mode="exit")
        assert who == "odr_national_deadline"
        assert wait_for(lambda: worker.pid is not None and worker.pid != first_pid)
        plan, who, _ = decide(isolated_host, mode="raise")
        assert who == "odr_national_deadline"
    assert "the isolated worker died" in caplog.text and "raised RuntimeError" in caplog.text
    assert "13800138000" not in caplog.text


# -- circuit breaker ------------------------------------------------------------------------------------
def test_repeated_failures_open_the_breaker_at_that_node_only_and_it_resets_after_the_cool_down(misbehaving):
    host = make_host(misbehaving, isolated=True, breaker_failures=3, breaker_window_seconds=60,
                     breaker_cooldown_seconds=1.0)
    other = ("990000", "990200")
    try:
        for _ in range(3):
            assert decide(host, mode="raise")[1] == "odr_national_deadline"
        health = host.health.get(NAME, "t_iso", NODE_PATH[-1])
        assert health.breaker == "open" and health.failures == 3 and health.reason == "odr_deadline_policy raised RuntimeError"
        # open: not called at all, even when it would behave; the other node still calls it
        assert decide(host, mode="behave")[1] == "odr_national_deadline"
        assert host.failures[(NAME, "odr_deadline_policy")] == 3
        assert decide(host, other, mode="behave")[1] == NAME
        time.sleep(1.1)
        assert host.health.get(NAME, "t_iso", NODE_PATH[-1]).breaker == "half_open"
        assert decide(host, mode="raise")[1] == "odr_national_deadline"  # the trial fails: open again
        assert host.health.get(NAME, "t_iso", NODE_PATH[-1]).breaker == "open"
        time.sleep(1.1)
        assert decide(host, mode="behave")[1] == NAME  # the trial answers: closed
        assert host.health.get(NAME, "t_iso", NODE_PATH[-1]).breaker == "closed"
    finally:
        host.close()


def test_a_built_in_default_is_never_skipped_by_its_breaker():
    host = PluginHost("builtin", limits=PluginLimits(breaker_failures=1))
    host.load_entry_points()
    try:
        host.health.failed("odr_national_deadline", "t_iso", NODE_PATH[-1], reason="test")
        assert host.health.get("odr_national_deadline", "t_iso", NODE_PATH[-1]).breaker == "open"
        scope, active = scope_with_defaults(host)
        plan, who = host.call_first("odr_deadline_policy", active=active, scope=scope,
                                    request=DeadlineRequest(start=dt.datetime(2026, 5, 6, 10)))
        assert who == "odr_national_deadline"
    finally:
        host.close()


def scope_with_defaults(host):
    policy = effective_policy(host, "t_iso", NODE_PATH, [])
    return make_scope(host, policy), policy.active


# -- which plugins run isolated ---------------------------------------------------------------------
def test_plugins_from_outside_run_isolated_unless_the_operator_trusts_them(tmp_path, monkeypatch):
    dists = tmp_path / "dists"
    info = dists / "acme_misbehaving_policy-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-misbehaving-policy\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[odr.plugins]\n{NAME} = acme_misbehaving_policy\n")
    monkeypatch.syspath_prepend(str(MISBEHAVING_DIR))
    monkeypatch.syspath_prepend(str(dists))
    for trusted, isolated in (("", True), (NAME, False), ("acme-misbehaving-policy", False)):
        host = PluginHost(f"builtin,{NAME}", trusted=trusted)
        host.load_entry_points()
        try:
            assert host.discovered[NAME].loaded and host.discovered[NAME].isolated is isolated
            assert (NAME in host.workers) is isolated
            assert not host.discovered["odr_national_deadline"].isolated and "odr_national_deadline" not in host.workers
        finally:
            host.close()


# -- on the running platform --------------------------------------------------------------------------
DISTRICT = "310115"


@pytest.fixture
async def misbehaving_at_district(demo, misbehaving):
    """The misbehaving plugin installed as a vendor's (isolated) on the running platform; the test
    activates it at Shanghai's district 310115 (no other deadline policy there)."""
    from core.db.engine import platform_transaction

    limits = demo.host.limits
    demo.host.limits = demo.host.health.limits = msgspec.structs.replace(limits, budget_ms=BUDGET_MS)
    demo.host.register(misbehaving, name=NAME, isolate=NAME)
    yield demo.host.workers[NAME]
    demo.host.unregister(NAME)
    demo.host.limits = demo.host.health.limits = limits
    async with platform_transaction() as conn:
        await conn.execute("DELETE FROM odr.plugin_activations WHERE plugin = $1", NAME)
    demo.forget_activations("shanghai")


async def configure(client, config: dict) -> None:
    from tests.conftest import login

    r = await client.put(f"/api/tenants/shanghai/policy/{DISTRICT}/plugins/{NAME}", json={"active": True, "config": config},
                         headers=await login(client, "sh-admin"))
    assert r.status_code == 200, r.text


async def turn_bad(demo, config: dict) -> None:
    """The plugin's stored configuration at the district becomes ``config`` without passing the
    activation's trial (as when a vendor's new release starts misbehaving)."""
    from benchmarks.plugin_isolation import store_config_behind_trial
    from core.db.engine import platform_transaction

    async with platform_transaction() as conn:
        changed = await store_config_behind_trial(conn, "shanghai", DISTRICT, NAME, config)
    assert changed == "UPDATE 1"
    demo.forget_activations("shanghai")


async def file_complaint(client, unit, cons) -> tuple[dict, float]:
    started = time.monotonic()
    r = await client.post("/api/tenants/shanghai/complaints", headers=cons, json={
        "company_name": "某电商公司", "credit_code": unit["credit_code"], "subject": "网购商品质量问题",
        "description": "收到的电饭煲无法加热。", "consumer_name": "王五", "consumer_phone": "13900001111",
        "consumer_address": "上海市徐汇区某路2号", "amount_claimed": 99.0, "category": "家用电器", "route": "odr"})
    took = time.monotonic() - started
    assert r.status_code == 201, r.text
    return r.json()["complaint"], took


async def test_complaints_at_a_district_with_a_misbehaving_plugin_are_filed_within_budget(client, demo, misbehaving_at_district):
    from odr.app import create_app

    from tests.complaint_helpers import active_unit, consumer
    from tests.conftest import login
    from tests.console_helpers import signed_in

    worker = misbehaving_at_district
    unit = await active_unit("shanghai", DISTRICT)
    cons = await login(client, await consumer(client, "shanghai"), "demo12315-pw")
    await configure(client, {"mode": "behave"})
    complaint, _ = await file_complaint(client, unit, cons)
    assert complaint["deadline_policy"] == NAME  # it decides while it behaves
    first_pid = worker.pid

    # Activation tries a plugin once (issue 27), so a plugin that sleeps from the start is refused
    # there; the threat here is the one that passed that trial and turns bad afterwards (a new release,
    # a condition met later): its stored configuration is changed behind the trial's back.
    r = await client.put(f"/api/tenants/shanghai/policy/{DISTRICT}/plugins/{NAME}",
                         json={"active": True, "config": {"mode": "sleep", "sleep_seconds": 60}},
                         headers=await login(client, "sh-admin"))
    assert r.status_code == 422 and "PluginOverrun" in r.json()["detail"], r.text
    await turn_bad(demo, {"mode": "sleep", "sleep_seconds": 60})
    for _ in range(demo.host.limits.breaker_failures + 1):
        complaint, took = await file_complaint(client, unit, cons)
        assert complaint["deadline_policy"] == "odr_national_deadline"  # the default decided
        assert took < BUDGET_MS / 1000 + SLACK, took
    assert worker.kills >= 1
    assert wait_for(lambda: worker.pid is not None and worker.pid != first_pid), "the worker was not restarted"

    r = await client.get(f"/api/tenants/shanghai/policy/{DISTRICT}", headers=await login(client, "sh-admin"))
    health = [h for h in r.json()["health"] if h["plugin"] == NAME]
    assert health and health[0]["breaker"] == "open" and health[0]["overruns"] >= demo.host.limits.breaker_failures
    assert OVERRAN in health[0]["reason"] and health[0]["open_until"]
    page = await (await signed_in(create_app(demo, manage_lifecycle=False), "sh-admin")).get(f"/ui/policy?node={DISTRICT}")
    assert page.status_code == 200
    assert 'id="plugin-health"' in page.text and f'data-plugin="{NAME}" data-breaker="open"' in page.text
    assert OVERRAN in page.text
    r = await client.get("/health")
    status = next(p for p in r.json()["plugin_health"] if p["plugin"] == NAME)
    assert status["isolated"] and status["worker_starts"] >= 2 and status["open_breakers"] >= 1


async def test_through_the_platform_the_isolated_plugin_sees_no_credentials_nor_other_configuration(
        client, demo, misbehaving_at_district, monkeypatch):
    from tests.complaint_helpers import active_unit, consumer
    from tests.conftest import login

    monkeypatch.setenv("ODR_SECRET_KEY", "jwt-signing-secret")
    monkeypatch.setenv("ODR_DATABASE_URL", demo.settings.database_url or "postgresql://x:pw@127.0.0.1/odr")
    unit = await active_unit("shanghai", DISTRICT)
    cons = await login(client, await consumer(client, "shanghai"), "demo12315-pw")
    r = await client.put(f"/api/tenants/shanghai/policy/{DISTRICT}/plugins/odr_email",
                         json={"active": True, "config": {"password": "email-secret-pw"}}, headers=await login(client, "sh-admin"))
    assert r.status_code == 200, r.text
    try:
        seen = {}
        for mode in ("environ", "other_config"):
            await configure(client, {"mode": mode})
            complaint, _ = await file_complaint(client, unit, cons)
            assert complaint["deadline_policy"] == NAME
            r = await client.get(f"/api/tenants/shanghai/deadlines/explain?node={DISTRICT}&start=2026-05-06T10:00:00%2B08:00",
                                 headers=await login(client, "sh-admin"))
            assert r.status_code == 200, r.text
            assert "email-secret-pw" not in r.text and "jwt-signing-secret" not in r.text
            seen[mode] = observed(msgspec.convert(r.json(), ComplaintDeadlines).contact)
        assert seen["environ"]["suspicious"] == [] and set(seen["environ"]["keys"]) <= {"PATH", "LANG", "HOME", "TMPDIR"}
        assert seen["other_config"]["configs"] == [NAME] and seen["other_config"]["email"] is None
    finally:
        await client.put(f"/api/tenants/shanghai/policy/{DISTRICT}/plugins/odr_email", json={"active": False},
                         headers=await login(client, "sh-admin"))


def test_a_batch_crosses_to_the_worker_once_and_falls_back_per_call(isolated_host):
    scope, active = scope_with(isolated_host, mode="behave")
    starts = [dt.datetime(2026, 5, d, 10, tzinfo=dt.timezone.utc) for d in range(1, 29)]
    decide(isolated_host, mode="behave")  # the worker is started
    before = isolated_host.workers[NAME].round_trips
    answers = isolated_host.first_batch("odr_deadline_policy", active=active, scope=scope,
                                        calls=[{"request": DeadlineRequest(start=s)} for s in starts])
    assert [who for _, who in answers] == [NAME] * len(starts)
    assert isolated_host.workers[NAME].round_trips == before + 1
    scope, active = scope_with(isolated_host, mode="raise")
    answers = isolated_host.first_batch("odr_deadline_policy", active=active, scope=scope,
                                        calls=[{"request": DeadlineRequest(start=s)} for s in starts[:3]])
    assert [who for _, who in answers] == ["odr_national_deadline"] * 3


def test_a_trusted_plugin_overrunning_its_budget_is_measured_and_shown_but_its_answer_stands(misbehaving, caplog):
    host = make_host(misbehaving, isolated=False, breaker_failures=1)
    try:
        with caplog.at_level(logging.WARNING):
            plan, who, took = decide(host, mode="sleep", sleep_seconds=BUDGET_MS / 1000 + 0.05)
        assert who == NAME and took >= BUDGET_MS / 1000  # in-process code cannot be pre-empted: its answer is used
        health = host.health.get(NAME, "t_iso", NODE_PATH[-1])
        assert health.overruns == 1 and health.breaker == "closed" and "in-process: answer kept" in health.reason
        assert host.failures[(NAME, "odr_deadline_policy")] == 0
        assert f"plugin {NAME} at t_iso/{NODE_PATH[-1]}: odr_deadline_policy {OVERRAN}" in caplog.text
    finally:
        host.close()
