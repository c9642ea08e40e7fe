"""The web console without a browser: in-process HTTP clients with their own cookie jars, the CSRF
token of a page, a signed-in client (shared by the console's page tests)."""

from __future__ import annotations

import re

import httpx

TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')
"""The CSRF token of a page's forms."""


ORIGIN = {"Origin": "http://odr.test"}
"""What a browser sends with every POST of the console's own pages (the CSRF middleware checks it)."""


def browser(app) -> httpx.AsyncClient:
    """A client with its own cookie jar (one per person), sending the console's own Origin like a browser."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://odr.test", headers=ORIGIN)


async def csrf(c: httpx.AsyncClient, path: str = "/ui/login") -> str:
    r = await c.get(path)
    return TOKEN.search(r.text).group(1)


async def signed_in(app, username: str, password: str = "demo12315") -> httpx.AsyncClient:
    c = browser(app)
    r = await c.post("/ui/login", data={"username": username, "password": password, "_csrf_token": await csrf(c)})
    assert r.status_code == 303, r.text
    return c
