"""Logins and sign-ups in bursts, against a real server (issue 23): does password hashing stall the web
process for everyone, and does the lockout hold under parallel guessing?

  .venv/bin/python benchmarks/logins.py          # 40 at a time
  .venv/bin/python benchmarks/logins.py --tiny   # 8 at a time (the test suite runs it)

A real platform (``odr serve``, granian, one worker) on its own embedded PostgreSQL and ``valkey-server``,
with the demo provinces and ``N`` consumer accounts in Shanghai. Phases, each printed as a row:

- ``quiet``: ``/health`` and a Jiangsu consumer's login, one after the other, nothing else running;
- ``N parallel logins``: ``N`` Shanghai consumers log in at once; meanwhile ``/health`` every 50 ms;
- ``N parallel sign-ups``: ``N`` Shanghai sign-ups at once; meanwhile ``/health`` every 50 ms and the
  Jiangsu consumer's logins one after the other (another province's latency against the quiet row);
- ``N parallel wrong passwords``: for one account at once; how many were checked (401) and refused
  (429), then the right password's answer.

The sign-up rate limits are lifted for the run (``ODR_SIGNUP_RATE_*``): the bursts measure the event
loop and the password pool, not the limits (tests/test_password_pool.py checks those). Figures are
printed, never asserted (compare the rows of one run: ``/health`` during a burst against quiet).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fault_processes import SECRET, Postgres, Valkey, Web  # noqa: E402

PASSWORD = "bench-password"
OTHER = ("jsu-consumer", "demo12315")  # a Jiangsu demo consumer


async def prepare(url: str, data_dir: str, accounts: int) -> list[str]:
    from core.auth.accounts import create_account
    from core.auth.principal import Role
    from core.db.engine import platform_transaction
    from core.runtime import Platform
    from core.settings import Settings
    from tenants.manifest import demo_manifests
    from tenants.onboarding import onboard

    platform = Platform(Settings(database_url=url, data_dir=data_dir, secret_key=SECRET))
    await platform.start()
    try:
        for manifest in demo_manifests():
            await onboard(manifest, host=platform.host, actor="bench", demo=True)
        names = [f"bl-{i:03d}" for i in range(accounts + 1)]
        async with platform_transaction() as conn:
            for name in names:
                await create_account(conn, username=name, password=PASSWORD, role=Role.CONSUMER, tenant="shanghai")
        return names
    finally:
        await platform.stop()


class Probe:
    """``/health`` every 50 ms until stopped: latencies and statuses."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http, self.latencies, self.statuses = http, [], collections.Counter()
        self.stop = asyncio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                status = (await self.http.get("/health")).status_code
            except httpx.TransportError as exc:
                status = type(exc).__name__
            self.latencies.append(time.perf_counter() - started)
            self.statuses[str(status)] += 1
            await asyncio.sleep(0.05)


async def timed(coro) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    r = await coro
    return time.perf_counter() - started, r


def ms(values: list[float]) -> str:
    if not values:
        return "-"
    return f"p50 {statistics.median(values) * 1000:,.0f} ms, max {max(values) * 1000:,.0f} ms (n={len(values)})"


def statuses(answers) -> str:
    counted = collections.Counter(r.status_code for r in answers)
    return ", ".join(f"{k}: {v}" for k, v in sorted(counted.items()))


async def login(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post("/api/auth/login", json={"username": username, "password": password})


async def phases(base: str, names: list[str], n: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=httpx.Limits(max_connections=200)) as http:
        health = [(await timed(http.get("/health")))[0] for _ in range(10)]
        other = [(await timed(login(http, *OTHER)))[0] for _ in range(3)]
        rows.append(("quiet", f"/health {ms(health)}; Jiangsu login {ms(other)}"))

        probe = Probe(http)
        watcher = asyncio.create_task(probe.run())
        started = time.perf_counter()
        answers = await asyncio.gather(*(login(http, name) for name in names[:n]))
        wall = time.perf_counter() - started
        probe.stop.set()
        await watcher
        rows.append((f"{n} parallel logins", f"all done in {wall:.2f} s ({statuses(answers)}); "
                                             f"/health meanwhile {ms(probe.latencies)} {dict(probe.statuses)}"))

        probe = Probe(http)
        watcher = asyncio.create_task(probe.run())
        stop_other = asyncio.Event()
        other_latencies: list[float] = []

        async def other_logins() -> None:
            while not stop_other.is_set():
                seconds, r = await timed(login(http, *OTHER))
                if r.status_code == 200:
                    other_latencies.append(seconds)

        others = asyncio.create_task(other_logins())
        started = time.perf_counter()
        answers = await asyncio.gather(*(http.post("/public/shanghai/consumers", json={
            "username": f"bs-{i}-{int(started)}", "password": PASSWORD}) for i in range(n)))
        wall = time.perf_counter() - started
        stop_other.set()
        probe.stop.set()
        await asyncio.gather(watcher, others)
        rows.append((f"{n} parallel sign-ups", f"all answered in {wall:.2f} s ({statuses(answers)}); /health meanwhile "
                                               f"{ms(probe.latencies)} {dict(probe.statuses)}; Jiangsu login meanwhile "
                                               f"{ms(other_latencies)}"))

        victim = names[n]
        started = time.perf_counter()
        answers = await asyncio.gather(*(login(http, victim, f"wrong-{i}") for i in range(n)))
        wall = time.perf_counter() - started
        right = await login(http, victim)
        rows.append((f"{n} parallel wrong passwords, one account",
                     f"{wall:.2f} s; checked (401) and refused (429): {statuses(answers)}; then the right password: "
                     f"{right.status_code}"))
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="8 at a time instead of 40")
    args = parser.parse_args()
    n = 8 if args.tiny else 40
    base = Path(tempfile.mkdtemp(prefix="odr-bench-logins-"))
    pg = Postgres(base)
    valkey = Valkey(base)
    valkey.start()
    web = None
    try:
        (base / "data").mkdir()
        names = await prepare(pg.url, str(base / "data"), n)
        web = Web(pg.url, str(base / "data"), {"ODR_VALKEY_URL": valkey.url, "ODR_SIGNUP_RATE_PER_MINUTE": "100000",
                                                "ODR_SIGNUP_RATE_PER_PROVINCE_PER_MINUTE": "100000"})
        web.start()
        await web.wait_ready()
        rows = await phases(web.base, names, n)
        errors = web.server_errors()
    finally:
        if web is not None:
            web.stop()
        valkey.kill()
        pg.close()
        shutil.rmtree(base, ignore_errors=True)
    width = max(len(name) for name, _ in rows)
    print("SUMMARY")
    for name, figures in rows:
        print(f"{name.ljust(width)} | {figures}")
    print(f"server log errors: {len(errors)}")


if __name__ == "__main__":
    asyncio.run(main())
