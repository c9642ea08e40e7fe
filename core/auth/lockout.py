"""Failed logins counted per account: after ``limit`` wrong passwords for one username within
``minutes`` of each other, that username is refused (429, ``Retry-After``) until ``minutes`` after the
last failure, whatever the client address (the per-address rate limit alone does not stop a password
guessed from many addresses, and behind a proxy every client shares one address).

Counts live in a Litestar store (``login_failures``: Valkey when configured, so every worker sees
them; in memory otherwise). Keys are a hash of the lower-cased username: no account name in Valkey.
A successful login clears the count. The check runs before the password is verified, so a locked
account cannot be probed either.
"""

from __future__ import annotations

import hashlib
import math
import time

import msgspec
from litestar.exceptions import TooManyRequestsException
from litestar.stores.base import Store

STORE = "login_failures"


class _Failures(msgspec.Struct, array_like=True):
    count: int
    last: float


def _key(username: str) -> str:
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()


class LoginLockout:
    def __init__(self, store: Store, *, limit: int, minutes: float) -> None:
        self.store, self.limit, self.window = store, limit, minutes * 60

    async def _read(self, key: str) -> _Failures | None:
        raw = await self.store.get(key)
        if raw is None:
            return None
        try:
            return msgspec.msgpack.decode(raw, type=_Failures)
        except msgspec.DecodeError:
            return None

    async def check(self, username: str) -> None:
        """Raise 429 when ``username`` is locked."""
        if self.limit <= 0:
            return
        failures = await self._read(_key(username))
        if failures is None or failures.count < self.limit:
            return
        wait = failures.last + self.window - time.time()
        if wait > 0:
            raise TooManyRequestsException(
                f"username: too many wrong passwords for this account; try again in {math.ceil(wait / 60)} minutes",
                headers={"Retry-After": str(math.ceil(wait))},
            )

    async def failed(self, username: str) -> None:
        if self.limit <= 0:
            return
        key = _key(username)
        failures = await self._read(key)
        count = (failures.count if failures is not None else 0) + 1
        await self.store.set(key, msgspec.msgpack.encode(_Failures(count, time.time())), expires_in=math.ceil(self.window))

    async def succeeded(self, username: str) -> None:
        await self.store.delete(_key(username))
