"""The benchmarks run end to end (``--tiny``): tenancy against the session's PostgreSQL; intake and the
console's page loads (in chromium) on their own.

Only that it completes and prints its figures is checked: no timing is asserted here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def test_tenancy_benchmark_tiny_runs_and_prints_its_figures(pg_url):
    env = {**os.environ, "ODR_DATABASE_URL": pg_url, "PYTHONUNBUFFERED": "1"}
    env.pop("ODR_VALKEY_URL", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "tenancy.py"), "--tiny", "--prefix", "bt"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr}"
    assert "ODR_DATABASE_URL" in out  # it used the session's server, not an embedded one
    summary = out.split("\nSUMMARY\n", 1)[1]
    for pattern in [
        rf"onboard, all +\| 8 tenants: mean {NUMBER} ms, p50 {NUMBER} ms, p95 {NUMBER} ms",
        rf"odr migrate, 3 tenants, nothing pending +\| {NUMBER} s, {NUMBER} tenants/s",
        rf"odr migrate, 3 tenants, 1 migration pending +\| {NUMBER} s, {NUMBER} tenants/s",
        rf"odr migrate, 8 tenants, nothing pending +\| {NUMBER} s, {NUMBER} tenants/s",
        rf"odr migrate, 8 tenants, 1 migration pending +\| {NUMBER} s, {NUMBER} tenants/s",
        rf"bare asyncpg pool.*\| {NUMBER} req/s, p50 {NUMBER} ms, p99 {NUMBER} ms",
        rf"unswitched: ENGINE.transaction\(\).*\| {NUMBER} req/s, p50 {NUMBER} ms, p99 {NUMBER} ms",
        rf"switched: tenant_transaction over 8 tenants +\| {NUMBER} req/s, p50 {NUMBER} ms, p99 {NUMBER} ms",
        rf"switched ÷ unswitched, tenant_transaction over 8 tenants +\| {NUMBER} ",
        rf"offboard .*\| 8 tenants in {NUMBER} s",
    ]:
        assert re.search(pattern, summary), f"missing {pattern!r} in:\n{summary}"
    assert "[forwards]" not in out  # piccolo's migration chatter is kept out of the report


async def test_tenancy_benchmark_left_nothing_behind(platform):
    from core.db.engine import platform_transaction

    async with platform_transaction() as conn:
        assert await conn.fetchval("SELECT count(*) FROM odr.tenants WHERE slug ~ '^bt[0-9]{4}$'") == 0
        assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname ~ '^t_bt[0-9]{4}$'") == 0
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 'bt_plain'") == 0


def run_tiny(script: str, tmp_path, **env_extra: str) -> str:
    """Run ``benchmarks/<script> --tiny`` on its own throw-away servers (no ODR_* settings of the test
    session); its stdout, after asserting it exited 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODR_")}
    env.update({"PYTHONUNBUFFERED": "1", "XDG_RUNTIME_DIR": str(tmp_path), **env_extra})
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--tiny"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr[-3000:]}"
    return out


def test_intake_benchmark_tiny_runs_and_prints_its_figures(tmp_path):
    """The intake benchmark on its own throw-away embedded PostgreSQL and a real server process."""
    out = run_tiny("intake.py", tmp_path)
    for pattern in [
        rf"HTTP intake \(full work\) +{NUMBER} +{NUMBER} +{NUMBER}",
        rf"intake service, no HTTP +{NUMBER} +{NUMBER} +{NUMBER}",
        rf"asyncpg insert \(ceiling\) +{NUMBER} +{NUMBER} +{NUMBER}",
        rf"ratio intake / ceiling: {NUMBER}",
        rf"web floor \(authenticated GET /api/auth/me, no work\): {NUMBER}/s = {NUMBER} x ceiling, web CPU {NUMBER} ms"
        r" per request \(statuses \{200: \d+\}\)",
    ]:
        assert re.search(pattern, out), f"missing {pattern!r} in:\n{out}"
    rows = re.search(r"rows: (\d+) complaints filed, (\d+) of them with exactly 1 event", out)
    assert rows and rows.group(1) == rows.group(2)


def test_pages_benchmark_tiny_runs_and_prints_its_figures(tmp_path):
    """The console's page-load benchmark in chromium, on its own embedded PostgreSQL and server process."""
    from tests.ui_browser import chromium_path

    out = run_tiny("pages.py", tmp_path, ODR_TEST_CHROMIUM=chromium_path())
    for page in ("public directory", "bureau work queue \\(open\\)", "complaint page", "policy page", "enterprise inbox",
                 "consumer: my complaints", "operator"):
        assert re.search(rf"{page} +{NUMBER} +{NUMBER} +{NUMBER}  (ok|OVER)", out), f"missing {page!r} in:\n{out}"
    assert re.search(r"SUMMARY pages 18, over target \d+", out)


def test_clusters_benchmark_tiny_runs_and_prints_its_figures(tmp_path):
    """Intake with tenants on one cluster versus two, on two throw-away embedded servers."""
    out = run_tiny("clusters.py", tmp_path)
    for pattern in [
        rf"one cluster +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}",
        rf"two clusters +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}",
        rf"ratio two clusters / one cluster: intake {NUMBER}, one-row tenant transactions {NUMBER}",
        r"NOTE: both PostgreSQL servers run on this machine.*not the gain of a second database host",
    ]:
        assert re.search(pattern, out), f"missing {pattern!r} in:\n{out}"
    filed = re.search(r"rows: (\d+) complaints filed on the second cluster's tenant", out)
    assert filed and int(filed.group(1)) > 0

def test_import_benchmark_tiny_runs_and_prints_its_figures(pg_url):
    """The import benchmark (issue 15) on the session's PostgreSQL, in a tenant of its own."""
    env = {**os.environ, "ODR_DATABASE_URL": pg_url, "PYTHONUNBUFFERED": "1"}
    env.pop("ODR_VALKEY_URL", None)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "imports.py"), "--tiny", "--tenant", "importbenchtiny"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr}"
    summary = out.split("\nSUMMARY", 1)[1]
    for pattern in [
        rf"CSV dry run +\| 2,000 rows in {NUMBER} s: [0-9,]+ rows/s \(created 1,960, already present 0, refused 40\)",
        rf"CSV import +\| 2,000 rows in {NUMBER} s: [0-9,]+ rows/s \(created 1,960, already present 0, refused 40\)",
        rf"CSV again \(all present\) +\| 2,000 rows in {NUMBER} s: [0-9,]+ rows/s \(created 0, already present 1,960, refused 40\)",
        r"stored +\| 1,960 complaints, 1,960 events, [0-9,]+ timers, 1,960 facts rows",
        rf"XLSX read \+ dry run +\| 200 rows in {NUMBER} s: [0-9,]+ rows/s",
    ]:
        assert re.search(pattern, summary), f"missing {pattern!r} in:\n{summary}"


def test_logins_benchmark_tiny_runs_and_prints_its_figures(tmp_path):
    """Bursts of logins, sign-ups and wrong passwords (issue 23) against a real server with its own
    PostgreSQL and Valkey; the lockout's figure is a count, so it is checked: at most the limit checked."""
    from tests.servers import require_valkey_server

    require_valkey_server()
    out = run_tiny("logins.py", tmp_path)
    for pattern in [
        rf"quiet +\| /health p50 {NUMBER} ms, max [0-9,]+ ms \(n=10\); Jiangsu login p50 [0-9,]+ ms",
        rf"8 parallel logins +\| all done in {NUMBER} s \(200: 8\); /health meanwhile p50 [0-9,]+ ms",
        rf"8 parallel sign-ups +\| all answered in {NUMBER} s \(201: 8\); /health meanwhile p50 [0-9,]+ ms",
        rf"8 parallel wrong passwords, one account +\| {NUMBER} s; checked \(401\) and refused \(429\): 401: 8; "
        r"then the right password: 200",
    ]:
        assert re.search(pattern, out), f"missing {pattern!r} in:\n{out}"
    assert "server log errors: 0" in out


def test_plugin_isolation_benchmark_tiny_runs_and_prints_its_figures(tmp_path):
    """Issue 24: another province's intake with a misbehaving isolated plugin active vs not, and the
    overhead of isolation, on a throw-away embedded PostgreSQL."""
    out = run_tiny("plugin_isolation.py", tmp_path)
    for pattern in [
        rf"Jiangsu intake, plugin inactive +{NUMBER} +{NUMBER} +{NUMBER}",
        rf"Jiangsu intake, plugin active +{NUMBER} +{NUMBER} +{NUMBER}",
        rf"Shanghai 310115 intake, plugin active +{NUMBER} +{NUMBER} +{NUMBER}",
        rf"ratio Jiangsu p99 active / inactive: {NUMBER}",
        r"isolated worker: [1-9]\d* restarts, [1-9]\d* killed for overrunning; at 310115: .*breaker open;"
        r" deadline policies of the district's complaints: .*odr_national_deadline",
        rf"Jinshan intake, deadline plugin in-process +{NUMBER} +{NUMBER} +{NUMBER}",
        rf"Jinshan intake, deadline plugin isolated +{NUMBER} +{NUMBER} +{NUMBER}",
        rf"evaluation, scorer isolated +median {NUMBER} s \(scoring phase {NUMBER} s; 299 of 300 units scored\)",
        rf"ratio evaluation time isolated / in-process: {NUMBER}",
    ]:
        assert re.search(pattern, out), f"missing {pattern!r} in:\n{out}"
