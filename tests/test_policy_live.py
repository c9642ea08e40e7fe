"""A plugin toggle reaches every process's caches within a second through Valkey pub/sub (real
Valkey), not by waiting for the activation TTL."""

from __future__ import annotations

import asyncio
import time

import valkey.asyncio as valkey

from core import runtime
from core.db.engine import platform_transaction
from core.pluginhost.invalidation import CHANNEL, PolicyInvalidation
from core.runtime import Platform
from tests.conftest import login

NODE = "310115-01"  # Lujiazui office in Pudong (national policy unless toggled)
PLUGIN = "odr_jinshan_deadline"


def jinshan_active(policy) -> bool:
    return next(c for c in policy.choices if c.plugin == PLUGIN).active


async def wait_for(predicate, limit: float = 1.0) -> float:
    """Poll ``predicate`` (async) until true; the seconds it took, or fail after ``limit``."""
    started = time.monotonic()
    while True:
        if await predicate():
            return time.monotonic() - started
        if time.monotonic() - started > limit:
            raise AssertionError(f"not seen within {limit} s")
        await asyncio.sleep(0.02)


async def toggle(client, active: bool) -> None:
    r = await client.put(f"/api/tenants/shanghai/policy/{NODE}/plugins/{PLUGIN}", json={"active": active},
                         headers=await login(client, "sh-admin"))
    assert r.status_code == 200, r.text


async def test_a_toggle_reaches_another_process_within_a_second(client, demo, settings, monkeypatch):
    monkeypatch.setattr(runtime, "ACTIVATION_TTL", 3600.0)  # only the pub/sub message can explain a refresh
    other = Platform(settings, host=demo.host)  # same database, caches of its own (another worker)
    deaf = Platform(settings, host=demo.host)  # a process that is not subscribed
    invalidation = PolicyInvalidation(other, settings.valkey_url)
    await invalidation.start()
    try:
        assert invalidation.listening
        assert not jinshan_active(await other.policy("shanghai", NODE))
        assert not jinshan_active(await deaf.policy("shanghai", NODE))

        await toggle(client, True)

        async def seen_on() -> bool:
            return jinshan_active(await other.policy("shanghai", NODE))

        assert await wait_for(seen_on) < 1.0
        assert not jinshan_active(await deaf.policy("shanghai", NODE))  # the TTL alone would not have done it
        scope, active = await other.scope("shanghai", NODE)
        assert PLUGIN in active and scope.config(PLUGIN).close_days == 7

        await toggle(client, False)

        async def seen_off() -> bool:
            return not jinshan_active(await other.policy("shanghai", NODE))

        assert await wait_for(seen_off) < 1.0
        assert invalidation.received >= 2
    finally:
        await invalidation.stop()
        async with platform_transaction() as conn:
            await conn.execute("DELETE FROM odr.plugin_activations WHERE tenant = 'shanghai' AND node_code = $1 AND plugin = $2",
                               NODE, PLUGIN)
        demo.forget_activations("shanghai")
    assert not invalidation.listening


async def test_malformed_messages_are_ignored_and_the_subscriber_keeps_listening(demo, settings, valkey_url):
    other = Platform(settings, host=demo.host)
    invalidation = PolicyInvalidation(other, valkey_url)
    await invalidation.start()
    publisher = valkey.from_url(valkey_url)
    try:
        await other.activations("shanghai")
        assert "shanghai" in other._activations
        for junk in (b"not json", b'{"tenant": 5}', b'{"tenant": "../etc"}'):
            await publisher.publish(CHANNEL, junk)
        assert await PolicyInvalidation(demo, valkey_url).publish("shanghai")

        async def forgotten() -> bool:
            return "shanghai" not in other._activations

        await wait_for(forgotten)
        assert invalidation.received == 1 and invalidation.listening
    finally:
        await publisher.aclose()
        await invalidation.stop()


async def test_without_valkey_nothing_is_published_or_subscribed(demo, settings):
    invalidation = PolicyInvalidation(Platform(settings, host=demo.host), None)
    await invalidation.start()
    assert not invalidation.enabled and not invalidation.listening
    assert await invalidation.publish("shanghai") is False
    await invalidation.stop()
