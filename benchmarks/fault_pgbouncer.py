"""Scenario ``pgbouncer`` of ``benchmarks/faults.py`` (issue 12, scenario 4): tenant isolation through
pgbouncer in transaction mode, counted from the data.

Set-up: one embedded PostgreSQL with three provinces (Shanghai, Jiangsu, Fujian), each with an ODR unit,
two consumers, its enterprise specialist and a provincial bureau officer; Debian's pgbouncer in
``pool_mode = transaction`` with few server connections (``default_pool_size = 4``) in front of it; the
platform (``odr serve``, ``ODR_WORKERS=2``) logging in through pgbouncer as the runtime login. Every
server connection therefore serves both web workers and all three tenants in turn.

Traffic: ``requests`` requests over ``clients`` keep-alive connections, tenants and roles interleaved at
random: consumers file complaints (group-committed) and post messages, read their list and their own
complaints; specialists read their unit's list; bureau officers read the province's list and
timelines; and a few requests ask for another province's data on purpose (expected 403/404). Every text
written carries its tenant's marker ``PGB.<slug>.<run>`` (subject, description, idempotency key,
message body).

Injected faults, inside tenant transactions, by triggers the scenario installs in each tenant schema
(real PostgreSQL errors, nothing of the platform mocked), chosen by a word in the complaint's text:

- ``rollback``: an AFTER INSERT trigger raises ``serialization_failure`` after the complaint, its event,
  timers, notification and facts were written in the statement: the transaction (or the group commit
  holding it, whose other items are then filed one by one) rolls back. Nothing of it may remain.
- ``savepoint``: the trigger opens a PL/pgSQL exception block (a savepoint), switches ``search_path``
  and ``role`` *session-wide* to another province, writes a decoy row there and raises; the block
  catches it, the savepoint rolls back, the transaction goes on and commits. No decoy row may remain and
  the rest of the transaction must land in the right schema.
- ``commit``: a deferred constraint trigger switches ``search_path`` and ``role`` session-wide to
  another province and fails the COMMIT. Nothing may remain; no setting may survive.
- ``leak``: the same deferred trigger switches them session-wide and lets the COMMIT succeed: the
  server connection leaves the transaction set to another province, and only the platform's reset
  (sent in the COMMIT's round trip) stands between it and the next client of that server connection.

Checks, from the data (as the superuser, directly on PostgreSQL):
- ``wrong-schema rows``: complaints and messages of the run whose marker or key names another
  province than the schema they sit in; ``decoy rows``: rows the savepoints wrote, still present;
- ``cross-tenant reads``: 200 answers of a province's requests that hold another province's marker,
  and ids of complaints that sit in another province's schema;
- ``fault rows``: complaints of the rolled-back faults present anywhere; ``lost`` / ``dup`` /
  ``half``: as in the other scenarios, for every acknowledged complaint (in its own schema);
- ``leftover``: a probe client on pgbouncer (as the runtime login, outside any transaction) reads
  ``search_path`` and ``current_user`` of whatever server connection it gets, every few ms during the
  run and on every server connection at the end: a tenant's value there is a leftover.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgspec

from benchmarks.fault_processes import Pgbouncer, Postgres, Web, pgbouncer_binary, pgbouncer_version
from benchmarks.httpload import Connection

TENANTS = {"shanghai": ("310000", "310116"), "jiangsu": ("320000", "320205"), "fujian": ("350000", "350102")}
"""slug: (province node of the bureau officer, district node of the ODR unit)"""
FAULTS = ("rollback", "savepoint", "commit", "leak")
FAULTS_FAIL = {"rollback", "commit"}
"""faults whose request must fail and leave nothing; the others commit"""
PASSWORD = "bench-password"
ANSWER_TIMEOUT = 30.0
"""seconds a request may wait for its answer; beyond, it counts as a connection error (a hung server
shows up as errors, not as a hung run)"""
UUID_RE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class PgbouncerFigures(msgspec.Struct, kw_only=True):
    scenario: str = "pgbouncer"
    statement_cache: bool
    pgbouncer: str
    supported: bool
    """whether the setting is one deploy/README.md requires for this pgbouncer version"""
    tenants: int
    web_workers: int = 2
    clients: int
    seconds: float = 0.0
    sent: int = 0
    """requests sent (repeats of a complaint after a 503 included)"""
    acknowledged: int = 0
    """2xx answers"""
    reads_checked: int = 0
    """2xx answers (reads and the answers to writes), each scanned for other provinces' markers and
    complaint ids"""
    writes_acknowledged: int = 0
    """complaints and messages acknowledged"""
    errors: dict[str, int] = {}
    """non-2xx answers by kind: ``<status> <operation>`` (injected faults and deliberate cross-province
    requests under their own names)"""
    injected: dict[str, int] = {}
    wrong_schema_rows: int = 0
    cross_tenant_reads: int = 0
    cross_tenant_ids: int = 0
    decoy_rows: int = 0
    fault_rows_present: int = 0
    lost: int = 0
    duplicated: int = 0
    half_written: int = 0
    leftover_state_seen: int = 0
    probes: int = 0
    server_connections: int = 0
    """distinct PostgreSQL backends the probe landed on"""
    unexpected_errors: int = 0
    """non-2xx answers to requests that were neither injected faults nor deliberate cross-province
    requests"""
    server_errors: int = 0
    """ERROR lines and tracebacks in the web server's log"""


async def prepare_tenants(url: str, data_dir: str) -> dict[str, dict]:
    """Onboard the provinces (directly, as the superuser) and give each an ODR unit and accounts."""
    from core.auth.accounts import create_account
    from core.auth.principal import Role
    from core.db.engine import as_platform, tenant_transaction
    from core.runtime import Platform
    from core.settings import Settings
    from tenants.manifest import load_manifest
    from tenants.onboarding import onboard

    platform = Platform(Settings(database_url=url, data_dir=data_dir))
    await platform.start()
    out: dict[str, dict] = {}
    try:
        for slug, (province, district) in TENANTS.items():
            await onboard(load_manifest(slug), host=platform.host)
            code = "91" + district[:6] + uuid.uuid4().hex[:10].upper().translate(str.maketrans("IOSVZ", "10572"))
            async with tenant_transaction(slug) as conn:
                eid = await conn.fetchval(
                    """INSERT INTO enterprises (name, credit_code, unit_type, node_code, status, approved_at, approved_by)
                       VALUES ($1, $2, 'enterprise', $3, 'active', now(), 'bench') RETURNING id""",
                    f"{slug}压测电商有限公司", code, district)
                accounts = {"consumer": [f"pgb-{slug}-consumer-{i}" for i in range(2)],
                            "specialist": [f"pgb-{slug}-specialist"], "bureau": [f"pgb-{slug}-officer"]}
                async with as_platform(conn):
                    for name in accounts["consumer"]:
                        await create_account(conn, username=name, password=PASSWORD, role=Role.CONSUMER, tenant=slug)
                    await create_account(conn, username=accounts["specialist"][0], password=PASSWORD,
                                         role=Role.ENTERPRISE_SPECIALIST, tenant=slug, enterprise_id=eid)
                    await create_account(conn, username=accounts["bureau"][0], password=PASSWORD,
                                         role=Role.BUREAU_OFFICER, tenant=slug, node_code=province)
            out[slug] = {"enterprise_id": str(eid), "accounts": accounts}
        return out
    finally:
        await platform.stop()


def fault_sql(slug: str, other: str) -> str:
    """The fault triggers of one tenant schema (see the module's docstring); ``other`` is the province
    the faults switch to."""
    s, o = f"t_{slug}", f"t_{other}"
    return f"""
CREATE TABLE {s}.pgb_decoy (marker text NOT NULL, at timestamptz NOT NULL DEFAULT now());
GRANT INSERT, SELECT ON {s}.pgb_decoy TO {s};
CREATE FUNCTION {s}.pgb_fault_now() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
    path text := current_setting('search_path');
    who text := current_user;
BEGIN
    IF NEW.description LIKE '%FAULT-ROLLBACK%' THEN
        RAISE EXCEPTION 'pgb: injected rollback' USING ERRCODE = 'serialization_failure';
    END IF;
    IF NEW.description LIKE '%FAULT-SAVEPOINT%' THEN
        BEGIN
            PERFORM set_config('search_path', '{o}', false);
            PERFORM set_config('role', '{o}', false);
            INSERT INTO pgb_decoy (marker) VALUES (NEW.description);
            RAISE EXCEPTION 'pgb: injected savepoint error' USING ERRCODE = 'check_violation';
        EXCEPTION WHEN check_violation THEN
            NULL;
        END;
        IF current_setting('search_path') <> path OR current_user <> who THEN
            RAISE EXCEPTION 'pgb: the rolled-back savepoint left search_path % role %', current_setting('search_path'), current_user;
        END IF;
    END IF;
    RETURN NULL;
END $f$;
CREATE TRIGGER pgb_fault_now AFTER INSERT ON {s}.complaints FOR EACH ROW
    WHEN (NEW.description LIKE '%FAULT-%') EXECUTE FUNCTION {s}.pgb_fault_now();
CREATE FUNCTION {s}.pgb_fault_commit() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM set_config('search_path', '{o}', false);
    PERFORM set_config('role', '{o}', false);
    IF NEW.description LIKE '%FAULT-COMMIT%' THEN
        RAISE EXCEPTION 'pgb: injected failure at commit' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NULL;
END $f$;
CREATE CONSTRAINT TRIGGER pgb_fault_commit AFTER INSERT ON {s}.complaints DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.description LIKE '%FAULT-COMMIT%' OR NEW.description LIKE '%FAULT-LEAK%') EXECUTE FUNCTION {s}.pgb_fault_commit();
"""


async def install_faults(url: str) -> None:
    import asyncpg

    slugs = list(TENANTS)
    conn = await asyncpg.connect(url)
    try:
        for i, slug in enumerate(slugs):
            await conn.execute(fault_sql(slug, slugs[(i + 1) % len(slugs)]))
    finally:
        await conn.close()


class Probe:
    """A client of pgbouncer (the runtime login, outside any transaction) that reads the session state
    of whatever server connection it is given."""

    def __init__(self, url: str, figures: PgbouncerFigures) -> None:
        self.url, self.figures = url, figures
        self.pids: set[int] = set()
        self.seen: collections.Counter[str] = collections.Counter()

    def look(self, row) -> None:
        self.figures.probes += 1
        self.pids.add(row["pid"])
        if "t_" in row["path"] or row["who"] != "odr_app" or row["role"] != "none":
            self.figures.leftover_state_seen += 1
            self.seen[f"{row['path']} / {row['who']}"] += 1

    SQL = "SELECT current_setting('search_path') AS path, current_user::text AS who, current_setting('role') AS role, pg_backend_pid() AS pid"

    async def run(self, stop: asyncio.Event) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url, statement_cache_size=0)
        try:
            while not stop.is_set():
                try:
                    self.look(await conn.fetchrow(self.SQL))
                except asyncpg.PostgresError:
                    pass
                await asyncio.sleep(0.005)
        finally:
            await conn.close()

    async def sweep(self, connections: int) -> None:
        """Hold ``connections`` transactions open at once (more than the server pool), so that every
        server connection is looked at once more after the run."""
        import asyncpg

        conns = [await asyncpg.connect(self.url, statement_cache_size=0) for _ in range(connections)]
        try:
            async def one(conn):
                try:
                    async with conn.transaction():
                        self.look(await conn.fetchrow(self.SQL))
                        await asyncio.sleep(0.5)
                except asyncpg.PostgresError:
                    pass
            await asyncio.gather(*(one(c) for c in conns))
        finally:
            for c in conns:
                await c.close()


class Traffic:
    """The interleaved requests of the run and what their answers showed."""

    def __init__(self, web: Web, tenants: dict[str, dict], tokens: dict[str, str], figures: PgbouncerFigures, *,
                 requests: int, fault_rate: float, seed: int) -> None:
        self.web, self.tenants, self.tokens, self.figures = web, tenants, tokens, figures
        self.total, self.fault_rate = requests, fault_rate
        self.rng = random.Random(seed)
        self.run = uuid.uuid4().hex[:10]
        self.marker = re.compile(rb"PGB\.([a-z0-9_]+)\." + self.run.encode())
        self.errors: collections.Counter[str] = collections.Counter()
        self.injected: collections.Counter[str] = collections.Counter()
        self.acked_keys: dict[str, str] = {}  # idempotency key -> slug (acknowledged complaints)
        self.fault_keys: dict[str, str] = {}  # key of a fault that must leave nothing -> slug
        self.ids: dict[str, list[str]] = {slug: [] for slug in tenants}  # acknowledged complaint ids per province
        self.own: dict[str, list[str]] = {}  # consumer username -> own complaint ids
        self.ids_read: dict[str, collections.Counter[str]] = {slug: collections.Counter() for slug in tenants}
        self.sent = 0
        self.n = 0
        self.until = time.monotonic() + max(120.0, requests / 50)  # bounded in time too (50 requests/s at least)
        ops = {"intake": 30, "message": 8, "consumer-list": 12, "consumer-show": 10, "specialist-list": 12,
               "bureau-list": 12, "bureau-timeline": 10, "cross-province": 6}
        self.ops = list(ops)
        self.weights = list(ops.values())

    def headers(self, user: str, content_type: str = "application/json") -> bytes:
        return Connection.head({"Authorization": f"Bearer {self.tokens[user]}", "Content-Type": content_type})

    async def client(self) -> None:
        conn = await self.reconnect()
        if conn is None:
            self.errors["connection refused: client gave up"] += 1
            return
        try:
            while self.sent < self.total and time.monotonic() < self.until:
                slug = self.rng.choice(list(self.tenants))
                op = self.rng.choices(self.ops, self.weights)[0]
                try:
                    await getattr(self, "op_" + op.replace("-", "_"))(conn, slug)
                except (ConnectionError, OSError, asyncio.TimeoutError) as exc:
                    self.errors[f"connection {type(exc).__name__}"] += 1
                    conn.close()
                    conn = await self.reconnect()
                    if conn is None:
                        self.errors["connection refused: client gave up"] += 1
                        return
        finally:
            if conn is not None:
                conn.close()

    async def reconnect(self) -> Connection | None:
        """A new connection to the web server, or None when it no longer accepts any (it exited)."""
        for _ in range(5):
            conn = Connection("127.0.0.1", self.web.port)
            try:
                await conn.open()
                return conn
            except OSError:
                await asyncio.sleep(0.5)
        return None

    async def send(self, conn: Connection, method: str, path: str, body: bytes, extra: bytes) -> tuple[int, bytes]:
        self.sent += 1
        status, answer = await asyncio.wait_for(conn.send(method, path, body, extra), ANSWER_TIMEOUT)
        if 200 <= status < 300:
            self.figures.acknowledged += 1
        return status, answer

    def check_read(self, slug: str, answer: bytes) -> None:
        """A 2xx answer to a request of ``slug``: other provinces' markers counted now, complaint ids
        kept for the check against the schemas at the end."""
        self.figures.reads_checked += 1
        if any(m.decode() != slug for m in self.marker.findall(answer)):
            self.figures.cross_tenant_reads += 1
        self.ids_read[slug].update(m.decode() for m in UUID_RE.findall(answer))

    async def op_intake(self, conn: Connection, slug: str) -> None:
        user = self.rng.choice(self.tenants[slug]["accounts"]["consumer"])
        self.n += 1
        key = f"pgb-{self.run}-{slug}-{self.n:07d}"
        fault = self.rng.choice(FAULTS) if self.rng.random() < self.fault_rate else None
        tag = f"PGB.{slug}.{self.run}"
        body = msgspec.json.encode({
            "company_name": f"{slug}压测电商有限公司", "enterprise_id": self.tenants[slug]["enterprise_id"], "route": "odr",
            "subject": f"{tag} 网购商品与描述不符",
            "description": f"{tag} #{self.n} 收到的商品与页面描述不一致，要求退货。" + (f" FAULT-{fault.upper()}" if fault else ""),
            "consumer_name": "王五", "consumer_phone": "13700001111", "amount_claimed": 128.0, "idempotency_key": key})
        if fault:
            self.injected[fault] += 1
        for _ in range(10):  # repeated under the same key while the answer is 503 (Retry-After)
            status, answer = await self.send(conn, "POST", f"/api/tenants/{slug}/complaints", body, self.headers(user))
            if status in (200, 201):
                self.check_read(slug, answer)
                cid = msgspec.json.decode(answer)["complaint"]["id"]
                self.acked_keys[key] = slug
                self.figures.writes_acknowledged += 1
                if status == 201:
                    self.ids[slug].append(cid)
                    self.own.setdefault(user, []).append(cid)
                if fault in FAULTS_FAIL:
                    self.errors[f"{status} intake acknowledged despite injected {fault}"] += 1
                elif fault:
                    self.injected[f"{fault} acknowledged"] += 1
                return
            if fault in FAULTS_FAIL:
                self.fault_keys[key] = slug
                self.errors[f"{status} intake, injected {fault}"] += 1
                return
            self.errors[f"{status} intake" + (f", injected {fault} (expected 2xx)" if fault else "")] += 1
            if status != 503:
                return
            await asyncio.sleep(0.2)

    async def op_message(self, conn: Connection, slug: str) -> None:
        user = self.rng.choice(self.tenants[slug]["accounts"]["consumer"])
        if not self.own.get(user):
            return await self.op_intake(conn, slug)
        cid = self.rng.choice(self.own[user][-50:])
        text = f"PGB.{slug}.{self.run} 请尽快联系我"
        body = (f'--pgbBoundary\r\nContent-Disposition: form-data; name="body"\r\n\r\n{text}\r\n--pgbBoundary--\r\n').encode()
        status, answer = await self.send(conn, "POST", f"/api/tenants/{slug}/complaints/{cid}/messages", body,
                                         self.headers(user, "multipart/form-data; boundary=pgbBoundary"))
        if 200 <= status < 300:
            self.check_read(slug, answer)
            self.figures.writes_acknowledged += 1
        else:
            self.errors[f"{status} message"] += 1

    async def read(self, conn: Connection, slug: str, user: str, path: str, what: str) -> None:
        status, answer = await self.send(conn, "GET", path, b"", self.headers(user))
        if 200 <= status < 300:
            self.check_read(slug, answer)
        else:
            self.errors[f"{status} {what}"] += 1

    async def op_consumer_list(self, conn: Connection, slug: str) -> None:
        user = self.rng.choice(self.tenants[slug]["accounts"]["consumer"])
        await self.read(conn, slug, user, f"/api/tenants/{slug}/complaints?limit=20", "consumer list")

    async def op_consumer_show(self, conn: Connection, slug: str) -> None:
        user = self.rng.choice(self.tenants[slug]["accounts"]["consumer"])
        if not self.own.get(user):
            return await self.op_consumer_list(conn, slug)
        await self.read(conn, slug, user, f"/api/tenants/{slug}/complaints/{self.rng.choice(self.own[user][-200:])}",
                        "consumer show")

    async def op_specialist_list(self, conn: Connection, slug: str) -> None:
        user = self.tenants[slug]["accounts"]["specialist"][0]
        await self.read(conn, slug, user, f"/api/tenants/{slug}/complaints?limit=20", "specialist list")

    async def op_bureau_list(self, conn: Connection, slug: str) -> None:
        user = self.tenants[slug]["accounts"]["bureau"][0]
        await self.read(conn, slug, user, f"/api/tenants/{slug}/complaints?limit=20&offset={self.rng.randrange(0, 40)}",
                        "bureau list")

    async def op_bureau_timeline(self, conn: Connection, slug: str) -> None:
        user = self.tenants[slug]["accounts"]["bureau"][0]
        if not self.ids[slug]:
            return await self.op_bureau_list(conn, slug)
        await self.read(conn, slug, user, f"/api/tenants/{slug}/complaints/{self.rng.choice(self.ids[slug][-500:])}/timeline",
                        "bureau timeline")

    async def op_cross_province(self, conn: Connection, slug: str) -> None:
        """On purpose, another province's data: its list under its path, or one of its complaints under
        one's own path. Expected 403/404; a 2xx is scanned like every read."""
        other = self.rng.choice([s for s in self.tenants if s != slug])
        if self.rng.random() < 0.5 or not self.ids[other]:
            user = self.rng.choice(self.tenants[slug]["accounts"]["consumer"] + self.tenants[slug]["accounts"]["bureau"])
            path = f"/api/tenants/{other}/complaints?limit=20"
        else:
            user = self.tenants[slug]["accounts"]["bureau"][0]
            path = f"/api/tenants/{slug}/complaints/{self.rng.choice(self.ids[other][-500:])}"
        status, answer = await self.send(conn, "GET", path, b"", self.headers(user))
        if 200 <= status < 300:
            self.check_read(slug, answer)
        self.errors[f"{status} cross-province (expected 403/404)"] += 1


async def check(url: str, traffic: Traffic, figures: PgbouncerFigures) -> None:
    """Count, from the tenant schemas, rows in the wrong schema, decoys, fault rows, lost, duplicated
    and half-written complaints, and complaint ids read by another province."""
    import asyncpg

    conn = await asyncpg.connect(url)
    where: dict[str, list[str]] = collections.defaultdict(list)  # idempotency key -> schemas holding it
    owner: dict[str, str] = {}  # complaint id -> province whose schema holds it
    run = traffic.run
    try:
        for slug in traffic.tenants:
            s = f"t_{slug}"
            rows = await conn.fetch(
                f"""SELECT c.id::text AS id, c.idempotency_key AS key, c.subject || ' ' || c.description AS text,
                           EXISTS (SELECT 1 FROM {s}.complaint_events e WHERE e.complaint_id = c.id) AS event,
                           EXISTS (SELECT 1 FROM {s}.timers t WHERE t.complaint_id = c.id) AS timer,
                           EXISTS (SELECT 1 FROM {s}.complaint_facts f WHERE f.complaint_id = c.id) AS facts
                    FROM {s}.complaints c WHERE c.idempotency_key LIKE $1 OR c.description LIKE $2""",
                f"%pgb-{run}-%", f"%.{run}%")
            for r in rows:
                owner[r["id"]] = slug
                named = {m.decode() for m in traffic.marker.findall(r["text"].encode())}
                key = r["key"].split(":", 1)[1] if r["key"] else None
                if key:
                    where[key].append(slug)
                    named.add(key.split("-")[2])
                if named != {slug}:
                    figures.wrong_schema_rows += 1
                if not (r["event"] and r["timer"] and r["facts"]):
                    figures.half_written += 1
            for body in await conn.fetch(f"SELECT body FROM {s}.complaint_messages WHERE body LIKE $1", f"%.{run}%"):
                if {m.decode() for m in traffic.marker.findall(body["body"].encode())} != {slug}:
                    figures.wrong_schema_rows += 1
            figures.decoy_rows += await conn.fetchval(f"SELECT count(*) FROM {s}.pgb_decoy WHERE marker LIKE $1", f"%.{run}%")
    finally:
        await conn.close()
    figures.lost = sum(1 for key, slug in traffic.acked_keys.items() if slug not in where.get(key, []))
    figures.duplicated = sum(1 for schemas in where.values() if len(schemas) > 1)
    figures.fault_rows_present = sum(1 for key in traffic.fault_keys if key in where)
    for slug, seen in traffic.ids_read.items():
        figures.cross_tenant_ids += sum(n for cid, n in seen.items() if owner.get(cid, slug) != slug)


async def one_setting(pg: Postgres, bouncer: Pgbouncer, data_dir: str, tenants: dict, *, statement_cache: bool,
                      supported: bool, requests: int, clients: int, fault_rate: float, seed: int) -> PgbouncerFigures:
    import httpx

    from core.db.logins import with_user

    version = ".".join(map(str, bouncer.version))
    figures = PgbouncerFigures(statement_cache=statement_cache, pgbouncer=version, supported=supported,
                               tenants=len(tenants), clients=clients)
    log_dir = Path(data_dir) / f"web-cache-{'on' if statement_cache else 'off'}"
    log_dir.mkdir()
    web = Web(bouncer.url("odr_app"), str(log_dir), {
        "ODR_WORKERS": "2", "ODR_STATEMENT_CACHE": "true" if statement_cache else "false",
        "ODR_ADMIN_DATABASE_URL": with_user(pg.url, "odr_admin")})
    try:
        for attempt in range(1 if supported else 3):
            web.start()
            try:
                await web.wait_ready()
                break
            except SystemExit as exc:
                # the unsupported setting may fail already at start (two workers' named statements
                # colliding on one server connection): that is its expected failure, counted
                if supported:
                    raise
                cause = re.findall(r"asyncpg\.exceptions\.(\w+)", str(exc))
                kind = f"web server did not start ({cause[-1] if cause else 'see its log'})"
                figures.errors[kind] = figures.errors.get(kind, 0) + 1
                web.stop()
        else:
            return figures
        tokens = {}
        async with httpx.AsyncClient(base_url=web.base, timeout=30) as http:
            for slug, info in tenants.items():
                for user in [u for users in info["accounts"].values() for u in users]:
                    for _ in range(1 if supported else 20):  # the unsupported setting fails at random
                        try:
                            r = await http.post("/api/auth/login", json={"username": user, "password": PASSWORD})
                        except httpx.TransportError:
                            if supported:
                                raise
                            figures.errors["web server exited (see its log)"] = 1
                            return figures
                        if r.status_code == 200:
                            tokens[user] = r.json()["token"]
                            break
                        figures.errors[f"{r.status_code} login"] = figures.errors.get(f"{r.status_code} login", 0) + 1
                    if user not in tokens:
                        if supported:
                            r.raise_for_status()
                        return figures
        traffic = Traffic(web, tenants, tokens, figures, requests=requests, fault_rate=fault_rate, seed=seed)
        probe = Probe(bouncer.url("odr_app"), figures)
        stop = asyncio.Event()
        watcher = asyncio.create_task(probe.run(stop))
        started = time.monotonic()
        await asyncio.gather(*(traffic.client() for _ in range(clients)))
        figures.seconds = round(time.monotonic() - started, 1)
        stop.set()
        await watcher
        await probe.sweep(8)
        figures.server_connections = len(probe.pids)
        figures.sent = traffic.sent
        figures.errors = dict(sorted({**figures.errors, **traffic.errors}.items()))
        figures.injected = dict(sorted(traffic.injected.items()))
        figures.unexpected_errors = sum(n for kind, n in traffic.errors.items() if not expected_error(kind))
        await check(pg.url, traffic, figures)
        if probe.seen:
            figures.errors.update({f"leftover {k}": v for k, v in probe.seen.items()})
        figures.server_errors = len(web.server_errors())
        return figures
    finally:
        web.stop()


def expected_error(kind: str) -> bool:
    """A non-2xx answer the run asks for: an injected fault that must fail, or a deliberate request
    for another province's data refused with 403/404."""
    if kind.endswith(tuple(f"injected {f}" for f in FAULTS_FAIL)):
        return True
    return "cross-province" in kind and kind.startswith(("403 ", "404 "))


def settings_to_run(version: tuple[int, int]) -> list[tuple[bool, bool]]:
    """(statement cache, supported) pairs to run for a pgbouncer version: the statement cache off works
    with every version; on needs 1.21+ with ``max_prepared_statements``. On an older pgbouncer the cache
    is also run on, as the misconfiguration deploy/README.md warns against: it must fail loudly, never
    mix tenants."""
    return [(False, True), (True, version >= (1, 21))]


async def scenario(*, requests: int, clients: int, fault_rate: float = 0.04, seed: int = 12,
                   caches: list[bool] | None = None, report=None) -> list[PgbouncerFigures]:
    """Run the scenario once per statement-cache setting (``caches``: only these); ``report`` is called
    with each setting's figures as soon as they are in."""
    if pgbouncer_binary() is None:
        raise SystemExit("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    base = Path(tempfile.mkdtemp(prefix="odr-faults-pgbouncer-"))
    os.chmod(base, 0o755)
    pg = Postgres(base)
    bouncer = None
    keep = True
    try:
        data_dir = str(base / "data")
        os.makedirs(data_dir)
        tenants = await prepare_tenants(pg.url, data_dir)
        await install_faults(pg.url)
        bouncer = Pgbouncer(base, pg, pool_size=4, max_prepared_statements=200)
        bouncer.start()
        results = []
        for cache, supported in settings_to_run(bouncer.version):
            if caches is not None and cache not in caches:
                continue
            results.append(await one_setting(pg, bouncer, data_dir, tenants, statement_cache=cache, supported=supported,
                                             requests=requests, clients=clients, fault_rate=fault_rate, seed=seed))
            if report is not None:
                report(results[-1])
        if not any(failed(f) for f in results):
            keep = False  # the logs and the database of a failed run stay for inspection
        return results
    finally:
        if bouncer is not None:
            bouncer.stop()
        pg.close()
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"pgbouncer scenario: kept {base} (logs, database)", file=sys.stderr)


def failed(f: PgbouncerFigures) -> bool:
    """Isolation must hold in every setting; the supported ones must also lose nothing and answer every
    request that was not a fault or a deliberate cross-province one."""
    isolation = (f.wrong_schema_rows or f.cross_tenant_reads or f.cross_tenant_ids or f.decoy_rows
                 or f.fault_rows_present or f.leftover_state_seen or f.lost or f.duplicated or f.half_written)
    return bool(isolation or (f.supported and (f.unexpected_errors or f.server_errors)))


def table(results: list[PgbouncerFigures]) -> str:
    rows = [("pgbouncer", "stmt cache", "tenants", "workers", "clients", "s", "sent", "acked", "writes acked", "2xx scanned",
             "wrong-schema rows", "cross-tenant reads", "cross-tenant ids", "decoys", "fault rows", "lost", "dup",
             "half", "leftover/probes", "server conns", "unexpected errors", "server log errors", "injected", "errors")]
    for f in results:
        rows.append((f.pgbouncer, ("on" if f.statement_cache else "off") + ("" if f.supported else " (unsupported)"),
                     str(f.tenants), str(f.web_workers), str(f.clients), f"{f.seconds:g}", str(f.sent), str(f.acknowledged),
                     str(f.writes_acknowledged),
                     str(f.reads_checked), str(f.wrong_schema_rows), str(f.cross_tenant_reads), str(f.cross_tenant_ids),
                     str(f.decoy_rows), str(f.fault_rows_present), str(f.lost), str(f.duplicated), str(f.half_written),
                     f"{f.leftover_state_seen}/{f.probes}", str(f.server_connections), str(f.unexpected_errors),
                     str(f.server_errors),
                     ", ".join(f"{k}: {v}" for k, v in f.injected.items()) or "-",
                     ", ".join(f"{k}: {v}" for k, v in f.errors.items()) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
