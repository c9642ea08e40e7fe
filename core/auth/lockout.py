"""Failed logins counted per account, atomically: after ``limit`` wrong passwords for one username within
``minutes`` of each other, that username is refused (429, ``Retry-After``) until ``minutes`` after the
last failure, whatever the client address (the per-address rate limit alone does not stop a password
guessed from many addresses, and behind a proxy every client shares one address).

Contract (holds under any parallelism, across every web process sharing the Valkey):
- :meth:`LoginLockout.reserve` runs *before* the password is checked. In one atomic step it refuses
  (429) when the account already has ``limit`` counted attempts, or else counts this attempt as a
  failure (and restarts the window). So at most ``limit`` wrong passwords are ever checked for one
  account in a window, however many arrive at once; then even the right one is refused until the
  lock ends. A locked account cannot be probed either.
- :meth:`LoginLockout.succeeded` clears the count (the right password); :meth:`LoginLockout.release`
  takes back one reserved attempt whose password was never checked (the check itself failed, e.g. the
  password pool was full or the database away).

Counts live in Valkey when configured (``odr:login_failures:<key>``, a Lua script: read, compare,
increment, expire in one step), so every worker sees them; in process memory behind a lock otherwise.
Keys are a hash of the lower-cased username: no account name in Valkey.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from typing import Any

from litestar.exceptions import TooManyRequestsException

NAMESPACE = "odr:login_failures:"

_RESERVE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if n >= tonumber(ARGV[1]) then
  local left = redis.call('PTTL', KEYS[1])
  if left > 0 then return {0, left} end
  n = 0
end
redis.call('SET', KEYS[1], n + 1, 'PX', ARGV[2])
return {1, n + 1}
"""
_RELEASE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if n > 1 then redis.call('SET', KEYS[1], n - 1, 'KEEPTTL') else redis.call('DEL', KEYS[1]) end
return n
"""


def _key(username: str) -> str:
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()


class MemoryCounts:
    """In-process counts (no Valkey): the same three steps, each under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (count, expires at, monotonic)

    async def reserve(self, key: str, limit: int, window_ms: int) -> tuple[bool, int]:
        now = time.monotonic()
        with self._lock:
            count, expires = self._counts.get(key, (0, 0.0))
            if expires <= now:
                count = 0
            if count >= limit:
                return False, math.ceil((expires - now) * 1000)
            self._counts[key] = (count + 1, now + window_ms / 1000)
            if len(self._counts) > 10_000:  # forget the expired ones now and then
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            return True, count + 1

    async def release(self, key: str) -> None:
        with self._lock:
            count, expires = self._counts.get(key, (0, 0.0))
            if count > 1:
                self._counts[key] = (count - 1, expires)
            else:
                self._counts.pop(key, None)

    async def clear(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)



class ValkeyCounts:
    """Counts in Valkey, shared by every process (see the module)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._reserve = client.register_script(_RESERVE)
        self._release = client.register_script(_RELEASE)

    async def reserve(self, key: str, limit: int, window_ms: int) -> tuple[bool, int]:
        granted, value = await self._reserve(keys=[NAMESPACE + key], args=[limit, window_ms])
        return bool(granted), int(value)

    async def release(self, key: str) -> None:
        await self._release(keys=[NAMESPACE + key])

    async def clear(self, key: str) -> None:
        await self.client.delete(NAMESPACE + key)


def counts_for(valkey: Any | None) -> MemoryCounts | ValkeyCounts:
    """Counts in Valkey through the client ``valkey`` (``valkey.asyncio.Valkey``), in process without."""
    return ValkeyCounts(valkey) if valkey is not None else MemoryCounts()


class LoginLockout:
    def __init__(self, counts: MemoryCounts | ValkeyCounts, *, limit: int, minutes: float) -> None:
        self.counts, self.limit, self.window_ms = counts, limit, max(1, math.ceil(minutes * 60_000))

    async def reserve(self, username: str) -> None:
        """Count one attempt for ``username`` before its password is checked; 429 when it is locked."""
        if self.limit <= 0:
            return
        granted, value = await self.counts.reserve(_key(username), self.limit, self.window_ms)
        if not granted:
            wait = max(1, math.ceil(value / 1000))
            raise TooManyRequestsException(
                f"username: too many wrong passwords for this account; try again in {math.ceil(wait / 60)} minutes",
                headers={"Retry-After": str(wait)},
            )

    async def release(self, username: str) -> None:
        """Take back a reserved attempt whose password was not checked."""
        if self.limit > 0:
            await self.counts.release(_key(username))

    async def succeeded(self, username: str) -> None:
        """The right password: the account's count starts again from zero."""
        if self.limit > 0:
            await self.counts.clear(_key(username))
