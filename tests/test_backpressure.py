"""Back-pressure at the door of a web process (core.api.backpressure, ODR_WEB_MAX_INFLIGHT): beyond the
limit a request is answered 503 with Retry-After at once and never reaches the application; health
checks are never refused; the arrival time is recorded for the intake age limit. Driven over ASGI."""

from __future__ import annotations

import asyncio
import json

from core.api.backpressure import InflightLimit
from core.complaints import batching


async def asgi_call(door: InflightLimit, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """One POST through ``door`` over ASGI: (status, headers, body)."""
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        sent.append(message)

    await door({"type": "http", "method": "POST", "path": path, "headers": []}, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


async def test_requests_beyond_the_inflight_limit_are_refused_with_503_and_never_handled():
    release = asyncio.Event()
    handled: list[str] = []
    arrivals: list[float | None] = []

    async def app(scope, receive, send):  # an ASGI application whose API requests wait for `release`
        arrivals.append(batching.arrived_at.get())
        handled.append(scope["path"])
        if scope["path"].startswith("/api/"):
            await release.wait()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    limit = InflightLimit(app, limit=2)

    async def call(path: str) -> tuple[int, dict[bytes, bytes], bytes]:
        return await asgi_call(limit, path)

    slow = [asyncio.create_task(call(f"/api/work/{n}")) for n in range(2)]
    while len(handled) < 2:
        await asyncio.sleep(0.01)
    refused = await asyncio.wait_for(asyncio.gather(*(call(f"/api/work/{n}") for n in range(2, 6))), 5)
    assert [status for status, _, _ in refused] == [503] * 4
    assert all(h[b"retry-after"] == b"1" and "nothing was written" in json.loads(body)["detail"] for _, h, body in refused)
    assert (await asyncio.wait_for(call("/health"), 5))[0] == 201  # never refused
    assert limit.refused == 4 and limit.inflight == 2
    release.set()
    assert [status for status, _, _ in await asyncio.wait_for(asyncio.gather(*slow), 5)] == [201, 201]
    assert sorted(handled) == ["/api/work/0", "/api/work/1", "/health"]  # the refused never reached the app
    assert all(isinstance(a, float) for a in arrivals) and batching.arrived_at.get() is None
    assert (await asyncio.wait_for(call("/api/work/9"), 5))[0] == 201 and limit.inflight == 0  # served again


async def test_one_province_beyond_its_share_is_refused_while_another_province_is_served():
    release = asyncio.Event()
    handled: list[str] = []

    async def app(scope, receive, send):  # API requests of Shanghai wait for `release`
        handled.append(scope["path"])
        if scope["path"].startswith("/api/tenants/shanghai/"):
            await release.wait()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    door = InflightLimit(app, limit=4, per_tenant=2)

    async def call(path: str) -> int:
        return (await asgi_call(door, path))[0]

    surge = [asyncio.create_task(call("/api/tenants/shanghai/complaints")) for _ in range(2)]
    while len(handled) < 2:
        await asyncio.sleep(0.01)
    assert door.by_tenant == {"shanghai": 2} and door.inflight == 2
    # Shanghai beyond its share: refused at once, although the process has room (2 of 4)
    assert await asyncio.wait_for(asyncio.gather(*(call("/api/tenants/shanghai/complaints") for _ in range(3))), 5) == [503] * 3
    # Fujian, and a path of no province, still find room
    assert await asyncio.wait_for(call("/api/tenants/fujian/complaints"), 5) == 201
    assert await asyncio.wait_for(call("/api/auth/login"), 5) == 201
    assert door.refused == 3 and handled.count("/api/tenants/shanghai/complaints") == 2
    release.set()
    assert await asyncio.wait_for(asyncio.gather(*surge), 5) == [201, 201]
    assert door.by_tenant == {} and door.inflight == 0
    assert await asyncio.wait_for(call("/api/tenants/shanghai/complaints"), 5) == 201  # its share is free again
