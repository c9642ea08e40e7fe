"""Wrong passwords counted per account (core.auth.lockout): a username is refused after too many, in the
API and the console, whatever the client address; other accounts are unaffected; the lock ends a
while after the last failure and a successful login clears the count. Console cookies are Secure
with ODR_SECURE_COOKIES even over plain HTTP (TLS ended at a proxy)."""

from __future__ import annotations

import asyncio
import collections
import uuid

import httpx
import msgspec
from litestar.exceptions import TooManyRequestsException
import pytest

from odr.app import create_app
from core.auth.accounts import create_account
from core.auth.lockout import LoginLockout, MemoryCounts
from core.auth.principal import Role
from core.db.engine import platform_transaction
from tests.conftest import DEMO_PASSWORD
from tests.console_helpers import ORIGIN, TOKEN, browser
from tests.helpers import app_with_settings


async def new_consumer() -> str:
    username = f"lock-{uuid.uuid4().hex[:8]}"
    async with platform_transaction() as conn:
        await create_account(conn, username=username, password=DEMO_PASSWORD, role=Role.CONSUMER, tenant="shanghai")
    return username


async def test_an_account_is_locked_after_too_many_wrong_passwords(client, demo):
    victim, bystander = await new_consumer(), await new_consumer()
    limit = demo.settings.login_failures_per_account
    assert limit >= 3
    for i in range(limit):
        r = await client.post("/api/auth/login", json={"username": victim, "password": f"wrong-{i}"})
        assert r.status_code == 401, (i, r.text)
    # now even the right password is refused, by username (any case), with when to come back
    for name in (victim, victim.upper()):
        r = await client.post("/api/auth/login", json={"username": name, "password": DEMO_PASSWORD})
        assert r.status_code == 429, r.text
        assert r.json()["detail"].startswith("username: too many wrong passwords")
        assert 0 < int(r.headers["retry-after"]) <= demo.settings.login_lockout_minutes * 60
    # another account is unaffected, and its own failures are counted apart
    r = await client.post("/api/auth/login", json={"username": bystander, "password": "wrong"})
    assert r.status_code == 401
    r = await client.post("/api/auth/login", json={"username": bystander, "password": DEMO_PASSWORD})
    assert r.status_code == 200

    # the console counts the same way and says so, with a 429
    app = create_app(demo, manage_lifecycle=False)
    async with browser(app) as c:
        for i in range(limit + 1):
            page = await c.get("/ui/login")
            r = await c.post("/ui/login", data={"username": bystander, "password": DEMO_PASSWORD if i == limit else "wrong",
                                                "_csrf_token": TOKEN.search(page.text).group(1)})
            assert r.status_code == (429 if i == limit else 401), (i, r.status_code)
        assert "已暂时锁定" in r.text and "odr_session" not in r.headers.get("set-cookie", "")


async def test_the_lock_ends_after_the_window_and_success_clears_the_count():
    lockout = LoginLockout(MemoryCounts(), limit=2, minutes=1 / 60)  # one second
    await lockout.failed(await lockout.reserve("Alice"))
    await lockout.succeeded(await lockout.reserve("ALICE"))  # the right password clears the failure
    await lockout.failed(await lockout.reserve("alice"))
    await lockout.release(await lockout.reserve("alice"))  # a password never checked counts nothing
    await lockout.failed(await lockout.reserve("alice"))  # two: the limit
    with pytest.raises(TooManyRequestsException):
        await lockout.reserve("alice")
    await lockout.reserve("bob")
    await asyncio.sleep(1.2)
    await lockout.reserve("alice")
    off = LoginLockout(MemoryCounts(), limit=0, minutes=15)
    for _ in range(50):
        await off.failed(await off.reserve("alice"))
    assert await off.reserve("alice") is None


async def test_checks_in_flight_take_the_slots_and_the_next_attempt_waits_for_one():
    lockout = LoginLockout(MemoryCounts(), limit=2, minutes=1)
    first, second = await lockout.reserve("carol"), await lockout.reserve("carol")
    waiting = asyncio.create_task(lockout.reserve("carol"))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # both slots are in flight: either might be a wrong password
    await lockout.succeeded(first)
    third = await asyncio.wait_for(waiting, 2)  # a slot came free
    await lockout.failed(second)
    await lockout.failed(third)
    with pytest.raises(TooManyRequestsException):
        await lockout.reserve("carol")


async def test_secure_cookies_when_configured(demo):
    plain = demo.settings
    demo.settings = msgspec.structs.replace(plain, secure_cookies=True)
    try:
        app = create_app(demo, manage_lifecycle=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://odr.test",
                                     headers=ORIGIN) as c:
            page = await c.get("/ui/login")
            assert "odr_csrf=" in page.headers["set-cookie"] and "Secure" in page.headers["set-cookie"]
            # a client keeps a Secure cookie from plain HTTP: the proxy in front speaks HTTPS to the browser
            csrf_cookie = page.headers["set-cookie"].split(";")[0]
            c.cookies.clear()
            r = await c.post("/ui/login", data={"username": "js-officer", "password": DEMO_PASSWORD,
                                                "_csrf_token": TOKEN.search(page.text).group(1)},
                             headers={"Cookie": csrf_cookie})
            assert r.status_code == 303, r.text
            session = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("odr_session=")]
            assert session and "Secure" in session[0] and "HttpOnly" in session[0]
    finally:
        demo.settings = plain
    app = create_app(demo, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://odr.test") as c:
        assert "Secure" not in (await c.get("/ui/login")).headers["set-cookie"]  # default over plain HTTP


@pytest.mark.parametrize("store", ["valkey", "memory"])
async def test_parallel_wrong_passwords_check_at_most_the_limit_then_the_right_one_is_refused(demo, store):
    """40 wrong passwords at once for one account: at most the limit of them are checked (a 401 is only
    answered after the password was checked; the others are refused before, 429), and then the right
    password is refused too. With the lockout counts in Valkey and in process memory."""
    app = app_with_settings(demo, **({} if store == "valkey" else {"valkey_url": None}))
    victim = await new_consumer()
    limit = demo.settings.login_failures_per_account
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://odr.test", timeout=120) as c:
        answers = await asyncio.gather(*(c.post("/api/auth/login", json={"username": victim, "password": f"wrong-{i}"})
                                          for i in range(40)))
        statuses = collections.Counter(r.status_code for r in answers)
        assert statuses[401] <= limit and statuses[401] + statuses[429] == 40, statuses
        r = await c.post("/api/auth/login", json={"username": victim, "password": DEMO_PASSWORD})
        assert r.status_code == 429 and r.json()["detail"].startswith("username: too many wrong passwords"), r.text
