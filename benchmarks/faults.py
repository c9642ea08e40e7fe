"""Fault benchmark (issue 12): what intake does when its parts fail, counted from the data.

  .venv/bin/python benchmarks/faults.py                  # full run: 32 clients, 60 s per scenario
  .venv/bin/python benchmarks/faults.py --tiny           # seconds; used by the test suite
  .venv/bin/python benchmarks/faults.py --scenario pg-restart --json

Every scenario runs a real platform (``odr serve``, granian, one worker) on its own embedded PostgreSQL
in a temporary directory, with clients filing complaints through the HTTP API, each complaint under its
own idempotency key, repeated after every failure (honouring ``Retry-After``) until it is acknowledged
(201/200) or the scenario's time is up. Then the tenant's tables are read directly:

- ``lost``: acknowledged keys with no complaint; ``duplicated``: keys with more than one complaint;
- ``half-written``: complaints of the run missing their event, timers, notification or facts row
  (an intake is one transaction: all of them or nothing);
- ``recovery``: seconds from the fault's end to the first acknowledged intake.

Scenarios:
  pg-restart  PostgreSQL stopped with ``pg_ctl -m immediate`` under load and started again after
              ``--down`` seconds. While it is away the API must answer 503 with Retry-After (never
              500) and ``/health`` 503 ``database: down``; the same web process recovers by itself.
  kill-web    the web server (granian and its worker) killed with SIGKILL under load, a new one started.
  kill-timer  with two timer workers, the contact deadlines and warnings of every complaint filed so far
              are made due at once, and one worker is SIGKILLed while they fire, then started again:
              every one fires exactly once (one event per timer id), none is left unfired.
  overload    the sustainable intake rate measured first (``--calibrate`` s, closed loop over ``--clients``
              connections), then ``--overload-factor`` (10) x that rate offered open-loop (a paced arrival
              schedule, one new complaint per arrival, sent once whatever the answer) by
              ``--client-processes`` processes (benchmarks/overload_client.py) for ``--seconds``, against the
              platform's back-pressure settings (its defaults unless ``--queue-max``, ``--max-wait-ms``,
              ``--max-inflight`` say otherwise): beyond them the server answers 503 with Retry-After,
              nothing written, so the latency of what is acknowledged and of the refusals stays bounded and
              memory flat; then a normal load shows full recovery. With two or more CPUs the server side
              (web server, PostgreSQL) and the load generator are pinned to separate CPUs (``--cpus``), so
              that the generator can offer ten times what the server sustains without taking its CPU.
              Prints the rates, the ratio actually sent, the rate acknowledged during the overload and the
              CPU the server side used.
  valkey-down Valkey (rate limits, live notifications, the timer queue) killed under load, with two
              timer workers running; while it is away, contact deadlines and their warnings of filed
              complaints are made due (their rows' due moments moved to now: PostgreSQL is the record).
              Intake must keep >= 99 % of its answers 2xx; when Valkey returns (empty), every timer made
              due fires exactly once (one event per timer id), none twice across the workers.

  pgbouncer   tenant isolation through pgbouncer in transaction mode (``benchmarks/fault_pgbouncer.py``):
              two web workers, three provinces interleaved, ``--requests`` requests of several roles,
              rollbacks, savepoint errors, failed commits and session settings leaked at commit injected
              inside tenant transactions by triggers; rows in the wrong schema and reads of another
              province's data counted from the data; once per statement-cache setting.
  noisy-neighbour  one province (Shanghai) uploads, previews and dry-runs import bombs, floods sign-ups
              and logins and runs an evaluation while another (Fujian) files at its usual pace
              (``--noisy-rate``/s for ``--seconds``, once quiet, once noisy; ``benchmarks/fault_noisy.py``):
              Fujian's latency quiet and noisy, ``/health`` meanwhile, the web worker's peak RSS, every
              bomb's answer and time, what is half-written.

Prints one table of figures per scenario; ``--json`` prints them as JSON (the tests read that).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fault_overload import (  # noqa: E402
    BYSTANDER, calibrate_rate, cpu_split, overload, overload_report, prepare_bystander)
from benchmarks.fault_processes import Postgres, Valkey, Web  # noqa: E402
from benchmarks.intake import prepare  # noqa: E402
SCENARIOS = ["pg-restart", "kill-web", "kill-timer", "valkey-down", "overload", "pgbouncer", "noisy-neighbour"]


class Figures(msgspec.Struct, kw_only=True):
    scenario: str
    clients: int
    seconds: float
    sent: int = 0
    """distinct complaints (idempotency keys) submitted"""
    requests: int = 0
    """HTTP attempts, repeats included"""
    acknowledged: int = 0
    lost: int = 0
    duplicated: int = 0
    half_written: int = 0
    present: int = 0
    """complaints of the run in the database"""
    unacknowledged_present: int = 0
    """never acknowledged to the client, but complete in the database (the commit won, the answer was lost)"""
    errors: dict[str, int] = {}
    retry_after_missing: int = 0
    """503 answers without Retry-After"""
    health_during_fault: dict[str, int] = {}
    recovery_seconds: float | None = None
    web_restarted: bool = False
    intake_success: float | None = None
    """share of HTTP answers that were 2xx (connection errors count as failures)"""
    timers_due_in_fault: int = 0
    timers_fired: int = 0
    """of those, fired (their row's fired_at set) by the end"""
    timers_fired_twice: int = 0
    """timer ids with more than one event"""
    timers_fire_seconds: float | None = None
    """from the fault's end until the last of them fired"""
    latency_ms: dict[str, float] = {}
    """acknowledged answers: p50, p99, max (ms)"""
    server_rss_mb: float | None = None
    """the web worker's largest resident memory seen"""
    after_success: float | None = None
    """overload: 2xx share of a normal load right after it"""
    server_errors: int = 0
    """ERROR lines and tracebacks in the web server's log"""
    sustainable_rate: float | None = None
    """overload: intakes acknowledged per second by a short closed-loop run (``clients`` clients)"""
    offered_rate: float | None = None
    """overload: the open-loop arrival rate asked for (``--overload-factor`` x the sustainable rate)"""
    achieved_rate: float | None = None
    """overload: complaints actually sent per second by the open-loop client processes"""
    client_processes: int = 0
    answers: dict[str, int] = {}
    """overload: answers of the open-loop phase by status"""
    not_offered: int = 0
    """overload: arrivals the clients could not send (no free connection within their limit)"""
    client_lag_p99_ms: float | None = None
    """overload: how late the client processes sent, behind their schedule (99th percentile of the worst process)"""
    server_settings: dict[str, str] = {}
    pinning: str = ""
    """overload: which CPUs the server side and the clients ran on (``--cpus``)"""
    calibration_latency_ms: dict[str, float] = {}
    """overload: latency of the closed-loop measurement (p50, p99, max)"""
    scheduled_latency_ms: dict[str, float] = {}
    """overload: acknowledged intakes, from the arrival's scheduled moment (connection set-up and client lag included)"""
    refused_latency_ms: dict[str, float] = {}
    """overload: answers other than 200/201 (the refusals), from the arrival's scheduled moment"""
    goodput_rate: float | None = None
    """overload: intakes acknowledged per second during the open-loop phase"""
    server_cpu_share: float | None = None
    """overload: CPU seconds per second used by the web server and PostgreSQL during the open-loop phase"""
    max_connections: int = 1000
    bystander_success: float | None = None
    """overload: 2xx share of the answers to another province's usual load during the surge"""
    bystander_acknowledged: int = 0
    bystander_latency_ms: dict[str, float] = {}
    bystander_errors: dict[str, int] = {}
    bystander_lost: int = 0
    bystander_duplicated: int = 0
    bystander_half_written: int = 0
    """overload: keep-alive connections the open-loop clients may open, all processes together"""


class Load:
    """Clients filing complaints, each repeating a complaint under the same key until acknowledged."""

    def __init__(self, web: Web, token: str, enterprise_id: str, figures: Figures, *, until: float,
                 tenant: str = "shanghai") -> None:
        self.web, self.figures, self.until, self.tenant = web, figures, until, tenant
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.run = uuid.uuid4().hex[:10]
        self.body = {
            "company_name": "压测电商有限公司", "enterprise_id": enterprise_id, "route": "odr",
            "subject": "网购商品与描述不符", "description": "收到的商品与页面描述不一致，要求退货。",
            "consumer_name": "王五", "consumer_phone": "13700001111", "consumer_address": "上海市金山区石化街道",
            "amount_claimed": 128.0,
        }
        self.acked: dict[str, float] = {}
        self.sent: list[str] = []
        self.errors: collections.Counter[str] = collections.Counter()
        self.ok = 0
        self.latencies: list[float] = []
        self.next = 0
        self.http: httpx.AsyncClient | None = None
        """a client shared by every :meth:`client` loop, made beforehand (each loop makes its own otherwise:
        tens of milliseconds of set-up each, which would count in a recovery time)"""

    async def client(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            http = self.http or await stack.enter_async_context(httpx.AsyncClient(base_url=self.web.base, timeout=10))
            while time.monotonic() < self.until:
                key = f"fault-{self.run}-{self.next:07d}"
                self.next += 1
                self.sent.append(key)
                body = msgspec.json.encode({**self.body, "idempotency_key": key})
                while True:
                    self.figures.requests += 1
                    wait = 0.1
                    sent_at = time.monotonic()
                    try:
                        r = await http.post(f"/api/tenants/{self.tenant}/complaints", content=body, headers=self.headers)
                    except httpx.TransportError as exc:
                        self.errors[f"connection: {type(exc).__name__}"] += 1
                    else:
                        if r.status_code in (200, 201):
                            self.acked[key] = time.monotonic()
                            self.latencies.append(self.acked[key] - sent_at)
                            self.ok += 1
                            break
                        self.errors[str(r.status_code)] += 1
                        if r.status_code == 503:
                            if "retry-after" in r.headers:
                                wait = min(float(r.headers["retry-after"]), 2.0)
                            else:
                                self.figures.retry_after_missing += 1
                    if time.monotonic() + wait >= self.until:
                        break
                    await asyncio.sleep(wait)


async def watch_health(web: Web, stop: asyncio.Event, seen: collections.Counter) -> None:
    async with httpx.AsyncClient(timeout=3) as http:
        while not stop.is_set():
            try:
                r = await http.get(web.base + "/health")
                seen[f"{r.status_code} database={r.json().get('database')}"] += 1
            except (httpx.TransportError, ValueError) as exc:
                seen[f"connection: {type(exc).__name__}"] += 1
            await asyncio.sleep(0.25)


async def watch_logins(web: Web, username: str, stop: asyncio.Event, seen: collections.Counter) -> None:
    """Logins while Valkey (rate limits, lockouts) is away: their answers, counted."""
    async with httpx.AsyncClient(timeout=5) as http:
        while not stop.is_set():
            try:
                r = await http.post(web.base + "/api/auth/login", json={"username": username, "password": "bench-password"})
                seen[f"login {r.status_code}"] += 1
            except httpx.TransportError as exc:
                seen[f"login connection: {type(exc).__name__}"] += 1
            await asyncio.sleep(0.5)


async def count(url: str, run: str, figures: Figures, acked: dict[str, float], *, tenant: str = "shanghai") -> None:
    """Read the tenant's tables as the server's superuser and fill in lost / duplicated / half-written."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        # one pass per table, hash-joined (a correlated count per complaint would scan the timers and
        # notifications, which have no index by complaint, once for every complaint)
        rows = await conn.fetch(
            f"""WITH c AS (SELECT id, idempotency_key FROM t_{tenant}.complaints WHERE idempotency_key LIKE $1),
                    e AS (SELECT complaint_id, count(*) AS n FROM t_{tenant}.complaint_events
                          WHERE complaint_id IN (SELECT id FROM c) GROUP BY 1),
                    t AS (SELECT complaint_id, count(*) AS n FROM t_{tenant}.timers
                          WHERE complaint_id IN (SELECT id FROM c) GROUP BY 1),
                    x AS (SELECT complaint_id, count(*) AS n FROM t_{tenant}.notifications
                          WHERE complaint_id IN (SELECT id FROM c) GROUP BY 1)
               SELECT c.idempotency_key AS key, count(*) OVER (PARTITION BY c.idempotency_key) AS copies,
                      coalesce(e.n, 0) AS events, coalesce(t.n, 0) AS timers, coalesce(x.n, 0) AS notices,
                      f.complaint_id IS NOT NULL AS facts
               FROM c LEFT JOIN e ON e.complaint_id = c.id LEFT JOIN t ON t.complaint_id = c.id
               LEFT JOIN x ON x.complaint_id = c.id
               LEFT JOIN t_{tenant}.complaint_facts f ON f.complaint_id = c.id""", f"%:fault-{run}-%")
    finally:
        await conn.close()
    present = {r["key"].split(":", 1)[1] for r in rows}  # stored as "<consumer account>:<key>"
    figures.lost = sum(1 for key in acked if key not in present)
    figures.duplicated = len({r["key"] for r in rows if r["copies"] > 1})
    figures.present = len(rows)
    figures.half_written = sum(1 for r in rows if not (r["events"] and r["timers"] and r["notices"] and r["facts"]))
    figures.unacknowledged_present = len(present - set(acked))


async def make_due_meanwhile(url: str, run: str, *, until: float) -> set[str]:
    """Until ``until``, every 0.5 s make the contact deadline and its warning of a few filed, uncontacted
    complaints of the run due now (their timer rows' due moments: what the calendar would bring); return
    the ids of those timers."""
    import asyncpg

    made: set[str] = set()
    conn = await asyncpg.connect(url)
    try:
        while time.monotonic() < until:
            rows = await conn.fetch(
                """UPDATE t_shanghai.timers t SET due_at = now()
                   WHERE t.id IN (SELECT t2.id FROM t_shanghai.timers t2 JOIN t_shanghai.complaints c ON c.id = t2.complaint_id
                                  WHERE c.idempotency_key LIKE $1 AND t2.kind IN ('contact_warning', 'contact_breach')
                                    AND t2.fired_at IS NULL AND t2.cancelled_at IS NULL AND t2.due_at > now()
                                  LIMIT 6)
                   RETURNING t.id::text""", f"%:fault-{run}-%")
            made.update(r["id"] for r in rows)
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    return made


async def make_due_now(url: str, run: str) -> set[str]:
    """Make every pending contact deadline and warning of the run's complaints due now, at once (a burst
    for the timer workers to fire); return the ids of those timers."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """UPDATE t_shanghai.timers t SET due_at = now()
               FROM t_shanghai.complaints c
               WHERE c.id = t.complaint_id AND c.idempotency_key LIKE $1
                 AND t.kind IN ('contact_warning', 'contact_breach') AND t.fired_at IS NULL AND t.cancelled_at IS NULL
               RETURNING t.id::text""", f"%:fault-{run}-%")
    finally:
        await conn.close()
    return {r["id"] for r in rows}


async def wait_fired(url: str, timers: set[str], figures: Figures, *, since: float, stall: float = 30.0,
                     limit: float = 900.0) -> None:
    """Wait until every timer of ``timers`` fired, for as long as they are being fired (none fired for
    ``stall`` s: stop; never more than ``limit`` s after ``since``); count fired ones and events per
    timer id. A burst of tens of thousands made due at once takes minutes for two workers."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        last, progressed = -1, time.monotonic()
        while True:
            fired = await conn.fetchval(
                "SELECT count(*) FROM t_shanghai.timers WHERE id::text = ANY($1::text[]) AND fired_at IS NOT NULL",
                list(timers))
            now = time.monotonic()
            if fired != last:
                last, progressed = fired, now
            if fired == len(timers) or now - progressed > stall or now - since > limit:
                break
            await asyncio.sleep(0.5)
        figures.timers_fired = fired
        figures.timers_fire_seconds = round(time.monotonic() - since, 2) if fired == len(timers) else None
        await asyncio.sleep(3)  # a second firing would show by now (the workers poll every 0.2 s)
        figures.timers_fired_twice = await conn.fetchval(
            """SELECT count(*) FROM (SELECT e.after->>'timer_id' FROM t_shanghai.complaint_events e
                                     WHERE e.kind IN ('deadline_warning', 'deadline_breached')
                                       AND e.after->>'timer_id' = ANY($1::text[])
                                     GROUP BY 1 HAVING count(*) > 1) twice""", list(timers))
    finally:
        await conn.close()


async def scenario(name: str, *, clients: int, seconds: float, fault_at: float, down: float,
                   queue_max: int | None = None, max_wait_ms: float | None = None, max_inflight: int | None = None, factor: float = 10.0, client_processes: int = 3,
                   calibrate: float = 10.0, after_seconds: float = 5.0, cpus: str = "auto",
                   max_connections: int = 1000, max_inflight_per_tenant: int | None = None) -> Figures:
    base = Path(tempfile.mkdtemp(prefix=f"odr-faults-{name}-"))
    figures = Figures(scenario=name, clients=clients, seconds=seconds, max_connections=max_connections)
    own_cpus = os.sched_getaffinity(0)
    split = cpu_split(cpus) if name == "overload" else None
    if split:  # what this process starts now (PostgreSQL, the web server) inherits the server's CPUs
        os.sched_setaffinity(0, split[0])
        figures.pinning = (f"web server and PostgreSQL on CPU {','.join(map(str, sorted(split[0])))}, "
                           f"clients on CPU {','.join(map(str, sorted(split[1])))}")
    pg = Postgres(base)
    web = valkey = None
    keep = True  # until the scenario has run and kept its guarantees
    try:
        data_dir = str(base / "data")
        os.makedirs(data_dir)
        prepared = await prepare(pg.url, data_dir)
        extra = {}
        if name == "overload":
            from core.settings import Settings

            calm_province = await prepare_bystander(pg.url, data_dir)

            defaults = Settings()  # what a platform gets when these are not set
            extra = {"ODR_INTAKE_QUEUE_MAX": str(defaults.intake_queue_max if queue_max is None else queue_max),
                     "ODR_INTAKE_MAX_WAIT_MS": f"{defaults.intake_max_wait_ms if max_wait_ms is None else max_wait_ms:g}",
                     "ODR_WEB_MAX_INFLIGHT": str(defaults.web_max_inflight if max_inflight is None else max_inflight),
                     "ODR_WEB_MAX_INFLIGHT_PER_TENANT": str(defaults.web_max_inflight_per_tenant
                                                            if max_inflight_per_tenant is None else max_inflight_per_tenant)}
            figures.server_settings = extra
        if name in ("valkey-down", "kill-timer"):
            valkey = Valkey(base)
            valkey.start()
            extra = {"ODR_VALKEY_URL": valkey.url, "FAULTS_TIMER_WORKERS": "2", "ODR_TIMER_RECONCILE_SECONDS": "2",
                     "ODR_TIMER_POLL_SECONDS": "0.2"}
        web = Web(pg.url, data_dir, extra)
        web.start()
        await web.wait_ready()
        if split:
            os.sched_setaffinity(0, split[1])
        async with httpx.AsyncClient(base_url=web.base) as http:
            r = await http.post("/api/auth/login", json={"username": prepared["consumer"], "password": "bench-password"})
            token = r.json()["token"]
        first_pid = web.proc.pid
        started = time.monotonic()
        if name == "overload":
            load = Load(web, token, prepared["enterprise_id"], figures, until=started)
            client_cpus = split[1] if split else None
            await calibrate_rate(web, token, load, figures, seconds=calibrate, cpus=client_cpus)
            shared = httpx.AsyncClient(base_url=web.base, timeout=10, limits=httpx.Limits(max_connections=clients))
            async with httpx.AsyncClient(base_url=web.base) as http:
                r = await http.post("/api/auth/login", json={"username": calm_province["consumer"],
                                                             "password": "bench-password"})
            bystander = Load(web, r.json()["token"], calm_province["enterprise_id"], Figures(scenario=BYSTANDER, clients=0, seconds=seconds),
                             until=0.0, tenant=BYSTANDER)
            bystander.body = {**bystander.body, "consumer_address": "福建省福州市鼓楼区五四路"}
            await overload(web, token, load, figures, seconds=seconds, factor=factor, processes=client_processes,
                           cpus=client_cpus, server_pids=[web.proc.pid, pg.postmaster_pid()], bystander=bystander)
            calm_count = Figures(scenario=BYSTANDER, clients=0, seconds=seconds)
            await count(pg.url, bystander.run, calm_count, bystander.acked, tenant=BYSTANDER)
            figures.bystander_lost, figures.bystander_duplicated, figures.bystander_half_written = (
                calm_count.lost, calm_count.duplicated, calm_count.half_written)
            fault_end = time.monotonic()
            calm = Figures(scenario="after", clients=clients, seconds=after_seconds)
            after = Load(web, token, prepared["enterprise_id"], calm, until=time.monotonic() + after_seconds)
            after.run, after.next, after.http = load.run, load.next + 1_000_000, shared  # the same run, other keys
            async with shared:
                await asyncio.gather(*(after.client() for _ in range(clients)))
            answered = after.ok + sum(after.errors.values())
            figures.after_success = round(after.ok / answered, 4) if answered else None
            load.acked.update(after.acked)
            load.sent.extend(after.sent)
            load.errors.update({f"after {k}": v for k, v in after.errors.items()})
            figures.requests += calm.requests
            tasks = []
        else:
            load = Load(web, token, prepared["enterprise_id"], figures, until=started + seconds)
            tasks = [asyncio.create_task(load.client()) for _ in range(figures.clients)]
        health: collections.Counter[str] = collections.Counter()
        stop = asyncio.Event()
        if name != "overload":
            await asyncio.sleep(fault_at)
        if name == "overload":
            pass
        elif name == "pg-restart":
            watcher = asyncio.create_task(watch_health(web, stop, health))
            await asyncio.to_thread(pg.stop_immediately)
            await asyncio.sleep(down)
            await asyncio.to_thread(pg.start)
            fault_end = time.monotonic()
            stop.set()
            await watcher
        elif name == "kill-web":
            web.kill()
            await asyncio.sleep(down)
            web.start()
            fault_end = time.monotonic()
        elif name == "kill-timer":
            made_due = await make_due_now(pg.url, load.run)
            await asyncio.sleep(0.3)  # the workers are firing them
            web.workers[0].kill()
            web.workers[0].wait(10)
            await asyncio.sleep(down)
            web.workers[0] = web.start_worker(0)
            fault_end = time.monotonic()
            figures.timers_due_in_fault = len(made_due)
            await wait_fired(pg.url, made_due, figures, since=fault_end)
        elif name == "valkey-down":
            valkey.kill()
            watcher = asyncio.create_task(watch_logins(web, prepared["consumer"], stop, health))
            made_due = await make_due_meanwhile(pg.url, load.run, until=time.monotonic() + down)
            stop.set()
            await watcher
            valkey.start()
            fault_end = time.monotonic()
            async with httpx.AsyncClient(timeout=5) as http:  # logins work again once Valkey is back
                for _ in range(50):
                    r = await http.post(web.base + "/api/auth/login",
                                        json={"username": prepared["consumer"], "password": "bench-password"})
                    if r.status_code == 200:
                        break
                    await asyncio.sleep(0.2)
                health[f"login after the fault {r.status_code}"] += 1
            figures.timers_due_in_fault = len(made_due)
            await wait_fired(pg.url, made_due, figures, since=fault_end)
        else:
            raise SystemExit(f"unknown scenario {name}")
        await asyncio.gather(*tasks)
        figures.sent = len(load.sent)
        figures.acknowledged = len(load.acked)
        figures.errors = dict(sorted(load.errors.items()))
        figures.health_during_fault = dict(sorted(health.items()))
        after = [t for t in load.acked.values() if t >= fault_end]
        figures.recovery_seconds = round(min(after) - fault_end, 2) if after else None
        figures.web_restarted = web.proc.pid != first_pid or web.proc.poll() is not None
        if load.latencies and name != "overload":  # overload: the open-loop phase's, set by overload()
            ordered = sorted(load.latencies)
            figures.latency_ms = {"p50": round(ordered[len(ordered) // 2] * 1000, 1),
                                  "p99": round(ordered[int(len(ordered) * 0.99)] * 1000, 1),
                                  "max": round(ordered[-1] * 1000, 1)}
        answers = load.ok + sum(load.errors.values())
        figures.intake_success = round(load.ok / answers, 4) if answers else None
        await count(pg.url, load.run, figures, load.acked)
        figures.server_errors = len(web.server_errors())
        keep = failed(figures)
        return figures
    finally:
        os.sched_setaffinity(0, own_cpus)
        if web is not None:
            web.stop()
        if valkey is not None:
            valkey.kill()
        pg.close()
        remove_scratch(base, keep=keep)


def failed(f: Figures) -> bool:
    """Whether a scenario broke a guarantee: an acknowledged write lost, doubled or half-written (the
    other province's too), a 500, an error in the server's log, a timer unfired or fired twice."""
    return bool(f.lost or f.duplicated or f.half_written or "500" in f.errors or f.server_errors
                or f.bystander_lost or f.bystander_duplicated or f.bystander_half_written
                or f.timers_fired < f.timers_due_in_fault or f.timers_fired_twice)


def remove_scratch(base: Path, *, keep: bool) -> None:
    """Remove a scenario's directory (its PostgreSQL data, server logs: a full run leaves gigabytes),
    unless ``keep`` (a failed or interrupted scenario) or ``ODR_BENCH_KEEP`` is set."""
    if keep or os.environ.get("ODR_BENCH_KEEP"):
        print(f"{base.name}: kept {base} (logs, database)", file=sys.stderr)
    else:
        shutil.rmtree(base, ignore_errors=True)


def table(results: list[Figures]) -> str:
    rows = [("scenario", "clients", "s", "sent", "requests", "acked", "lost", "dup", "half", "late-acked",
             "recovery s", "2xx share", "latency ms", "web MB", "after", "timers due/fired/twice", "errors",
             "health while down")]
    for f in results:
        rows.append((f.scenario, str(f.clients), f"{f.seconds:g}", str(f.sent), str(f.requests), str(f.acknowledged),
                     str(f.lost), str(f.duplicated), str(f.half_written), str(f.unacknowledged_present),
                     "-" if f.recovery_seconds is None else f"{f.recovery_seconds:.2f}",
                     "-" if f.intake_success is None else f"{f.intake_success:.4f}",
                     "/".join(f"{v:g}" for v in f.latency_ms.values()) or "-",
                     "-" if f.server_rss_mb is None else f"{f.server_rss_mb:g}",
                     "-" if f.after_success is None else f"{f.after_success:.4f}",
                     (f"{f.timers_due_in_fault}/{f.timers_fired}/{f.timers_fired_twice}"
                      + (f" in {f.timers_fire_seconds:g} s" if f.timers_fire_seconds is not None else "")
                      if f.timers_due_in_fault else "-"),
                     ", ".join(f"{k}: {v}" for k, v in f.errors.items()) or "-",
                     ", ".join(f"{k}: {v}" for k, v in f.health_during_fault.items()) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--fault-at", type=float, default=20)
    parser.add_argument("--down", type=float, default=10, help="seconds the fault lasts")
    parser.add_argument("--queue-max", type=int, default=None,
                        help="overload: ODR_INTAKE_QUEUE_MAX of the server (default: the platform's default)")
    parser.add_argument("--max-wait-ms", type=float, default=None,
                        help="overload: ODR_INTAKE_MAX_WAIT_MS of the server (default: the platform's default)")
    parser.add_argument("--max-inflight", type=int, default=None,
                        help="overload: ODR_WEB_MAX_INFLIGHT of the server (default: the platform's default)")
    parser.add_argument("--overload-factor", type=float, default=10, help="overload: the offered rate, x the sustainable rate")
    parser.add_argument("--client-processes", type=int, default=2, help="overload: open-loop client processes")
    parser.add_argument("--calibrate", type=float, default=10, help="overload: seconds of the closed-loop run measuring the sustainable rate")
    parser.add_argument("--cpus", default="auto", help="overload: server/client CPUs, e.g. 0/1 (auto: first half / rest; off)")
    parser.add_argument("--max-inflight-per-tenant", type=int, default=None,
                        help="overload: ODR_WEB_MAX_INFLIGHT_PER_TENANT of the server (default: the platform's default)")
    parser.add_argument("--max-connections", type=int, default=1000, help="overload: open-loop connections, all client processes (granian holds at most 1,024 per worker)")
    parser.add_argument("--requests", type=int, default=100_000, help="pgbouncer: requests per statement-cache setting")
    parser.add_argument("--fault-rate", type=float, default=0.04, help="pgbouncer: share of complaints carrying an injected fault")
    parser.add_argument("--statement-cache", choices=["on", "off"], action="append",
                        help="pgbouncer: run only this setting (default: every setting, see fault_pgbouncer.settings_to_run)")
    parser.add_argument("--noisy-rate", type=float, default=20, help="noisy-neighbour: Fujian's complaints per second")
    parser.add_argument("--signups", type=int, default=80, help="noisy-neighbour: Shanghai's sign-up flood (40 at a time; then 40 parallel logins; 0: neither)")
    parser.add_argument("--tiny", action="store_true", help="8 clients, 10 s per scenario, a 2 s fault at 3 s; pgbouncer: 1,500 requests, 10 %% faults")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.tiny:
        args.clients, args.seconds, args.fault_at, args.down, args.queue_max, args.requests = 8, 10, 3, 2, 4, 1500
        args.fault_rate = 0.1
        args.calibrate, args.client_processes = 3, 2
        args.max_wait_ms = 2000 if args.max_wait_ms is None else args.max_wait_ms
    results = []
    bouncer_results = []
    noisy_results = []
    for name in args.scenario or SCENARIOS:
        if name == "noisy-neighbour":
            from benchmarks import fault_noisy

            noisy_results.append(await fault_noisy.scenario(seconds=8 if args.tiny else args.seconds,
                                                            rate=10 if args.tiny else args.noisy_rate,
                                                            signups=args.signups, tiny=args.tiny))
            if not args.json:
                print(fault_noisy.report(noisy_results[-1]), flush=True)
            continue
        if name == "pgbouncer":
            from benchmarks import fault_pgbouncer

            caches = None if not args.statement_cache else [c == "on" for c in args.statement_cache]
            bouncer_results = await fault_pgbouncer.scenario(requests=args.requests, clients=args.clients, caches=caches,
                                                                    fault_rate=args.fault_rate,
                                                                    report=None if args.json else
                                                                    lambda f: print(fault_pgbouncer.table([f]), flush=True))
            continue
        results.append(await scenario(name, clients=args.clients, seconds=args.seconds, fault_at=args.fault_at,
                                      down=args.down, queue_max=args.queue_max, max_wait_ms=args.max_wait_ms,
                                      max_inflight=args.max_inflight, factor=args.overload_factor,
                                      client_processes=args.client_processes, calibrate=args.calibrate,
                                      after_seconds=3 if args.tiny else 5, cpus=args.cpus,
                                      max_connections=args.max_connections,
                                      max_inflight_per_tenant=args.max_inflight_per_tenant))
        if not args.json:
            print(table(results[-1:]), flush=True)
            if name == "overload":
                print(overload_report(results[-1]), flush=True)
    if args.json:
        print(msgspec.json.encode(results + bouncer_results + noisy_results).decode())
    else:
        if results:
            print("\n" + table(results))
        if bouncer_results:
            from benchmarks import fault_pgbouncer

            print("\n" + fault_pgbouncer.table(bouncer_results))
    if bouncer_results and any(fault_pgbouncer.failed(f) for f in bouncer_results):
        return 1
    if noisy_results and any(fault_noisy.failed(f) for f in noisy_results):
        return 1
    bad = [f.scenario for f in results if failed(f)]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
