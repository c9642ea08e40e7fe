"""The noisy-neighbour scenario of ``benchmarks/faults.py`` (issue 23): one province must not stall the
others.

A real platform (``odr serve``, granian, one worker) with two provinces. Fujian files complaints at its
usual pace (``--noisy-rate`` per second, open loop: each arrival sent at its moment, whatever the
answers before) twice for ``--seconds``: first on a quiet platform, then while Shanghai, as its
provincial admin:
- uploads the import bombs of :mod:`benchmarks.import_bombs` (an XLSX whose sheet expands to gigabytes,
  one lying about its size, 100 MB of shared strings, a 100 MB cell, CSVs too long, too wide and with a
  giant cell), two at a time (its share of expensive work), and previews and dry-runs the same files put
  straight into its table (as if uploaded before the limits existed);
- floods consumer sign-ups (``--signups``, 40 at a time) and logins (40 at a time);
- runs an evaluation of the current month.
Printed: Fujian's intake latency p50/p99 quiet and noisy (target: noisy p99 at most 2x quiet), the
``/health`` answers meanwhile (all 200, or 503 by design, none slower than 1 s), the web worker's peak
RSS (target < 600 MB) and the import children's, every bomb's answer and time (target: 4xx within
30 s, naming the limit), what the flood and the evaluation got, and what is half-written, counted from
the tables (Fujian's complaints missing a part, import rows or runs left behind, complaints imported
from a bomb, accounts created without their 201).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
import os
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import msgspec

from benchmarks import import_bombs
from benchmarks.fault_overload import BYSTANDER, latency_figures, prepare_bystander
from benchmarks.fault_processes import Postgres, Web
from benchmarks.intake import prepare

NOISY = "shanghai"
HEALTH_SLOW = 1.0
BOMB_SECONDS = 30.0


class NoisyFigures(msgspec.Struct, kw_only=True):
    scenario: str = "noisy-neighbour"
    seconds: float
    rate: float
    quiet_latency_ms: dict[str, float] = {}
    """Fujian's acknowledged intakes on the quiet platform: p50, p99, max (ms)"""
    noisy_latency_ms: dict[str, float] = {}
    """the same while Shanghai is noisy"""
    p99_ratio: float | None = None
    quiet_answers: dict[str, int] = {}
    noisy_answers: dict[str, int] = {}
    health: dict[str, int] = {}
    """``/health`` answers during the noisy phase by status"""
    health_max_ms: float = 0.0
    health_slow: int = 0
    """``/health`` answers slower than 1 s (or none within 3 s)"""
    web_rss_mb: float = 0.0
    """peak resident memory of the web server's processes (granian and its worker), the import children excepted"""
    web_rss_before_mb: float = 0.0
    children_rss_mb: float = 0.0
    """peak resident memory of one import child process"""
    bombs: list[dict] = []
    """per bomb and action (upload, preview, dry-run): status, seconds, the limit named"""
    bombs_failed: int = 0
    """bomb answers that were wrong: an upload not refused with a 4xx naming its limit, a dry run not
    refused (4xx) or failed naming it, a preview answering neither its first rows nor a 4xx naming it"""
    bombs_slow: int = 0
    """bomb answers slower than 30 s (the target; counted from the first attempt, waits for the share included)"""
    share_refusals: int = 0
    """503 answers of Shanghai's share of expensive work (its bombs retried after Retry-After)"""
    signups: dict[str, int] = {}
    logins: dict[str, int] = {}
    flood_seconds: float = 0.0
    evaluation: str = ""
    lost: int = 0
    duplicated: int = 0
    half_written: int = 0
    """Fujian's complaints missing their event, timers, notification or facts row"""
    import_rows_left: int = 0
    """import files stored from refused uploads, runs still running, complaints imported from a bomb"""
    accounts_unanswered: int = 0
    """sign-up accounts created whose request was not answered 201"""
    server_errors: int = 0
    errors_500: int = 0


async def _admin(url: str, data_dir: str) -> str:
    """A provincial admin of :data:`NOISY` (password ``bench-password``): its username."""
    from core.auth.accounts import create_account
    from core.auth.principal import Role
    from core.db.engine import as_platform, tenant_transaction
    from core.runtime import Platform
    from core.settings import Settings

    platform = Platform(Settings(database_url=url, data_dir=data_dir))
    await platform.start()
    try:
        root = next(n for n in (await platform.nodes(NOISY)).values() if n.parent_code is None)
        username = f"noisy-admin-{uuid.uuid4().hex[:6]}"
        async with tenant_transaction(NOISY) as conn:
            async with as_platform(conn) as pconn:
                await create_account(pconn, username=username, password="bench-password", role=Role.PROVINCE_ADMIN,
                                     tenant=NOISY, node_code=root.code)
        return username
    finally:
        await platform.stop()


def make_bombs(tiny: bool) -> dict[str, tuple[str, bytes]]:
    """The bombs (name -> file name, content): the issue's sizes, or smaller ones still over the
    platform's default limits (``tiny``)."""
    gib, mib = 1024 ** 3, 1024 ** 2
    return {
        "sheet": ("sheet.xlsx", import_bombs.sheet_bomb(256 * mib if tiny else 3 * gib)),
        "sheet-lying": ("lying.xlsx", import_bombs.lying_bomb(64 * mib if tiny else 1 * gib)),
        "shared-strings": ("strings.xlsx", import_bombs.shared_strings_bomb(100 * mib)),
        "cell": ("cell.xlsx", import_bombs.cell_bomb(100 * mib)),
        "csv-rows": ("rows.csv", import_bombs.csv_rows_bomb(300_000)),
        "csv-wide": ("wide.csv", import_bombs.csv_wide_bomb(100_000)),
        "csv-cell": ("cell.csv", import_bombs.csv_cell_bomb(10 * mib)),
    }


async def paced(web: Web, token: str, enterprise_id: str, *, rate: float, seconds: float, run: str,
                acked: dict[str, float]) -> tuple[list[float], collections.Counter]:
    """Fujian's complaints, one every ``1/rate`` s for ``seconds`` (open loop), each under its own key
    (``fault-<run>-…``, counted by ``faults.count``): the latencies of the acknowledged ones and the
    answers by status."""
    body = {"company_name": "福州压测商贸有限公司", "enterprise_id": enterprise_id, "route": "odr",
            "subject": "网购商品与描述不符", "description": "收到的商品与页面描述不一致，要求退货。",
            "consumer_name": "王五", "consumer_phone": "13700001111", "consumer_address": "福建省福州市鼓楼区五四路",
            "amount_claimed": 128.0}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    answers: collections.Counter[str] = collections.Counter()

    async def one(http: httpx.AsyncClient, key: str) -> None:
        sent = time.monotonic()
        try:
            r = await http.post(f"/api/tenants/{BYSTANDER}/complaints", headers=headers,
                                content=msgspec.json.encode({**body, "idempotency_key": key}))
        except httpx.TransportError as exc:
            answers[f"connection: {type(exc).__name__}"] += 1
            return
        answers[str(r.status_code)] += 1
        if r.status_code in (200, 201):
            acked[key] = time.monotonic()
            latencies.append(time.monotonic() - sent)

    async with httpx.AsyncClient(base_url=web.base, timeout=30, limits=httpx.Limits(max_connections=64)) as http:
        start = time.monotonic()
        tasks = []
        n = 0
        while (at := start + n / rate) < start + seconds:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            tasks.append(asyncio.create_task(one(http, f"fault-{run}-{uuid.uuid4().hex[:12]}")))
            n += 1
        await asyncio.gather(*tasks)
    return latencies, answers


async def watch_health(web: Web, stop: asyncio.Event, figures: NoisyFigures) -> None:
    seen: collections.Counter[str] = collections.Counter()
    async with httpx.AsyncClient(timeout=3) as http:
        while not stop.is_set():
            began = time.monotonic()
            try:
                r = await http.get(web.base + "/health")
                seen[str(r.status_code)] += 1
            except httpx.TransportError as exc:
                seen[f"connection: {type(exc).__name__}"] += 1
            took = time.monotonic() - began
            figures.health_max_ms = max(figures.health_max_ms, round(took * 1000, 1))
            figures.health_slow += took > HEALTH_SLOW
            await asyncio.sleep(max(0.0, 0.25 - took))
    figures.health = dict(sorted(seen.items()))


async def watch_memory(web: Web, stop: asyncio.Event, figures: NoisyFigures) -> None:
    """Peak RSS of the web server's processes and, apart, of the import children they start."""
    import psutil

    while not stop.is_set():
        try:
            root = psutil.Process(web.proc.pid)
            for p in [root] + root.children(recursive=True):
                rss = p.memory_info().rss / 2**20
                if "core.imports.isolation" in " ".join(p.cmdline()):
                    figures.children_rss_mb = max(figures.children_rss_mb, round(rss, 1))
                else:
                    figures.web_rss_mb = max(figures.web_rss_mb, round(rss, 1))
        except psutil.Error:
            pass
        await asyncio.sleep(0.2)


async def _until_admitted(send, figures: NoisyFigures, deadline: float):
    """``send()`` repeated while Shanghai's share of expensive work is taken (503 with Retry-After)."""
    while True:
        r = await send()
        if r.status_code != 503 or time.monotonic() > deadline:
            return r
        figures.share_refusals += 1
        await asyncio.sleep(float(r.headers.get("retry-after", "1")))


async def bombard(web: Web, token: str, bombs: dict[str, tuple[str, bytes]], stored: dict[str, str],
                  figures: NoisyFigures) -> None:
    """Every bomb uploaded, and every stored one previewed and dry-run, two at a time; each answer's
    status, time (from the first attempt) and the limit it names."""
    headers = {"Authorization": f"Bearer {token}"}
    base = f"/api/tenants/{NOISY}/imports"
    jobs = [(name, "upload") for name in bombs] + [(name, action) for name in stored for action in ("preview", "dry-run")]
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def lane(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            name, action = queue.get_nowait()
            filename, content = bombs[name]
            if action == "upload":
                def send():
                    return http.post(base + "/", headers=headers, files={"file": (filename, content)})
            elif action == "preview":
                def send():
                    return http.get(f"{base}/{stored[name]}/preview", headers=headers)
            else:
                def send():
                    return http.post(f"{base}/{stored[name]}/dry-run?wait=true", headers=headers)
            began = time.monotonic()
            try:
                r = await _until_admitted(send, figures, began + BOMB_SECONDS)
                status, detail = r.status_code, r.text[:400]
            except httpx.TransportError as exc:
                status, detail = 0, type(exc).__name__
            took = round(time.monotonic() - began, 2)
            named = "ODR_IMPORT_" in detail
            if action == "upload":
                ok = 400 <= status < 500 and named
            elif action == "dry-run" and status == 200:  # the header was readable: the run failed naming the limit
                ok = named and '"failed"' in detail
            else:  # a preview reads the first rows only: 200 when they are within the limits
                ok = status == 200 or (400 <= status < 500 and named)
            figures.bombs_failed += not ok
            figures.bombs_slow += took > BOMB_SECONDS
            limit = next((w.strip('",:()') for w in detail.split() if w.strip('",:()').startswith("ODR_IMPORT_")), "-")
            figures.bombs.append({"bomb": name, "action": action, "bytes": len(content), "status": status,
                                  "seconds": took, "limit": limit, "ok": ok, "slow": took > BOMB_SECONDS})

    async with httpx.AsyncClient(base_url=web.base, timeout=BOMB_SECONDS * 4) as http:
        await asyncio.gather(lane(http), lane(http))


async def flood(web: Web, consumer: str, signups: int, figures: NoisyFigures, tag: str) -> None:
    """``signups`` anonymous consumer sign-ups of Shanghai, 40 at a time, then 40 parallel logins of one
    of its consumers: their answers by status (none of either when ``signups`` is 0: the import and
    evaluation noise alone)."""
    if not signups:
        return
    began = time.monotonic()
    signed: collections.Counter[str] = collections.Counter()
    logged: collections.Counter[str] = collections.Counter()

    async def sign_up(http: httpx.AsyncClient, i: int) -> None:
        try:
            r = await http.post(f"/public/{NOISY}/consumers",
                                json={"username": f"flood-{tag}-{i}", "password": "flood-password-1"})
            signed[str(r.status_code)] += 1
        except httpx.TransportError as exc:
            signed[f"connection: {type(exc).__name__}"] += 1

    async def log_in(http: httpx.AsyncClient) -> None:
        try:
            r = await http.post("/api/auth/login", json={"username": consumer, "password": "bench-password"})
            logged[str(r.status_code)] += 1
        except httpx.TransportError as exc:
            logged[f"connection: {type(exc).__name__}"] += 1

    async with httpx.AsyncClient(base_url=web.base, timeout=60, limits=httpx.Limits(max_connections=40)) as http:
        for first in range(0, signups, 40):
            await asyncio.gather(*(sign_up(http, i) for i in range(first, min(signups, first + 40))))
        await asyncio.gather(*(log_in(http) for _ in range(40)))
    figures.signups = dict(sorted(signed.items()))
    figures.logins = dict(sorted(logged.items()))
    figures.flood_seconds = round(time.monotonic() - began, 2)


async def evaluate(web: Web, token: str, figures: NoisyFigures) -> None:
    """An evaluation run of Shanghai's current month (the period made first): its answer and time."""
    headers = {"Authorization": f"Bearer {token}"}
    began = time.monotonic()
    async with httpx.AsyncClient(base_url=web.base, timeout=120) as http:
        first = dt.date.today().replace(day=1).isoformat()
        r = await http.post(f"/api/tenants/{NOISY}/evaluation-periods", headers=headers,
                            json={"kind": "monthly", "starts_on": first})
        if r.status_code not in (200, 201):
            figures.evaluation = f"period {r.status_code}"
            return
        r = await http.post(f"/api/tenants/{NOISY}/evaluation-periods/{r.json()['id']}/evaluations", headers=headers)
    figures.evaluation = f"{r.status_code} in {time.monotonic() - began:.2f} s"


async def store_directly(url: str, bombs: dict[str, tuple[str, bytes]]) -> dict[str, str]:
    """Every bomb put into Shanghai's import files as if uploaded before the limits existed: name -> id."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        node = await conn.fetchval(f"SELECT code FROM t_{NOISY}.jurisdictions WHERE parent_code IS NULL")
        ids = {}
        for name, (filename, content) in bombs.items():
            ids[name] = str(await conn.fetchval(
                f"""INSERT INTO t_{NOISY}.import_files (kind, filename, format, size, sha256, content, uploaded_by, node_code)
                    VALUES ('complaints', $1, $2, $3, $4, $5, 'noisy-bench', $6) RETURNING id""",
                filename, filename.rsplit(".", 1)[1], len(content), hashlib.sha256(content).hexdigest(), content, node))
        return ids
    finally:
        await conn.close()


async def leftovers(url: str, figures: NoisyFigures, signed: int) -> None:
    """What the noise left half-written, from the tables."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        files = await conn.fetchval(f"SELECT count(*) FROM t_{NOISY}.import_files WHERE uploaded_by <> 'noisy-bench'")
        running = await conn.fetchval(f"SELECT count(*) FROM t_{NOISY}.import_runs WHERE status = 'running'")
        imported = await conn.fetchval(f"SELECT count(*) FROM t_{NOISY}.complaints WHERE source = 'imported'")
        accounts = await conn.fetchval("SELECT count(*) FROM odr.accounts WHERE username LIKE 'flood-%'")
    finally:
        await conn.close()
    figures.import_rows_left = files + running + imported
    figures.accounts_unanswered = accounts - signed


async def scenario(*, seconds: float, rate: float, signups: int, tiny: bool) -> NoisyFigures:
    from benchmarks.faults import count, remove_scratch

    base = Path(tempfile.mkdtemp(prefix="odr-faults-noisy-"))
    figures = NoisyFigures(seconds=seconds, rate=rate)
    pg = Postgres(base)
    web = None
    keep = True
    try:
        data_dir = str(base / "data")
        os.makedirs(data_dir)
        noisy = await prepare(pg.url, data_dir)
        calm = await prepare_bystander(pg.url, data_dir)
        admin = await _admin(pg.url, data_dir)
        bombs = await asyncio.to_thread(make_bombs, tiny)
        stored = await store_directly(pg.url, bombs)
        web = Web(pg.url, data_dir)
        web.start()
        await web.wait_ready()
        async with httpx.AsyncClient(base_url=web.base) as http:
            tokens = {}
            for who in (calm["consumer"], admin):
                r = await http.post("/api/auth/login", json={"username": who, "password": "bench-password"})
                tokens[who] = r.json()["token"]
        import psutil

        figures.web_rss_before_mb = round(max(p.memory_info().rss for p in [psutil.Process(web.proc.pid)]
                                              + psutil.Process(web.proc.pid).children(recursive=True)) / 2**20, 1)
        run = uuid.uuid4().hex[:10]
        acked: dict[str, float] = {}
        quiet, quiet_answers = await paced(web, tokens[calm["consumer"]], calm["enterprise_id"], rate=rate,
                                           seconds=seconds, run=run, acked=acked)
        stop = asyncio.Event()
        watchers = [asyncio.create_task(watch_health(web, stop, figures)),
                    asyncio.create_task(watch_memory(web, stop, figures))]
        noise = asyncio.gather(bombard(web, tokens[admin], bombs, stored, figures),
                               flood(web, noisy["consumer"], signups, figures, run),
                               evaluate(web, tokens[admin], figures))
        noisy_lat, noisy_answers = await paced(web, tokens[calm["consumer"]], calm["enterprise_id"], rate=rate,
                                               seconds=seconds, run=run, acked=acked)
        await noise
        stop.set()
        await asyncio.gather(*watchers)
        figures.quiet_latency_ms = latency_figures([t * 1000 for t in quiet])
        figures.noisy_latency_ms = latency_figures([t * 1000 for t in noisy_lat])
        if quiet and noisy_lat:
            figures.p99_ratio = round(figures.noisy_latency_ms["p99"] / max(figures.quiet_latency_ms["p99"], 0.1), 2)
        figures.quiet_answers = dict(sorted(quiet_answers.items()))
        figures.noisy_answers = dict(sorted(noisy_answers.items()))
        from benchmarks.faults import Figures

        counted = Figures(scenario=BYSTANDER, clients=0, seconds=seconds)
        await count(pg.url, run, counted, acked, tenant=BYSTANDER)
        figures.lost, figures.duplicated, figures.half_written = counted.lost, counted.duplicated, counted.half_written
        await leftovers(pg.url, figures, figures.signups.get("201", 0))
        figures.errors_500 = (quiet_answers.get("500", 0) + noisy_answers.get("500", 0) + figures.signups.get("500", 0)
                              + figures.logins.get("500", 0) + sum(b["status"] >= 500 and b["status"] != 503
                                                                   for b in figures.bombs))
        figures.server_errors = len(web.server_errors())
        keep = failed(figures)
        return figures
    finally:
        if web is not None:
            web.stop()
        pg.close()
        remove_scratch(base, keep=keep)


def failed(f: NoisyFigures) -> bool:
    """The guarantees (not the targets: latency, memory, 30 s per bomb): Fujian loses nothing, nothing
    half-written, no 500, every bomb refused with a 4xx naming its limit (or its run failed naming it)."""
    return bool(f.lost or f.duplicated or f.half_written or f.import_rows_left or f.accounts_unanswered
                or f.errors_500 or f.bombs_failed or not f.bombs)


def report(f: NoisyFigures) -> str:
    lines = [
        f"noisy neighbour ({os.cpu_count()} cores; {BYSTANDER} files {f.rate:g}/s for {f.seconds:g} s quiet, then "
        f"{f.seconds:g} s while {NOISY} is noisy)",
        f"  {BYSTANDER} intake p50/p99/max: quiet {'/'.join(f'{v:g}' for v in f.quiet_latency_ms.values()) or '-'} ms, "
        f"noisy {'/'.join(f'{v:g}' for v in f.noisy_latency_ms.values()) or '-'} ms: p99 x{f.p99_ratio} (target <= 2); "
        f"answers quiet {f.quiet_answers}, noisy {f.noisy_answers}",
        f"  /health meanwhile: {f.health}; slowest {f.health_max_ms:g} ms, {f.health_slow} slower than 1 s",
        f"  web server peak RSS {f.web_rss_mb:g} MB (at start {f.web_rss_before_mb:g} MB; target < 600); "
        f"largest import child {f.children_rss_mb:g} MB",
        f"  {NOISY}: sign-ups {f.signups}, logins {f.logins} in {f.flood_seconds:g} s; evaluation {f.evaluation}; "
        f"{f.share_refusals} refusals of its share of expensive work (retried)",
        f"  bombs (4xx naming the limit; target: within 30 s): {f.bombs_failed} wrong, {f.bombs_slow} slower than 30 s",
    ]
    for b in f.bombs:
        lines.append(f"    {b['bomb']:<15} {b['action']:<8} {b['bytes']:>12,} B  {b['status']}  {b['seconds']:>6.2f} s  "
                     f"{b['limit']}{'' if b['ok'] else '  FAILED'}{'  SLOW' if b['slow'] else ''}")
    lines.append(f"  half-written: {BYSTANDER} lost / duplicated / half {f.lost} / {f.duplicated} / {f.half_written}; "
                 f"import rows left {f.import_rows_left}; accounts without their 201 {f.accounts_unanswered}; "
                 f"500 answers {f.errors_500}; server log errors {f.server_errors}")
    return "\n".join(lines)
