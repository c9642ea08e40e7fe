"""Whether an error means "the database is not reachable right now" (a restart, a failover, a full
server) rather than a fault of the request.

Contract: :func:`database_unavailable` is true for connection failures and losses (SQLSTATE class 08,
a connection closed under the client, refused or timed-out connects), the server shutting down or
starting up (57P01-57P03) and too many connections (53300). Such a request was not acknowledged;
the client may repeat it with the same idempotency key. The HTTP layer answers 503 with
``Retry-After`` (:data:`RETRY_AFTER_SECONDS`), never 500.

:func:`store_unavailable` is the same for Valkey (rate limits, login lockouts, caches): a request that
needs it (a login, whose limits live there) answers 503 while it is away, so knocking Valkey out never
opens a window for guessing passwords; intake and timers do not need it.
"""

from __future__ import annotations

import asyncio

import asyncpg
from asyncpg import exceptions as pg

RETRY_AFTER_SECONDS = 2
_UNAVAILABLE = (
    pg.PostgresConnectionError,  # class 08, ConnectionDoesNotExistError among them
    pg.AdminShutdownError,
    pg.CrashShutdownError,
    pg.CannotConnectNowError,
    pg.TooManyConnectionsError,
)
_TRANSPORT = (OSError, asyncio.TimeoutError)  # refused, reset, missing socket, timed-out connect


def _raised_in_driver(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while the database driver was running (so a plain OSError or timeout
    is the connection's, not, say, a file's or a plugin's)."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith("asyncpg"):
            return True
        tb = tb.tb_next
    return False


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the database could not be reached or was lost."""
    for _ in range(5):
        if exc is None:
            return False
        if isinstance(exc, _UNAVAILABLE):
            return True
        if isinstance(exc, asyncpg.InterfaceError) and ("connection is closed" in str(exc) or "pool is closing" in str(exc)):
            return True
        if isinstance(exc, _TRANSPORT) and _raised_in_driver(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


_CONFLICT = (pg.SerializationError, pg.DeadlockDetectedError)  # SQLSTATE 40001, 40P01


def transaction_conflict(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a serialization failure or a deadlock (SQLSTATE
    40001, 40P01): PostgreSQL rolled the transaction back because of concurrent ones; nothing of it
    was written and the same request may simply be repeated. The HTTP layer answers 503 with
    ``Retry-After``, like :func:`database_unavailable`, never 500."""
    for _ in range(5):
        if exc is None:
            return False
        if isinstance(exc, _CONFLICT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def store_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says Valkey could not be reached or was lost."""
    try:
        from valkey import exceptions as vk
    except ImportError:  # pragma: no cover - valkey is a dependency
        return False
    return isinstance(exc, (vk.ConnectionError, vk.TimeoutError))
