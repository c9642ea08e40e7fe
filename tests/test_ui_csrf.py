"""The console's CSRF protection: a token bound to the session (or, before login, to the pre-session
cookie), and an Origin/Referer check on every unsafe request. The attack of the issue: a victim's
session cookie sent with the attacker's own CSRF cookie and token is refused."""

from __future__ import annotations

import uuid

import httpx
import pytest
import pytest_asyncio

from odr.app import create_app
from tests.console_helpers import TOKEN, browser, csrf, signed_in


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(demo):
    return create_app(demo, manage_lifecycle=False)


def raw(app, cookies: dict[str, str], origin: str | None = "http://odr.test", **headers) -> httpx.AsyncClient:
    """A client sending exactly ``cookies`` (no jar of its own) and the given Origin."""
    if origin is not None:
        headers["Origin"] = origin
    headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://odr.test", headers=headers)


async def _address(c: httpx.AsyncClient) -> str:
    return (await c.get("/ui/channels")).text


async def test_a_victims_session_with_the_attackers_own_csrf_cookie_and_token_is_refused(app):
    victim = await signed_in(app, "js-officer")
    attacker = browser(app)
    attacker_token = await csrf(attacker)  # the attacker's own pre-session cookie and its token
    address = f"attacker-{uuid.uuid4().hex[:6]}@evil.example"
    before = await _address(victim)
    forged = raw(app, {"odr_session": victim.cookies["odr_session"], "odr_csrf": attacker.cookies["odr_csrf"]})
    r = await forged.post("/ui/channels/odr_email", data={"enabled": "on", "address": address, "_csrf_token": attacker_token})
    assert r.status_code == 403, r.text
    # a token of another signed-in session (the attacker's own login) is refused the same way
    other = await signed_in(app, "js-office-head")
    other_token = TOKEN.search((await other.get("/ui/channels")).text).group(1)
    r = await forged.post("/ui/channels/odr_email", data={"enabled": "on", "address": address, "_csrf_token": other_token},
                          headers={"x-csrftoken": other_token})
    assert r.status_code == 403, r.text
    assert address not in await _address(victim) and await _address(victim) == before
    # the victim's own token, from its own page, works (a normal flow)
    own = TOKEN.search(before).group(1)
    r = await victim.post("/ui/channels/odr_email", data={"enabled": "", "address": "", "_csrf_token": own})
    assert r.status_code in (303, 400), r.text


async def test_a_new_session_gets_a_new_token_and_the_pre_login_token_is_bound_to_its_cookie(app):
    c = browser(app)
    before_login = await csrf(c)
    assert await csrf(c) == before_login  # stable for one pre-session cookie
    r = await c.post("/ui/login", data={"username": "js-officer", "password": "demo12315", "_csrf_token": before_login})
    assert r.status_code == 303
    after_login = await csrf(c, "/ui/bureau")
    assert after_login != before_login
    r = await c.post("/ui/logout", data={"_csrf_token": before_login})  # the pre-login token no longer counts
    assert r.status_code == 403
    # a login form's token with another browser's pre-session cookie: refused
    stranger = browser(app)
    await stranger.get("/ui/login")
    forged = raw(app, {"odr_csrf": stranger.cookies["odr_csrf"]})
    r = await forged.post("/ui/login", data={"username": "js-officer", "password": "demo12315", "_csrf_token": before_login})
    assert r.status_code == 403


@pytest.mark.parametrize("headers, allowed", [
    ({"Origin": "http://evil.example"}, False),
    ({"Origin": "http://odr.test.evil.example"}, False),
    ({"Origin": "https://odr.test"}, False),  # another scheme (no ODR_SECURE_COOKIES)
    ({"Origin": "http://odr.test:8080"}, False),  # another port
    ({"Origin": "null"}, False),
    ({"Referer": "http://evil.example/odr.test/ui/login"}, False),
    ({}, False),  # neither Origin nor Referer
    ({"Origin": "http://odr.test"}, True),
    ({"Origin": "http://odr.test:80"}, True),
    ({"Referer": "http://odr.test/ui/login?lang=en"}, True),
])
async def test_an_unsafe_request_from_another_origin_is_refused(app, headers, allowed):
    c = browser(app)
    token = await csrf(c)
    cross = raw(app, {"odr_csrf": c.cookies["odr_csrf"]}, origin=None, **headers)
    r = await cross.post("/ui/login", data={"username": "js-officer", "password": "demo12315", "_csrf_token": token})
    assert r.status_code == (303 if allowed else 403), r.text
