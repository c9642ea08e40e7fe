"""Tell every process at once that a tenant's plugin activations changed (Valkey pub/sub).

Each process caches a tenant's activations (and the policies, scopes and calendars derived from
them) in its :class:`~core.runtime.Platform`. The process that saves a change forgets its own cache
at once; the others would re-read only after ``ACTIVATION_TTL``. With ``ODR_VALKEY_URL`` set, the saver
also publishes ``{"tenant": slug}`` on channel :data:`CHANNEL`, and every subscribed process calls
``platform.forget_activations(slug)`` on receipt, so a toggle takes effect everywhere well within a
second. Without Valkey nothing is published (one process: the in-process forget is enough).

The same subscription carries placement changes (:data:`PLACEMENT_CHANNEL`, ``{"tenant": slug}``):
a tenant moved to another cluster, or its writes paused or resumed for the move; every process then
forgets its cached placement (:func:`core.db.clusters.forget_placement`, re-read otherwise after
``PLACEMENT_TTL``).

Best effort by design: a failed publish or a lost subscription is logged, and ``ACTIVATION_TTL``
remains the fallback. After the subscription is (re)established, every cached tenant is forgotten,
since messages may have been missed while it was down.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import msgspec

from core.valkey_pubsub import read_forever

from core.db.clusters import forget_placement
from core.db.engine import SLUG_RE

if TYPE_CHECKING:
    from core.runtime import Platform

log = logging.getLogger(__name__)

CHANNEL = "odr:policy"
PLACEMENT_CHANNEL = "odr:placement"
PUBLISH_TIMEOUT = 2.0


class PolicyChanged(msgspec.Struct, frozen=True, kw_only=True):
    tenant: str


class PolicyInvalidation:
    """Publisher and subscriber of :data:`CHANNEL` for one process's ``platform``.

    ``publish`` works without ``start`` (a lazily made client); ``start`` subscribes and returns once
    Valkey has confirmed the subscription, so anything published afterwards reaches this process.
    Both are no-ops when ``valkey_url`` is None.
    """

    def __init__(self, platform: "Platform", valkey_url: str | None) -> None:
        self.platform = platform
        self.url = valkey_url
        self.received = 0
        """Invalidations applied (for tests and diagnostics)."""
        self._client = None
        self._reader: asyncio.Task | None = None
        self._ready: asyncio.Event | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    @property
    def listening(self) -> bool:
        return self._reader is not None and not self._reader.done()

    def _valkey(self):
        if self._client is None:
            import valkey.asyncio as valkey

            self._client = valkey.from_url(self.url)
        return self._client

    async def publish(self, tenant: str, channel: str = CHANNEL) -> bool:
        """Announce that ``tenant``'s activations (or, on :data:`PLACEMENT_CHANNEL`, its placement)
        changed, after the change committed. Never raises; returns whether the message was handed to
        Valkey."""
        if not self.url:
            return False
        try:
            await asyncio.wait_for(
                self._valkey().publish(channel, msgspec.json.encode(PolicyChanged(tenant=tenant))), PUBLISH_TIMEOUT
            )
            return True
        except Exception as exc:  # the change is saved; other processes catch up within ACTIVATION_TTL
            log.warning("policy invalidation for %s not published (%s); other processes follow within the TTL",
                        tenant, type(exc).__name__)
            return False

    async def start(self, timeout: float = 5.0) -> None:
        """Subscribe (idempotent); waits up to ``timeout`` seconds for Valkey's confirmation."""
        if not self.url or self.listening:
            return
        self._ready = asyncio.Event()
        self._reader = asyncio.create_task(self._read(self._ready), name="odr-policy-invalidation")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("policy invalidation subscription not confirmed by Valkey within %.0f s; "
                        "toggles from other processes may take up to the TTL", timeout)

    async def stop(self) -> None:
        """Unsubscribe and close the client (also the publishing one)."""
        task, self._reader = self._reader, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:
                pass

    def _apply(self, data: bytes, channel: str = CHANNEL) -> None:
        try:
            msg = msgspec.json.decode(data, type=PolicyChanged)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("malformed policy invalidation on %s dropped", CHANNEL)
            return
        if not SLUG_RE.match(msg.tenant):
            log.warning("policy invalidation for an invalid tenant slug dropped")
            return
        if channel == PLACEMENT_CHANNEL:
            forget_placement(msg.tenant)
        else:
            self.platform.forget_activations(msg.tenant)
        self.received += 1

    def _forget_all(self) -> None:
        cached = getattr(self.platform, "_activations", {})
        for slug in list(cached):
            self.platform.forget_activations(slug)
        forget_placement(None)

    async def _read(self, ready: asyncio.Event) -> None:
        def on_subscribed(first: bool) -> None:
            if not first:  # messages may have been missed while disconnected
                self._forget_all()
            ready.set()

        async def subscribe(pubsub) -> None:
            await pubsub.subscribe(CHANNEL, PLACEMENT_CHANNEL)

        await read_forever(
            lambda: self._valkey().pubsub(), subscribe=subscribe, on_subscribed=on_subscribed,
            on_message=lambda msg: self._apply(msg["data"], _text(msg.get("channel"))), what="policy invalidation",
        )


def _text(channel) -> str:
    return channel.decode() if isinstance(channel, bytes) else str(channel or CHANNEL)
