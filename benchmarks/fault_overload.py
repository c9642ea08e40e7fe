"""The overload scenario of ``benchmarks/faults.py`` (issue 12): the sustainable intake rate measured
closed-loop, then ten times it offered open-loop by client processes (``benchmarks/overload_client.py``)
pinned to other CPUs than the server side; what was sent, answered, acknowledged and how fast, the web
server's memory and the CPU the server side used. The scenario's frame (servers, counting lost and
duplicated complaints from the tables, the recovery load) is ``faults.scenario``."""

from __future__ import annotations

import asyncio
import collections
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import msgspec

from benchmarks.fault_processes import Web

if TYPE_CHECKING:
    from benchmarks.faults import Figures, Load

ROOT = Path(__file__).resolve().parent.parent
BYSTANDER = "fujian"
"""The province filing at its usual pace while another one (Shanghai) surges"""
BYSTANDER_CLIENTS = 4


async def prepare_bystander(url: str, data_dir: str) -> dict:
    """Onboard :data:`BYSTANDER` beside the benchmark's Shanghai, with an enterprise in 鼓楼区 and a consumer
    account (``benchmarks.intake.prepare``)."""
    from benchmarks.intake import prepare

    return await prepare(url, data_dir, tenant=BYSTANDER, node="350102", company="福州压测商贸有限公司")


async def bystander_load(bystander: "Load", *, start_in: float, seconds: float) -> None:
    """:data:`BYSTANDER_CLIENTS` closed-loop clients of the bystander province (each repeating a refused
    complaint after its ``Retry-After``) from ``start_in`` s on, for ``seconds``."""
    await asyncio.sleep(start_in)
    bystander.until = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=bystander.web.base, timeout=10,
                                 limits=httpx.Limits(max_connections=BYSTANDER_CLIENTS)) as http:
        bystander.http = http
        await asyncio.gather(*(bystander.client() for _ in range(BYSTANDER_CLIENTS)))


async def watch_rss(web: Web, figures: Figures, *, until: float) -> None:
    """The largest resident memory of the web server's processes (granian and its worker)."""
    import psutil

    top = 0.0
    while time.monotonic() < until:
        try:
            procs = [psutil.Process(web.proc.pid)] + psutil.Process(web.proc.pid).children(recursive=True)
            top = max([top] + [p.memory_info().rss / 2**20 for p in procs])
        except psutil.Error:
            pass
        await asyncio.sleep(0.5)
    figures.server_rss_mb = round(top, 1)


def latency_figures(latencies_ms: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    return {"p50": round(ordered[len(ordered) // 2], 1), "p99": round(ordered[int(len(ordered) * 0.99)], 1),
            "max": round(ordered[-1], 1)} if ordered else {}


def cpu_split(spec: str) -> tuple[set[int], set[int]] | None:
    """overload: the CPUs of the server side (web server, PostgreSQL) and of the load generator.

    ``auto``: with two or more CPUs available, the first half for the server side, the rest for the
    clients (on 2 cores: CPU 0 and CPU 1), so that the generator can offer ten times what the server
    sustains without taking the server's CPU; ``off``: no pinning; ``0/1`` or ``0,1/2,3``: explicit."""
    if spec == "off":
        return None
    if spec == "auto":
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return None
        half = len(cpus) // 2
        return set(cpus[:half]), set(cpus[half:])
    server, _, client = spec.partition("/")
    return {int(c) for c in server.split(",")}, {int(c) for c in client.split(",")}


async def run_clients(web: Web, token: str, load: Load, *, tag: str, processes: int, seconds: float,
                      cpus: set[int] | None, options: list[str]) -> list[dict]:
    """Run ``processes`` client processes (benchmarks/overload_client.py with ``options``) from the same
    moment for ``seconds``; merge every key they sent and acknowledged into ``load`` (so that lost /
    duplicated are counted from the tables) and return their JSON reports."""
    start_at = time.time() + 2.0  # the processes start (imports) before the first arrival
    body = msgspec.json.encode(load.body).decode()
    pin = ["--cpus", ",".join(map(str, sorted(cpus)))] if cpus else []
    outs = [Path(web.data_dir) / f"client-{tag}{i}.json" for i in range(processes)]
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "benchmarks" / "overload_client.py"), "--port", str(web.port), "--token", token,
        "--body", body, "--prefix", f"fault-{load.run}-{tag}{i}-", "--seconds", str(seconds),
        "--start-at", str(start_at), "--out", str(out), *pin, *options) for i, out in enumerate(outs)]
    codes = await asyncio.gather(*(p.wait() for p in procs))
    if any(codes):
        raise SystemExit(f"a client process failed: exit codes {codes}")
    now = time.monotonic()
    reports = [msgspec.json.decode(out.read_bytes()) for out in outs]
    for r in reports:
        load.sent.extend(r["sent"])
        load.acked.update((k, now) for k in r["acked"])
    return reports


async def calibrate_rate(web: Web, token: str, load: Load, figures: Figures, *, seconds: float,
                         cpus: set[int] | None) -> None:
    """The sustainable rate: acknowledged intakes per second of ``figures.clients`` closed-loop
    connections from one client process (on the clients' CPUs) for ``seconds``."""
    (r,) = await run_clients(web, token, load, tag="c", processes=1, seconds=seconds, cpus=cpus,
                             options=["--closed", str(figures.clients)])
    figures.requests += sum(r["statuses"].values())
    load.ok += len(r["acked"])
    figures.sustainable_rate = round(len(r["acked"]) / r["offered_seconds"], 1)
    figures.calibration_latency_ms = latency_figures(r["latencies"])


async def overload(web: Web, token: str, load: Load, figures: Figures, *, seconds: float, factor: float,
                   processes: int, cpus: set[int] | None, server_pids: list[int], bystander: Load | None = None) -> None:
    """Offer ``factor`` x the sustainable rate open-loop for ``seconds`` from ``processes`` client
    processes (benchmarks/overload_client.py) and fill the overload figures (answers, latency of
    acknowledged intakes from the write and from the scheduled arrival, the web server's peak RSS, the
    CPU the server side used)."""
    import psutil

    figures.offered_rate = round(factor * figures.sustainable_rate, 1)
    figures.client_processes = processes
    server = [psutil.Process(pid) for pid in server_pids]
    cpu_before = server_cpu_seconds(server)
    rss = asyncio.create_task(watch_rss(web, figures, until=time.monotonic() + 2.0 + seconds))
    calm = asyncio.create_task(bystander_load(bystander, start_in=2.0, seconds=seconds)) if bystander else None
    began = time.monotonic()
    reports = await run_clients(
        web, token, load, tag="o", processes=processes, seconds=seconds, cpus=cpus,
        options=["--rate", str(figures.offered_rate / processes),
                 "--max-connections", str(max(64, figures.max_connections // processes))])
    await rss
    if calm is not None:
        await calm
        answered = bystander.ok + sum(bystander.errors.values())
        figures.bystander_success = round(bystander.ok / answered, 4) if answered else None
        figures.bystander_acknowledged = len(bystander.acked)
        figures.bystander_latency_ms = latency_figures([t * 1000 for t in bystander.latencies])
        figures.bystander_errors = dict(sorted(bystander.errors.items()))
    figures.server_cpu_share = round((server_cpu_seconds(server) - cpu_before) / (time.monotonic() - began), 2)
    answers: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    scheduled: list[float] = []
    refused: list[float] = []
    sent = 0
    offered_seconds = 0.0
    lag = 0.0
    for r in reports:
        answers.update(r["statuses"])
        latencies.extend(r["latencies"])
        scheduled.extend(r["late_latencies"])
        refused.extend(r["refused_latencies"])
        sent += len(r["sent"])
        figures.not_offered += r["not_offered"]
        figures.retry_after_missing += r["retry_after_missing"]
        offered_seconds = max(offered_seconds, r["offered_seconds"])
        lag = max(lag, r["lag_p99_ms"])
    figures.requests += sent
    figures.answers = dict(sorted(answers.items()))
    load.errors.update({k: v for k, v in answers.items() if k not in ("200", "201")})
    load.ok += answers.get("201", 0) + answers.get("200", 0)
    figures.latency_ms = latency_figures(latencies)
    figures.scheduled_latency_ms = latency_figures(scheduled)
    figures.refused_latency_ms = latency_figures(refused)
    figures.goodput_rate = round((answers.get("201", 0) + answers.get("200", 0)) / offered_seconds, 1) if offered_seconds else None
    figures.achieved_rate = round(sent / offered_seconds, 1) if offered_seconds else None
    figures.client_lag_p99_ms = round(lag, 1)


def server_cpu_seconds(processes: list) -> float:
    """CPU seconds used so far by these processes and their children (web server and workers, or the
    PostgreSQL postmaster and its backends, the ended ones included)."""
    import psutil

    total = 0.0
    for proc in processes:
        try:
            for p in [proc] + proc.children(recursive=True):
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def overload_report(f: Figures) -> str:
    ratio = f.achieved_rate / f.sustainable_rate if f.achieved_rate and f.sustainable_rate else 0.0
    return "\n".join([
        f"overload ({os.cpu_count()} cores; "
        + (f"{f.pinning})" if f.pinning else "not pinned: the clients compete with the server for the same CPUs)"),
        f"  server settings: {', '.join(f'{k}={v}' for k, v in f.server_settings.items())}",
        f"  sustainable rate (closed loop, {f.clients} connections, {f.clients} in flight): {f.sustainable_rate:g} "
        f"intakes/s, latency p50/p99/max {'/'.join(f'{v:g}' for v in f.calibration_latency_ms.values())} ms",
        f"  offered open-loop: {f.offered_rate:g}/s asked, {f.achieved_rate:g}/s sent by {f.client_processes} client "
        f"process(es) for {f.seconds:g} s = {ratio:.1f}x the sustainable rate (client lag p99 {f.client_lag_p99_ms:g} ms, "
        f"{f.not_offered} arrivals not sent: no free connection of {f.max_connections}, or the client more than 1 s behind)",
        f"  answers: {', '.join(f'{k}: {v}' for k, v in f.answers.items())}; 503 without Retry-After: {f.retry_after_missing}; "
        f"acknowledged meanwhile: {f.goodput_rate:g}/s = {(f.goodput_rate or 0) / (f.sustainable_rate or 1):.0%} of the sustainable rate",
        f"  latency of acknowledged intakes p50/p99/max: {'/'.join(f'{v:g}' for v in f.latency_ms.values())} ms from "
        f"the request's write, {'/'.join(f'{v:g}' for v in f.scheduled_latency_ms.values())} ms from its scheduled arrival; "
        f"refusals {'/'.join(f'{v:g}' for v in f.refused_latency_ms.values())} ms from their scheduled arrival",
        f"  another province ({BYSTANDER}, {BYSTANDER_CLIENTS} closed-loop clients) meanwhile: "
        f"{f.bystander_success if f.bystander_success is not None else '-'} of its answers 2xx, "
        f"{f.bystander_acknowledged} acknowledged, latency p50/p99/max "
        f"{'/'.join(f'{v:g}' for v in f.bystander_latency_ms.values()) or '-'} ms, "
        f"lost / duplicated / half-written {f.bystander_lost} / {f.bystander_duplicated} / {f.bystander_half_written}"
        f"{'; refused: ' + ', '.join(f'{k}: {v}' for k, v in f.bystander_errors.items()) if f.bystander_errors else ''}",
        f"  web server peak RSS: {f.server_rss_mb} MB; CPU used by the web server and PostgreSQL: "
        f"{f.server_cpu_share if f.server_cpu_share is not None else '-'} CPU-seconds per second",
        f"  lost / duplicated / half-written: {f.lost} / {f.duplicated} / {f.half_written} "
        f"({f.acknowledged} acknowledged, {f.present} present, {f.unacknowledged_present} present but never acknowledged)",
        f"  recovery: a normal load right after: {f.after_success:.2%} of answers 2xx, first acknowledgement "
        f"{f.recovery_seconds} s after the overload",
    ])
