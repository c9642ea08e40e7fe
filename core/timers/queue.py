"""Where pending timers wait for their due moment: a Valkey sorted set, or a heap in memory.

Contract:
- A member is ``"<tenant>:<timer id>"``; its score is the due moment in epoch seconds.
- :meth:`TimerQueue.add` is idempotent: adding a member again only moves its score.
- :meth:`TimerQueue.pop_due` removes and returns members due at or before ``now``, atomically: two
  consumers (processes) never get the same member from one add. A popped member is gone from the
  queue; if the consumer dies before firing, the PostgreSQL row is still pending and the next
  reconcile puts it back. The queue is therefore only a schedule, never the record: losing it
  (Valkey flushed, process restarted) delays timers by at most one reconcile interval.
- Members carry no personal data (tenant slug and a timer uuid).
"""

from __future__ import annotations

import heapq
import uuid
from typing import Iterable, Protocol

from core.db.engine import SLUG_RE

QUEUE_KEY = "odr:timers"

# Pop up to ARGV[2] members with score <= ARGV[1] and remove them, in one atomic step.
_POP_DUE = """
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #members > 0 then
    redis.call('ZREM', KEYS[1], unpack(members))
end
return members
"""


def member(tenant: str, timer_id: uuid.UUID | str) -> str:
    return f"{tenant}:{timer_id}"


def parse_member(value: str | bytes) -> tuple[str, uuid.UUID] | None:
    """``(tenant, timer id)`` of a member, or None for anything malformed (dropped by the worker)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    tenant, _, raw_id = value.partition(":")
    if not SLUG_RE.match(tenant):
        return None
    try:
        return tenant, uuid.UUID(raw_id)
    except ValueError:
        return None


class TimerQueue(Protocol):
    name: str

    async def add(self, entries: Iterable[tuple[str, float]]) -> int:
        """Add or move ``(member, due epoch)`` entries; returns how many were given."""

    async def pop_due(self, now: float, limit: int = 100) -> list[str]:
        """Remove and return up to ``limit`` members due at or before ``now`` (earliest first)."""

    async def next_due(self) -> float | None:
        """Score of the earliest member, or None when the queue is empty."""

    async def size(self) -> int: ...

    async def close(self) -> None: ...


class MemoryTimerQueue:
    """In-process heap for the embedded single-process default. Not shared between processes: each
    process rebuilds it from PostgreSQL, and the firing claim there keeps timers exactly-once."""

    name = "memory"

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._scores: dict[str, float] = {}

    async def add(self, entries: Iterable[tuple[str, float]]) -> int:
        n = 0
        for m, due in entries:
            n += 1
            if self._scores.get(m) == due:
                continue
            self._scores[m] = due
            heapq.heappush(self._heap, (due, m))  # an older entry of ``m`` becomes stale, skipped on pop
        return n

    def _drop_stale(self) -> None:
        while self._heap and self._scores.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)

    async def pop_due(self, now: float, limit: int = 100) -> list[str]:
        out: list[str] = []
        self._drop_stale()
        while self._heap and len(out) < limit and self._heap[0][0] <= now:
            due, m = heapq.heappop(self._heap)
            del self._scores[m]
            out.append(m)
            self._drop_stale()
        return out

    async def next_due(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    async def size(self) -> int:
        return len(self._scores)

    async def clear(self) -> None:
        self._heap.clear()
        self._scores.clear()

    async def close(self) -> None:
        return None


class ValkeyTimerQueue:
    """One sorted set shared by every worker process (key :data:`QUEUE_KEY`)."""

    name = "valkey"

    def __init__(self, url: str, key: str = QUEUE_KEY) -> None:
        import valkey.asyncio as valkey

        self.key = key
        self._client = valkey.from_url(url)
        self._pop = self._client.register_script(_POP_DUE)

    async def add(self, entries: Iterable[tuple[str, float]]) -> int:
        mapping = {m: due for m, due in entries}
        if mapping:
            await self._client.zadd(self.key, mapping)
        return len(mapping)

    async def pop_due(self, now: float, limit: int = 100) -> list[str]:
        members = await self._pop(keys=[self.key], args=[repr(float(now)), int(limit)])
        return [m.decode() if isinstance(m, bytes) else m for m in members]

    async def next_due(self) -> float | None:
        first = await self._client.zrange(self.key, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def size(self) -> int:
        return int(await self._client.zcard(self.key))

    async def close(self) -> None:
        await self._client.aclose()


def make_queue(valkey_url: str | None) -> TimerQueue:
    """Valkey when configured (several worker processes), else the in-memory heap."""
    return ValkeyTimerQueue(valkey_url) if valkey_url else MemoryTimerQueue()
