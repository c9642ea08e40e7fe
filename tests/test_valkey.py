"""Valkey is real: Litestar's ValkeyStore backs the login rate limit when ODR_VALKEY_URL is set."""

from __future__ import annotations

import httpx
import msgspec
import valkey.asyncio as valkey

from odr.app import create_app
from core.runtime import Platform


async def test_login_rate_limit_lives_in_valkey(demo, settings, valkey_url):
    limited = Platform(msgspec.structs.replace(settings, login_rate_per_minute=3), host=demo.host)
    app = create_app(limited, manage_lifecycle=False)
    client = valkey.from_url(valkey_url)
    await client.flushdb()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://odr.test") as c:
        codes = [
            (await c.post("/api/auth/login", json={"username": "nobody", "password": "x"})).status_code for _ in range(5)
        ]
        assert (await c.get("/health")).status_code == 200  # only login is limited
    assert codes == [401, 401, 401, 429, 429]
    keys = [k.decode() for k in await client.keys("odr:rate_limit*")]
    assert keys, "the rate-limit counter is not in Valkey"
    await client.aclose()
