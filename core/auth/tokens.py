"""JWT authentication with a verified-token cache and a deactivated-account check.

- A token is verified (signature, expiry) once per process and then served from a bounded cache
  until its expiry: decoding is the largest fixed cost of a request.
- An account deactivated after its token was issued (e.g. the specialists of a revoked ODR unit) is
  refused within ``INACTIVE_REFRESH`` seconds: each process re-reads the set of inactive account ids
  that often.
"""

from __future__ import annotations

import time
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AuthenticationResult
from litestar.security.jwt import JWTAuthenticationMiddleware

from core.db.engine import shared_fetch

INACTIVE_REFRESH = 5.0
_CACHE_MAX = 20_000


class InactiveAccounts:
    """The ids of deactivated accounts, re-read at most every ``INACTIVE_REFRESH`` seconds: one read at
    a time, the requests arriving meanwhile use the previous set (never older than the refresh period
    plus that one read)."""

    def __init__(self) -> None:
        self.ids: frozenset[str] = frozenset()
        self.loaded_at = float("-inf")
        self._reading_since: float | None = None

    async def contains(self, account_id: str) -> bool:
        now = time.monotonic()
        if now - self.loaded_at > INACTIVE_REFRESH:
            reading = self._reading_since
            if reading is None or self.loaded_at == float("-inf") or now - reading > INACTIVE_REFRESH:
                await self._read(now)
        return account_id in self.ids

    async def _read(self, now: float) -> None:
        self._reading_since = now
        try:
            rows = await shared_fetch("SELECT id::text AS id FROM odr.accounts WHERE NOT active")
        finally:
            if self._reading_since == now:
                self._reading_since = None
        self.ids = frozenset(r["id"] for r in rows)
        self.loaded_at = time.monotonic()


INACTIVE = InactiveAccounts()


class CachingJWTMiddleware(JWTAuthenticationMiddleware):
    _verified: dict[str, tuple[float, AuthenticationResult]] = {}

    async def authenticate_token(self, encoded_token: str, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        now = time.time()
        hit = self._verified.get(encoded_token)
        if hit is not None and hit[0] > now:
            result = hit[1]
        else:
            result = await super().authenticate_token(encoded_token, connection)
            if len(self._verified) >= _CACHE_MAX:
                self._verified.clear()
            self._verified[encoded_token] = (result.auth.exp.timestamp(), result)
        if await INACTIVE.contains(result.user.id):
            raise NotAuthorizedException("this account is deactivated")
        return result
