"""One client process of the overload scenario (``benchmarks/faults.py --scenario overload``).

Open loop (the default):

Offers complaints on a paced arrival schedule, ``--rate`` per second from the wall-clock moment
``--start-at`` for ``--seconds``, whatever the server answers: each arrival is one new complaint under
its own idempotency key (``--prefix`` + a number), sent once on a free keep-alive connection (a new one
is opened when none is free, up to ``--max-connections``; an arrival finding none, or due more than
``--max-lag`` s ago when the client gets to it, is counted as ``not offered``: no bursts to catch up). Prints one JSON object: every key sent, the keys acknowledged (201/200), answers by
status (and 503s without ``Retry-After``), latencies of acknowledged intakes (ms, from the request's write;
and ``late_latencies``, from the arrival's scheduled moment, so that a client falling behind cannot hide
the server's delay) and how late the client sent (ms behind the schedule).

``--closed N``: the closed-loop measurement of the sustainable rate instead: N keep-alive connections,
each sending its next complaint as soon as the previous one is acknowledged (a refused one is repeated
under its key after 0.1 s) until ``--seconds`` have passed; prints the same JSON (``acked`` / seconds is
the rate).

``--cpus 1,3`` pins the process to those CPUs first (``os.sched_setaffinity``), so that the load
generator does not take the server's CPU (and the server not the generator's); uvloop is used when
installed (it is a dependency of granian).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.httpload import Connection, _Protocol  # noqa: E402


class _HeadKeeping(_Protocol):
    """Keeps the header block of the last response (to check ``Retry-After``)."""

    last_head = b""

    def _parse(self):
        end = self.buffer.find(b"\r\n\r\n")
        head = bytes(self.buffer[:end]) if end >= 0 else b""
        response = super()._parse()
        if response is not None:
            self.last_head = head
        return response


class HeadConnection(Connection):
    async def open(self) -> None:
        _, self.protocol = await asyncio.get_running_loop().create_connection(_HeadKeeping, self.host, self.port)


async def closed(args) -> dict:
    """The closed loop of ``--closed`` connections; see the module."""
    body = json.loads(args.body)
    extra = Connection.head({"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"})
    sent: list[str] = []
    acked: list[str] = []
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    await asyncio.sleep(max(0.0, args.start_at - time.time()))
    start = time.monotonic()
    until = start + args.seconds

    async def worker(w: int) -> None:
        conn = HeadConnection(args.host, args.port)
        await conn.open()
        n = 0
        try:
            while time.monotonic() < until:
                key = f"{args.prefix}c{w:03d}-{n:07d}"
                n += 1
                sent.append(key)
                payload = json.dumps({**body, "idempotency_key": key}, ensure_ascii=False).encode()
                while time.monotonic() < until:
                    t0 = time.perf_counter()
                    status, _ = await conn.send("POST", "/api/tenants/shanghai/complaints", payload, extra)
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
                    if status in (200, 201):
                        acked.append(key)
                        latencies.append((time.perf_counter() - t0) * 1000)
                        break
                    await asyncio.sleep(0.1)
        finally:
            conn.close()

    await asyncio.gather(*(worker(w) for w in range(args.closed)))
    return {"sent": sent, "acked": acked, "statuses": statuses, "latencies": latencies, "not_offered": 0,
            "offered_seconds": time.monotonic() - start, "lag_p99_ms": 0.0, "connections": args.closed,
            "retry_after_missing": 0, "late_latencies": [], "refused_latencies": []}


async def run(args) -> dict:
    body = json.loads(args.body)
    extra = Connection.head({"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"})
    idle: list[Connection] = []
    opened = 0
    sent: list[str] = []
    acked: list[str] = []
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    scheduled_latencies: list[float] = []  # from the arrival's scheduled moment: connection and client lag included
    refused_latencies: list[float] = []  # the same, for answers other than 200/201
    lag: list[float] = []
    not_offered = 0
    retry_after_missing = 0
    tasks: set[asyncio.Task] = set()

    async def one(key: str, due: float, conn: Connection | None) -> None:
        """Send ``key`` on ``conn``, or on a new connection (its slot already counted in ``opened``)."""
        nonlocal opened, retry_after_missing
        try:
            if conn is None:
                conn = HeadConnection(args.host, args.port)
                await conn.open()
            payload = json.dumps({**body, "idempotency_key": key}, ensure_ascii=False).encode()
            t0 = time.perf_counter()
            status, _ = await asyncio.wait_for(
                conn.send("POST", "/api/tenants/shanghai/complaints", payload, extra), args.timeout)
        except asyncio.TimeoutError:
            statuses["timeout"] = statuses.get("timeout", 0) + 1
            conn.close()
            opened -= 1
            return
        except OSError as exc:
            name = f"connection: {type(exc).__name__}" + (f" {errno.errorcode.get(exc.errno, exc.errno)}" if exc.errno else "")
            statuses[name] = statuses.get(name, 0) + 1
            if conn is not None:
                conn.close()
            opened -= 1
            return
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status == 503 and b"\r\nretry-after:" not in conn.protocol.last_head.lower():
            retry_after_missing += 1
        if status not in (200, 201):
            refused_latencies.append((time.monotonic() - due) * 1000)
        if status in (200, 201):
            acked.append(key)
            latencies.append((time.perf_counter() - t0) * 1000)
            scheduled_latencies.append((time.monotonic() - due) * 1000)
        idle.append(conn)

    # wall clock to the start, then the monotonic clock
    await asyncio.sleep(max(0.0, args.start_at - time.time()))
    start = time.monotonic()
    total = int(args.rate * args.seconds)
    for i in range(total):
        due = start + i / args.rate
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
            now = time.monotonic()
        lag.append((now - due) * 1000)
        if now - due > args.max_lag or (not idle and opened >= args.max_connections):
            # never a burst to catch up (a starved client would offer in spikes); counted, not sent
            not_offered += 1
            continue
        conn = idle.pop() if idle else None  # taken (or a new one counted) here, so that the limit holds
        if conn is None:
            opened += 1
        key = f"{args.prefix}{i:07d}"
        sent.append(key)
        task = asyncio.create_task(one(key, due, conn))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    offered_seconds = time.monotonic() - start
    if tasks:
        await asyncio.wait(set(tasks))
    for conn in idle:
        conn.close()
    lag.sort()
    return {"sent": sent, "acked": acked, "statuses": statuses, "latencies": latencies, "not_offered": not_offered,
            "offered_seconds": offered_seconds, "lag_p99_ms": lag[int(len(lag) * 0.99)] if lag else 0.0,
            "connections": opened,
            "retry_after_missing": retry_after_missing, "late_latencies": scheduled_latencies,
            "refused_latencies": refused_latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--body", required=True, help="the complaint as JSON, without its idempotency key")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: arrivals per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--start-at", type=float, required=True, help="wall-clock time (time.time()) of the first arrival")
    parser.add_argument("--max-connections", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--max-lag", type=float, default=1.0, help="seconds behind the schedule beyond which an arrival is skipped")
    parser.add_argument("--closed", type=int, default=0, help="closed loop over this many connections instead (see the module)")
    parser.add_argument("--out", default="", help="write the JSON report to this file instead of standard output")
    parser.add_argument("--cpus", default="", help="comma-separated CPU numbers to pin this process to")
    args = parser.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with granian on Linux
        uvloop = None
    main_coro = closed(args) if args.closed else run(args)
    result = uvloop.run(main_coro) if uvloop is not None else asyncio.run(main_coro)
    if args.out:  # a file: a pipe left non-blocking by the event loop can cut a large print short
        Path(args.out).write_text(json.dumps(result))
    else:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
