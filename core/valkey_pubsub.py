"""One reconnecting Valkey pub/sub reader loop, shared by every subscriber of the platform
(live notifications, policy-cache invalidation)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)


async def read_forever(
    make_pubsub: Callable[[], Any],
    *,
    subscribe: Callable[[Any], Awaitable[None]],
    on_subscribed: Callable[[bool], None],
    on_message: Callable[[dict], None],
    what: str,
) -> None:
    """Subscribe (``subscribe(pubsub)``) and hand every message to ``on_message`` until cancelled.

    A lost connection is retried with backoff (0.5 s doubling to 10 s). ``on_subscribed(first)`` runs
    on every (re)subscription; ``first`` is False after a reconnect, when messages may have been
    missed. Exceptions of ``on_message`` are the caller's to contain."""
    backoff = 0.5
    first = True
    while True:
        pubsub = make_pubsub()
        try:
            await subscribe(pubsub)
            while True:
                msg = await pubsub.get_message(timeout=1.0)
                if msg is None:
                    continue
                if msg["type"] in ("subscribe", "psubscribe"):
                    on_subscribed(first)
                    first = False
                    backoff = 0.5
                    continue
                if msg["type"] in ("message", "pmessage"):
                    on_message(msg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s subscription lost (%s); reconnecting in %.1f s", what, type(exc).__name__, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
        finally:
            try:
                await asyncio.shield(pubsub.aclose())
            except BaseException:
                pass
