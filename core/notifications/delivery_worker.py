"""The delivery worker: expands recorded notifications into channel deliveries, sends what is due
through the channel plugins, and records the outcome (see :mod:`core.notifications.outbox`).

Contract:
- Runs in ``odr worker`` beside the timer worker (and in the web process where the timer worker runs
  in-process, the embedded default). Any number may run at once: every step claims its rows with
  ``FOR UPDATE SKIP LOCKED``.
- Each poll (``ODR_DELIVERY_POLL_SECONDS``) and tenant: one short transaction expands pending
  notifications and subscription batches and claims due deliveries up to the free sending slots; after
  its commit each delivery is sent on its own (a thread of this worker's pool: channel plugins may block on the network), so
  a slow or failing channel holds only its own slots and never another channel's rows, nor intake.
- A stopped or killed worker loses nothing: unexpanded notifications and pending deliveries stay in
  PostgreSQL; a delivery claimed but not finished is sent again when its lease ends.
- Channels send through the platform's checked client (``net``, :mod:`core.notifications.outbound`); a
  destination it refuses (an internal address) dead-letters the delivery at once with the reason.
- Nothing raises out of the loop; failures are logged by type with tenant and delivery id only (never
  an address, never a plugin's message).
- Housekeeping: every ``ODR_HOUSEKEEPING_SECONDS`` (and at start) the loop also sweeps each tenant:
  delivered deliveries older than ``ODR_DELIVERY_RETENTION_DAYS`` are removed
  (:mod:`core.notifications.retention`) and the content of uploads idle for more than
  ``ODR_IMPORT_RETENTION_DAYS`` purged (:mod:`core.imports.retention`), each in batches of one short
  transaction (at most :data:`SWEEP_BATCHES` per kind, tenant and round: a backlog is worked off over
  rounds, never by one giant statement).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import msgspec

from core.db import engine as db
from core.imports.retention import sweep_uploads
from core.notifications import outbox
from core.notifications.retention import sweep_deliveries
from odr_plugin_api import ChannelMessage, ChannelReceipt, DeliveryFailed
from odr_plugin_api.net import DestinationRefused

log = logging.getLogger(__name__)
MIN_SCHEMA_VERSION = "0009"  # the tenant migration that creates ``deliveries``
TENANTS_TTL = 10.0
DELIVERY_SWEEP_BATCH = 1000
UPLOAD_SWEEP_BATCH = 20
SWEEP_BATCHES = 50
"""Batches per kind, tenant and housekeeping round."""


class DeliveryWorker:
    def __init__(self, platform, *, poll_seconds: float | None = None, retry_seconds: float | None = None,
                 max_attempts: int | None = None, lease_seconds: float | None = None, concurrency: int = 8,
                 name: str = "delivery-worker", housekeeping_seconds: float | None = None) -> None:
        settings = platform.settings
        self.platform = platform
        self.poll_seconds = float(poll_seconds or settings.delivery_poll_seconds)
        self.retry_seconds = float(retry_seconds if retry_seconds is not None else settings.delivery_retry_seconds)
        self.max_attempts = int(max_attempts or settings.delivery_max_attempts)
        self.lease_seconds = float(lease_seconds or settings.delivery_lease_seconds)
        self.concurrency = concurrency
        self.name = name
        self.housekeeping_seconds = float(housekeeping_seconds if housekeeping_seconds is not None
                                          else settings.housekeeping_seconds)
        self.delivery_retention_days = settings.delivery_retention_days
        self.import_retention_days = settings.import_retention_days
        self._housekept_at: float | None = None
        self.removed = 0
        """Delivered deliveries this worker's housekeeping removed."""
        self.purged = 0
        """Uploads whose content this worker's housekeeping purged."""
        self.expanded = 0
        """Deliveries (and subscription batches) this worker queued."""
        self.sent = 0
        """Deliveries a channel accepted (or skipped on purpose)."""
        self.failed = 0
        """Failed attempts (each retried later or dead-lettered)."""
        self.dead = 0
        """Deliveries this worker dead-lettered."""
        self._inflight: set[asyncio.Task] = set()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=name)
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._tenants: tuple[float, list[str]] = (0.0, [])

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> asyncio.Task:
        if self._task is None or self._task.done():
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self.run(), name=self.name)
        return self._task

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        self._wake.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and wait for the deliveries in hand (cancelled after ``timeout``: their rows
        stay leased and are sent again when the lease ends)."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
        if self._inflight:
            done, pending = await asyncio.wait(set(self._inflight), timeout=timeout)
            for t in pending:
                t.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def run(self) -> None:
        while not self._stop.is_set():
            busy = await self.tick()
            if busy:
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake_or_stop(), self.poll_seconds)
            except asyncio.TimeoutError:
                pass

    async def _wake_or_stop(self) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({stop, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            wake.cancel()

    # -- one round -------------------------------------------------------------------------------
    async def tenants(self) -> list[str]:
        at, slugs = self._tenants
        if time.monotonic() - at > TENANTS_TTL:
            async with db.platform_transaction() as conn:
                rows = await conn.fetch(
                    "SELECT slug FROM odr.tenants WHERE status = 'active' AND schema_version >= $1 ORDER BY slug",
                    MIN_SCHEMA_VERSION)
            slugs = [r["slug"] for r in rows]
            self._tenants = (time.monotonic(), slugs)
        return slugs

    async def tick(self) -> bool:
        """One round over every tenant; True when there may be more work right away. Never raises."""
        try:
            slugs = await self.tenants()
        except Exception as exc:
            log.warning("%s: cannot list tenants (%s)", self.name, type(exc).__name__)
            return False
        busy = False
        for slug in slugs:
            if self._stop.is_set():
                break
            try:
                busy |= await self.tick_tenant(slug)
            except Exception as exc:
                log.warning("%s: delivery round of tenant %s failed (%s)", self.name, slug, type(exc).__name__)
        now = time.monotonic()
        if self._housekept_at is None or now - self._housekept_at >= self.housekeeping_seconds:
            self._housekept_at = now
            await self.housekeeping(slugs)
        return busy

    # -- housekeeping ----------------------------------------------------------------------------
    async def housekeeping(self, slugs: list[str]) -> tuple[int, int]:
        """The retention sweeps over ``slugs``, in bounded batches: (deliveries removed, uploads purged).
        Never raises (a failing tenant is logged by type and tried again next round)."""
        removed = purged = 0
        for slug in slugs:
            for sweep, batch, kind in ((self._sweep_deliveries, DELIVERY_SWEEP_BATCH, "deliveries"),
                                       (self._sweep_uploads, UPLOAD_SWEEP_BATCH, "uploads")):
                try:
                    for _ in range(SWEEP_BATCHES):
                        if self._stop.is_set():
                            return removed, purged
                        async with db.tenant_transaction(slug) as conn:
                            done = await sweep(conn, batch)
                        if kind == "deliveries":
                            removed += done
                        else:
                            purged += done
                        if done < batch:
                            break
                except Exception as exc:
                    log.warning("%s: housekeeping of %s of tenant %s failed (%s)", self.name, kind, slug,
                                type(exc).__name__)
        self.removed += removed
        self.purged += purged
        if removed or purged:
            log.info("%s: housekeeping removed %d delivered deliveries, purged %d uploads", self.name, removed, purged)
        return removed, purged

    async def _sweep_deliveries(self, conn, batch: int) -> int:
        return await sweep_deliveries(conn, retention_days=self.delivery_retention_days, batch=batch)

    async def _sweep_uploads(self, conn, batch: int) -> int:
        return await sweep_uploads(conn, retention_days=self.import_retention_days, batch=batch)

    async def tick_tenant(self, slug: str) -> bool:
        """One short transaction: expand new notifications and subscription batches, then claim what is
        due up to the free sending slots (sent after the commit)."""
        free = self.concurrency - len(self._inflight)
        claimed = []
        async with db.tenant_transaction(slug) as conn:
            queued = await outbox.expand_notifications(self.platform, conn, slug)
            queued += await outbox.expand_subscriptions(self.platform, conn, slug)
            if free > 0:
                claimed = await outbox.claim(conn, limit=free, lease_seconds=self.lease_seconds)
        self.expanded += queued
        for delivery in claimed:
            task = asyncio.create_task(self._deliver(slug, delivery), name=f"{self.name}-{delivery.id}")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return bool(queued) or (free > 0 and len(claimed) == free)

    # -- one delivery ----------------------------------------------------------------------------
    async def send(self, slug: str, delivery: outbox.Delivery) -> ChannelReceipt:
        """Call the delivery's channel plugin (in this worker's thread pool); raises on failure."""
        message = msgspec.convert({**delivery.message, "attempt": delivery.attempts, "address": delivery.address},
                                  ChannelMessage)
        scope, active = await self.platform.scope(slug, delivery.node_code)
        if delivery.channel not in active:
            raise DeliveryFailed(f"channel {delivery.channel} is not active at node {delivery.node_code}")
        host = self.platform.host
        receipt = await asyncio.get_running_loop().run_in_executor(
            self._pool, lambda: host.call_plugin("odr_channel_send", plugin=delivery.channel, scope=scope,
                                                 message=message, net=self.platform.outbound))
        if not isinstance(receipt, ChannelReceipt):
            raise DeliveryFailed("the channel returned no receipt")
        return receipt

    async def _deliver(self, slug: str, delivery: outbox.Delivery) -> None:
        try:
            await self._deliver_one(slug, delivery)
        finally:
            self.wake()  # a sending slot is free again

    async def _deliver_one(self, slug: str, delivery: outbox.Delivery) -> None:
        error = None
        final = False
        try:
            receipt = await self.send(slug, delivery)
        except DestinationRefused as exc:  # retrying cannot help: dead-lettered at once, with the reason
            error, final = str(exc)[:300] or "DestinationRefused", True
        except DeliveryFailed as exc:
            error = str(exc)[:300] or "DeliveryFailed"
        except LookupError:
            error = f"channel {delivery.channel} is not installed"
        except Exception as exc:  # a plugin's message may hold personal data: its type only
            error = type(exc).__name__
        try:
            async with db.tenant_transaction(slug) as conn:
                if error is None:
                    await outbox.finish_sent(conn, delivery.id, status=receipt.status, detail=receipt.detail)
                    self.sent += 1
                    return
                state = await outbox.finish_failed(conn, delivery, error=error, retry_seconds=self.retry_seconds,
                                                   max_attempts=delivery.attempts if final else self.max_attempts)
        except Exception as exc:
            log.warning("%s: outcome of delivery %s/%s not recorded (%s); it is sent again after its lease",
                        self.name, slug, delivery.id, type(exc).__name__)
            return
        self.failed += 1
        if state == "dead":
            self.dead += 1
            log.warning("%s: delivery %s/%s via %s dead-lettered after %d attempts", self.name, slug, delivery.id,
                        delivery.channel, delivery.attempts)
        else:
            log.info("%s: delivery %s/%s via %s failed (attempt %d); retried later", self.name, slug, delivery.id,
                     delivery.channel, delivery.attempts)
