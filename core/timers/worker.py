"""The timer worker loop: rebuild the queue from PostgreSQL, pop due members, fire them.

Contract:
- Any number of workers (processes or tasks) may run at once over one Valkey queue; each timer still
  fires exactly once because firing is claimed in PostgreSQL (:mod:`core.timers.fire`).
- On start and every ``reconcile_seconds`` a worker reconciles every active tenant: pending timers
  already due are fired directly (covers a flushed Valkey, a worker down at due time, a Valkey
  outage), and pending timers due within ``lookahead`` (4 reconcile intervals, at least 5 minutes)
  are added to the queue (idempotent). Later timers enter the queue at a later reconcile, so the
  queue holds only the near future. A lost queue entry therefore delays a timer by at most one
  reconcile interval; none is lost while its row is pending.
- Between reconciles the worker pops due members and sleeps until the earliest one, at most
  ``poll_seconds`` (other processes may add earlier members).
- Nothing here raises out of the loop: database, Valkey and plugin failures are logged (by type,
  with tenant and timer id only) and retried.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid

from core.db import engine as db
from core.notifications.bus import Bus
from core.notifications.deliver import deliver
from core.timers.fire import FireResult, Outcome, fire_timer
from core.timers.queue import TimerQueue, member, parse_member

log = logging.getLogger(__name__)
OVERDUE_BATCH = 500
MIN_SCHEMA_VERSION = "0003"  # the migration that creates ``timers``


class TimerWorker:
    def __init__(
        self,
        platform,
        queue: TimerQueue,
        bus: Bus | None,
        *,
        reconcile_seconds: float | None = None,
        poll_seconds: float | None = None,
        batch: int = 100,
        concurrency: int = 4,
        name: str = "timer-worker",
    ) -> None:
        settings = platform.settings
        self.platform = platform
        self.queue = queue
        self.bus = bus
        self.reconcile_seconds = float(reconcile_seconds or settings.timer_reconcile_seconds)
        self.poll_seconds = float(poll_seconds or settings.timer_poll_seconds)
        self.lookahead = max(4 * self.reconcile_seconds, 300.0)
        self.batch = batch
        self.name = name
        self.fired = 0
        """Timers this worker fired (claimed and committed)."""
        self.reconciles = 0
        self._sem = asyncio.Semaphore(concurrency)
        self._queue_ok = True
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> asyncio.Task:
        """Run the loop as a background task of the current event loop."""
        if self._task is None or self._task.done():
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self.run(), name=self.name)
        return self._task

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to stop and wait for the timer in hand to finish (cancelled after ``timeout``;
        an interrupted firing rolls back and stays pending)."""
        self._stop.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(task, timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass

    async def run(self) -> None:
        next_reconcile = 0.0
        reconciling: asyncio.Task | None = None
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_reconcile and (reconciling is None or reconciling.done()):
                    # In its own task: a long reconcile (many tenants) does not hold up due timers.
                    reconciling = asyncio.create_task(self.reconcile(), name=f"{self.name}-reconcile")
                    next_reconcile = time.monotonic() + self.reconcile_seconds
                await self._tick(next_reconcile)
        finally:
            if reconciling is not None and not reconciling.done():
                reconciling.cancel()
                try:
                    await reconciling
                except (asyncio.CancelledError, Exception):
                    pass

    async def _tick(self, next_reconcile: float) -> None:
        """Fire what is due, then sleep until the earliest queued member (at most ``poll_seconds``)."""
        try:
            popped = await self.fire_due()
            if not self._queue_ok:
                log.info("%s: timer queue available again", self.name)
            self._queue_ok = True
        except Exception as exc:
            if self._queue_ok:  # log the change, not every poll of an outage
                log.warning("%s: timer queue unavailable (%s); reconcile still fires overdue timers",
                            self.name, type(exc).__name__)
            self._queue_ok = False
            popped = 0
        if popped >= self.batch:
            return
        wait = min(self.poll_seconds, max(0.05, next_reconcile - time.monotonic()))
        try:
            nxt = await self.queue.next_due()
        except Exception:
            nxt = None
        if nxt is not None:
            wait = min(wait, max(0.0, nxt - time.time()))
        try:
            await asyncio.wait_for(self._stop.wait(), wait)
        except asyncio.TimeoutError:
            pass

    # -- reconcile -------------------------------------------------------------------------------
    async def tenants(self) -> list[str]:
        async with db.platform_transaction() as conn:
            rows = await conn.fetch(
                "SELECT slug FROM odr.tenants WHERE status = 'active' AND schema_version >= $1 ORDER BY slug",
                MIN_SCHEMA_VERSION,
            )
        return [r["slug"] for r in rows]

    async def reconcile(self) -> int:
        """Rebuild the queue from every active tenant and fire overdue timers. Returns how many timers
        were queued or fired. Never raises."""
        self.reconciles += 1
        try:
            slugs = await self.tenants()
        except Exception as exc:
            log.warning("%s: cannot list tenants (%s)", self.name, type(exc).__name__)
            return 0
        total = 0
        for slug in slugs:
            if self._stop.is_set():
                break
            try:
                total += await self.reconcile_tenant(slug)
            except Exception as exc:
                log.warning("%s: reconcile of tenant %s failed (%s)", self.name, slug, type(exc).__name__)
        return total

    async def reconcile_tenant(self, slug: str) -> int:
        async with db.tenant_transaction(slug) as conn:
            now = await conn.fetchval("SELECT now()")
            rows = await conn.fetch(
                """SELECT id, due_at FROM timers
                   WHERE fired_at IS NULL AND cancelled_at IS NULL AND due_at <= $1
                   ORDER BY due_at""",
                now + dt.timedelta(seconds=self.lookahead),
            )
        overdue = [r["id"] for r in rows if r["due_at"] <= now][:OVERDUE_BATCH]
        upcoming = [(member(slug, r["id"]), r["due_at"].timestamp()) for r in rows if r["due_at"] > now]
        if upcoming:
            try:
                await self.queue.add(upcoming)
            except Exception as exc:
                log.warning("%s: cannot queue %d timers of %s (%s)", self.name, len(upcoming), slug, type(exc).__name__)
        if overdue:
            await asyncio.gather(*(self._fire(slug, tid) for tid in overdue))
        return len(upcoming) + len(overdue)

    # -- firing ----------------------------------------------------------------------------------
    async def fire_due(self) -> int:
        """Pop the members due now and fire them. Returns how many were popped."""
        members = await self.queue.pop_due(time.time(), self.batch)
        jobs = []
        for m in members:
            parsed = parse_member(m)
            if parsed is None:
                log.warning("%s: malformed timer queue member dropped", self.name)
                continue
            jobs.append(self._fire(*parsed))
        if jobs:
            await asyncio.gather(*jobs)
        return len(members)

    async def _fire(self, tenant: str, timer_id: uuid.UUID) -> FireResult | None:
        async with self._sem:
            try:
                result = await fire_timer(tenant, timer_id)
            except Exception as exc:
                # Rolled back: the row stays pending and the next reconcile retries it (no hot loop
                # on a timer that keeps failing).
                log.error("%s: timer %s/%s failed to fire (%s); the next reconcile retries it",
                          self.name, tenant, timer_id, type(exc).__name__)
                return None
            if result.outcome is Outcome.FIRED:
                self.fired += 1
                log.info("%s: fired %s timer %s/%s", self.name, result.kind, tenant, timer_id)
                if result.outgoing is not None:
                    await deliver(self.platform, self.bus, result.outgoing)
            elif result.outcome is Outcome.NOT_DUE and result.due_at is not None:
                due = result.due_at.timestamp()
                if due <= time.time() + self.lookahead:
                    # Moved later, or this clock runs ahead of the database's: never spin on it.
                    await self._requeue(tenant, timer_id, max(due, time.time() + 0.25))
            elif result.outcome is Outcome.SATISFIED:
                log.info("%s: %s timer %s/%s cancelled: milestone met in time", self.name, result.kind, tenant, timer_id)
            return result

    async def _requeue(self, tenant: str, timer_id: uuid.UUID, due: float) -> None:
        try:
            await self.queue.add([(member(tenant, timer_id), due)])
        except Exception as exc:
            log.warning("%s: cannot re-queue timer %s/%s (%s); reconcile will", self.name, tenant, timer_id, type(exc).__name__)
