"""Password hashing with argon2 (argon2-cffi), off the event loop, bounded, and fair between provinces.

Contract:
- :func:`hash_password` and :func:`verify_password` are coroutines. The argon2 work (about half a second
  of CPU each at the library's default cost) runs on a small dedicated pool of threads
  (:data:`POOL`; argon2-cffi releases the GIL while hashing), never on the event loop: a burst of
  logins or sign-ups leaves every other request of the process its usual latency.
- Bounded: at most ``threads`` hashes run at once (``ODR_PASSWORD_THREADS``, 0: one per core); a job
  finds a place among at most ``queue`` waiting ones (``ODR_PASSWORD_QUEUE``), of which at most
  ``queue_per_tenant`` of one province (``ODR_PASSWORD_QUEUE_PER_TENANT``). Beyond either bound the call
  raises :class:`HashingBusy` at once (the HTTP layer answers 503 with ``Retry-After``): nothing queues
  without bound.
- Fair: waiting jobs are taken round-robin between provinces (the ``tenant`` given; ``None``, e.g. an
  unknown username or the platform operator, is one more queue), so one province's burst waits behind
  itself, not in front of the others.
- The hashing threads run at nice :data:`NICE` (Linux), below the event loop and the database.
- :func:`verify_password` costs the same for an unknown account (``password_hash`` None) as for a
  wrong password.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import os
import threading
from typing import Any, Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

NICE = 10
"""The hashing threads' nice value (as the import reader's child process): on a machine whose cores
the web process shares with PostgreSQL, a burst of logins takes the CPU left over, not the others'."""

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not-a-password")


class HashingBusy(Exception):
    """More password checks are waiting (in all, or of this province) than the pool takes."""

    retry_after = 1

    def __init__(self, tenant: str | None) -> None:
        who = f"of province {tenant} " if tenant else ""
        super().__init__(f"too many sign-ins and sign-ups {who}are being checked at this moment; retry in a moment")
        self.tenant = tenant


class _Job:
    __slots__ = ("fn", "args", "future")

    def __init__(self, fn: Callable[..., Any], args: tuple, future: concurrent.futures.Future) -> None:
        self.fn, self.args, self.future = fn, args, future


class FairPool:
    """Threads running jobs taken round-robin from per-province queues; see the module contract."""

    def __init__(self, threads: int = 0, queue: int = 64, queue_per_tenant: int = 32) -> None:
        self._cond = threading.Condition()
        self._waiting: dict[str, collections.deque[_Job]] = {}
        self._turns: collections.deque[str] = collections.deque()  # provinces with waiting jobs, next first
        self._count = 0
        self._threads: list[threading.Thread] = []
        self._pid = 0
        self.configure(threads=threads, queue=queue, queue_per_tenant=queue_per_tenant)

    def configure(self, *, threads: int = 0, queue: int = 64, queue_per_tenant: int = 32) -> None:
        """Set the bounds (``threads`` 0: one per core; more threads start when needed, none stop)."""
        with self._cond:
            self.threads = threads or os.cpu_count() or 1
            self.queue, self.queue_per_tenant = queue, queue_per_tenant

    @property
    def waiting(self) -> int:
        return self._count

    def _start_threads(self) -> None:
        if self._pid != os.getpid():  # threads do not survive a fork: a forked worker starts its own
            self._pid, self._threads = os.getpid(), []
            self._waiting.clear()
            self._turns.clear()
            self._count = 0
        while len(self._threads) < self.threads:
            thread = threading.Thread(target=self._work, name=f"odr-passwords-{len(self._threads)}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, tenant: str | None, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        """Queue ``fn(*args)`` for ``tenant``; :class:`HashingBusy` when the queue (or its share) is full."""
        key = tenant or ""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._cond:
            self._start_threads()
            mine = self._waiting.get(key)
            if self._count >= self.queue or (mine is not None and len(mine) >= self.queue_per_tenant):
                raise HashingBusy(tenant)
            if mine is None:
                mine = self._waiting[key] = collections.deque()
                self._turns.append(key)
            mine.append(_Job(fn, args, future))
            self._count += 1
            self._cond.notify()
        return future

    def _next(self) -> _Job:
        with self._cond:
            while not self._turns:
                self._cond.wait()
            key = self._turns.popleft()
            mine = self._waiting[key]
            job = mine.popleft()
            if mine:
                self._turns.append(key)  # its next job waits for every other province's turn
            else:
                del self._waiting[key]
            self._count -= 1
            return job

    def _work(self) -> None:
        try:  # Linux: a thread's own nice value; the event loop and PostgreSQL go first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        except (AttributeError, OSError):
            pass
        while True:
            job = self._next()
            if not job.future.set_running_or_notify_cancel():
                continue  # its caller went away while it waited
            try:
                result = job.fn(*job.args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)

    async def run(self, tenant: str | None, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.wrap_future(self.submit(tenant, fn, *args))


POOL = FairPool()
"""The process's password pool (configured from the settings by :func:`configure`)."""


def configure(settings: Any) -> None:
    """Apply ``ODR_PASSWORD_THREADS``, ``ODR_PASSWORD_QUEUE``, ``ODR_PASSWORD_QUEUE_PER_TENANT``."""
    POOL.configure(threads=settings.password_threads, queue=settings.password_queue,
                   queue_per_tenant=settings.password_queue_per_tenant)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(password: str, *, tenant: str | None = None) -> str:
    """The argon2 hash of ``password``, computed on the pool (in ``tenant``'s share)."""
    return await POOL.run(tenant, _hasher.hash, password)


async def verify_password(password_hash: str | None, password: str, *, tenant: str | None = None) -> bool:
    """Whether ``password`` matches; constant work: an unknown user costs the same as a wrong password."""
    return await POOL.run(tenant, _verify, password_hash, password)
