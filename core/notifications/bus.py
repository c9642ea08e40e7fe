"""Live push of recorded notifications to connected clients of every process.

Contract:
- :meth:`publish` is called after the notification rows are committed; delivery is best effort
  (at most once, live only). Clients that missed a push read ``GET .../notifications`` or reconnect
  the stream with ``Last-Event-ID``: the table is the record.
- With Valkey, a notice is published on the channel ``odr:notify:<tenant>``; each process holds one
  pattern subscription (``odr:notify:*``) while it has local subscribers and fans messages out to
  them. Without Valkey, an in-process broadcaster does the same within one process.
- Subscribers receive every notice of their tenant; filtering to what the caller may see is the
  API's job (:mod:`core.notifications.api`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import msgspec

from core.valkey_pubsub import read_forever

log = logging.getLogger(__name__)
CHANNEL_PREFIX = "odr:notify:"
SUBSCRIBER_BUFFER = 1000


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded notification row, as pushed and as listed by the API."""

    id: int
    tenant: str
    recipient: str
    kind: str
    complaint_id: str | None = None
    enterprise_id: str | None = None
    payload: dict[str, Any] = {}
    created_at: dt.datetime
    read_at: dt.datetime | None = None


def channel(tenant: str) -> str:
    return f"{CHANNEL_PREFIX}{tenant}"


class Subscription:
    """A local subscriber's buffer. ``dropped`` counts notices lost because the buffer was full."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.queue: asyncio.Queue[Notice] = asyncio.Queue(SUBSCRIBER_BUFFER)
        self.dropped = 0

    async def get(self) -> Notice:
        return await self.queue.get()

    def offer(self, notice: Notice) -> None:
        try:
            self.queue.put_nowait(notice)
        except asyncio.QueueFull:
            self.dropped += 1


class _Fanout:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}

    def _dispatch(self, notice: Notice) -> None:
        for sub in tuple(self._subs.get(notice.tenant, ())):
            sub.offer(notice)

    def _add(self, sub: Subscription) -> None:
        self._subs.setdefault(sub.tenant, set()).add(sub)

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.tenant)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.tenant]

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subs.values())


class MemoryBus(_Fanout):
    """In-process broadcaster (embedded single-process default)."""

    name = "memory"

    async def publish(self, notice: Notice) -> None:
        self._dispatch(notice)

    async def subscribe(self, tenant: str) -> Subscription:
        sub = Subscription(tenant)
        self._add(sub)
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        self._remove(sub)

    async def close(self) -> None:
        self._subs.clear()


class ValkeyBus(_Fanout):
    """Valkey pub/sub. Publishing needs no subscription; the pattern subscription and its reader
    task exist only while this process has local subscribers (none in a worker-only process)."""

    name = "valkey"

    def __init__(self, url: str) -> None:
        super().__init__()
        import valkey.asyncio as valkey

        self._client = valkey.from_url(url)
        self._reader: asyncio.Task | None = None
        self._ready: asyncio.Event | None = None
        self._lock = asyncio.Lock()

    async def publish(self, notice: Notice) -> None:
        await self._client.publish(channel(notice.tenant), msgspec.json.encode(notice))

    async def subscribe(self, tenant: str) -> Subscription:
        """Register a local subscriber; returns once the process's pattern subscription is confirmed
        by Valkey, so anything published afterwards reaches it."""
        sub = Subscription(tenant)
        self._add(sub)
        async with self._lock:
            if self._reader is None or self._reader.done():
                self._ready = asyncio.Event()
                self._reader = asyncio.create_task(self._read(self._ready), name="odr-notify-reader")
            ready = self._ready
        try:
            await asyncio.wait_for(ready.wait(), 5)
        except asyncio.TimeoutError:
            log.warning("notification subscription not confirmed by Valkey within 5 s; live push may lag")
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        self._remove(sub)
        if not self._subs:
            await self._stop_reader()

    async def _stop_reader(self) -> None:
        async with self._lock:
            task, self._reader = self._reader, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    async def _read(self, ready: asyncio.Event) -> None:
        def on_message(msg: dict) -> None:
            try:
                self._dispatch(msgspec.json.decode(msg["data"], type=Notice))
            except msgspec.DecodeError:
                log.warning("malformed notice on %s dropped", msg.get("channel"))

        async def subscribe(pubsub) -> None:
            await pubsub.psubscribe(f"{CHANNEL_PREFIX}*")

        await read_forever(
            self._client.pubsub, subscribe=subscribe, on_subscribed=lambda first: ready.set(),
            on_message=on_message, what="notification",
        )

    async def close(self) -> None:
        self._subs.clear()
        await self._stop_reader()
        await self._client.aclose()


Bus = MemoryBus | ValkeyBus


def make_bus(valkey_url: str | None) -> Bus:
    return ValkeyBus(valkey_url) if valkey_url else MemoryBus()
