"""Failed logins counted per account, atomically: after ``limit`` wrong passwords for one username within
``minutes`` of each other, that username is refused (429, ``Retry-After``) until ``minutes`` after the
last failure, whatever the client address (the per-address rate limit alone does not stop a password
guessed from many addresses, and behind a proxy every client shares one address).

Contract (holds under any parallelism, across every web process sharing the Valkey):
- :meth:`LoginLockout.reserve` runs *before* the password is checked. In one atomic step it refuses
  (429) when the account has ``limit`` failures counted, or else takes one of the account's
  ``limit - failures`` check slots: every check in flight might be a wrong password, so at most
  ``limit`` wrong passwords are ever checked for one account in a window, however many arrive at once;
  then even the right one is refused until the lock ends (a locked account cannot be probed either).
  While all slots are taken by checks in flight, an attempt waits (up to :data:`WAIT_SECONDS`, then
  503 with ``Retry-After``) for one to end: parallel logins with the right password all get in.
- The attempt ends with exactly one of :meth:`~LoginLockout.failed` (a wrong password: counted, the
  window restarts), :meth:`~LoginLockout.succeeded` (the right one: the failures are cleared) or
  :meth:`~LoginLockout.release` (no password was checked, e.g. the password pool was full). A slot whose
  process died mid-check frees itself after :data:`SLOT_SECONDS`.

Counts live in Valkey when configured (``odr:login_failures:{<key>}:f`` and ``…:p``, changed only by Lua
scripts: read, compare and write in one step), so every worker sees them; in process memory behind a
lock otherwise. Keys are a hash of the lower-cased username: no account name in Valkey.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import threading
import time
from typing import Any

from litestar.exceptions import ServiceUnavailableException, TooManyRequestsException

NAMESPACE = "odr:login_failures:"
WAIT_SECONDS = 30.0
"""Longest an attempt waits for a check slot of its account (all taken by checks in flight)."""
SLOT_SECONDS = 60.0
"""A check slot not given back within this (its process died) is free again."""
_POLL = 0.025
LOCKED, GRANTED, BUSY = 0, 1, 2

_RESERVE = """
local limit, window, now, slot = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
local f = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if f >= limit then
  local left = redis.call('PTTL', KEYS[1])
  if left > 0 then return {0, left} end
  f = 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if f + redis.call('ZCARD', KEYS[2]) >= limit then return {2, 0} end
redis.call('ZADD', KEYS[2], now + slot, ARGV[4])
redis.call('PEXPIRE', KEYS[2], slot)
return {1, 0}
"""
_FINISH = """
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == 'failed' then
  local f = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
  redis.call('SET', KEYS[1], f + 1, 'PX', ARGV[3])
elseif ARGV[2] == 'succeeded' then
  redis.call('DEL', KEYS[1])
end
return 1
"""


def _key(username: str) -> str:
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()


class MemoryCounts:
    """In-process counts (no Valkey): the same steps, each under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (count, expires at), monotonic seconds
        self._slots: dict[str, dict[str, float]] = {}  # key -> {token: expires at}

    async def reserve(self, key: str, token: str, limit: int, window_ms: int) -> tuple[int, int]:
        now = time.monotonic()
        with self._lock:
            count, expires = self._failures.get(key, (0, 0.0))
            if expires <= now:
                count = 0
                self._failures.pop(key, None)
            if count >= limit:
                return LOCKED, math.ceil((expires - now) * 1000)
            slots = {t: e for t, e in self._slots.get(key, {}).items() if e > now}
            if count + len(slots) >= limit:
                return BUSY, 0
            slots[token] = now + SLOT_SECONDS
            self._slots[key] = slots
            return GRANTED, 0

    async def finish(self, key: str, token: str, outcome: str, window_ms: int) -> None:
        now = time.monotonic()
        with self._lock:
            slots = self._slots.get(key, {})
            slots.pop(token, None)
            if not slots:
                self._slots.pop(key, None)
            if outcome == "failed":
                count, expires = self._failures.get(key, (0, 0.0))
                self._failures[key] = ((count if expires > now else 0) + 1, now + window_ms / 1000)
            elif outcome == "succeeded":
                self._failures.pop(key, None)
            if len(self._failures) > 10_000:  # forget the expired ones now and then
                self._failures = {k: v for k, v in self._failures.items() if v[1] > now}


class ValkeyCounts:
    """Counts in Valkey, shared by every process (see the module)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._reserve = client.register_script(_RESERVE)
        self._finish = client.register_script(_FINISH)

    @staticmethod
    def _keys(key: str) -> list[str]:
        return [f"{NAMESPACE}{{{key}}}:f", f"{NAMESPACE}{{{key}}}:p"]  # one hash slot for both

    async def reserve(self, key: str, token: str, limit: int, window_ms: int) -> tuple[int, int]:
        now_ms = int(time.time() * 1000)
        state, value = await self._reserve(keys=self._keys(key),
                                           args=[limit, window_ms, now_ms, token, int(SLOT_SECONDS * 1000)])
        return int(state), int(value)

    async def finish(self, key: str, token: str, outcome: str, window_ms: int) -> None:
        await self._finish(keys=self._keys(key), args=[token, outcome, window_ms])


def counts_for(valkey: Any | None) -> MemoryCounts | ValkeyCounts:
    """Counts in Valkey through the client ``valkey`` (``valkey.asyncio.Valkey``), in process without."""
    return ValkeyCounts(valkey) if valkey is not None else MemoryCounts()


class Attempt:
    """One reserved login attempt (see :meth:`LoginLockout.reserve`)."""

    __slots__ = ("key", "token")

    def __init__(self, key: str, token: str) -> None:
        self.key, self.token = key, token


class LoginLockout:
    def __init__(self, counts: MemoryCounts | ValkeyCounts, *, limit: int, minutes: float) -> None:
        self.counts, self.limit, self.window_ms = counts, limit, max(1, math.ceil(minutes * 60_000))

    async def reserve(self, username: str) -> Attempt | None:
        """A check slot for ``username``, taken before its password is checked; 429 when it is locked.
        None when there is no lockout (``limit`` 0)."""
        if self.limit <= 0:
            return None
        attempt = Attempt(_key(username), secrets.token_hex(8))
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            state, value = await self.counts.reserve(attempt.key, attempt.token, self.limit, self.window_ms)
            if state == GRANTED:
                return attempt
            if state == LOCKED:
                wait = max(1, math.ceil(value / 1000))
                raise TooManyRequestsException(
                    f"username: too many wrong passwords for this account; try again in {math.ceil(wait / 60)} minutes",
                    headers={"Retry-After": str(wait)},
                )
            if time.monotonic() > deadline:
                raise ServiceUnavailableException("too many sign-ins of this account are being checked at this moment; "
                                                  "retry in a moment", headers={"Retry-After": "1"})
            await asyncio.sleep(_POLL)

    async def _finish(self, attempt: Attempt | None, outcome: str) -> None:
        if attempt is not None:
            await self.counts.finish(attempt.key, attempt.token, outcome, self.window_ms)

    async def failed(self, attempt: Attempt | None) -> None:
        """A wrong password: one more failure for the account (the window restarts)."""
        await self._finish(attempt, "failed")

    async def succeeded(self, attempt: Attempt | None) -> None:
        """The right password: the account's failures are cleared."""
        await self._finish(attempt, "succeeded")

    async def release(self, attempt: Attempt | None) -> None:
        """No password was checked: the slot is given back, nothing counted."""
        await self._finish(attempt, "released")
