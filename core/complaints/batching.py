"""Group commit for complaint intake: intakes of one tenant that arrive together are written in ONE
tenant transaction (one statement over a JSON document of the batch), each caller getting its own row back.

Contract (see :func:`core.complaints.service.intake`, the only user):
- A caller submits a fully validated :class:`IntakeRow` (everything that can be refused has been
  checked before) and awaits an :class:`Outcome`:
  ``("created", row)``: filed now, ``row`` holding the batcher's ``returning`` columns and the
  notification (``notice_*``); ``("existing", row)``: the idempotency key was seen before (in the
  table, or earlier in the same batch: the first submission wins, like sequential requests), ``row``
  holding its ``existing_columns``;
  ``None``: not decided here (the cached ODR unit changed, or the batch failed): the caller files it
  on its own, in its own transaction, exactly as without batching.
- A batch is one transaction: an item is written completely (complaint, event, timers, notification)
  or not at all. When the batch's statement fails, the whole batch rolls back and every item answers
  ``None``, so one bad item never fails the others.
- Batching adds no waiting when the tenant is idle: the first intake is flushed on the next turn of the
  event loop; while ``max_inflight`` batches of a tenant are being written, new arrivals queue up and
  form the next batch (at most ``max_batch`` items). ``ODR_INTAKE_BATCH_WINDOW_MS`` adds an optional
  collection window.
- Back-pressure: when ``max_queue`` intakes of a tenant already wait (``ODR_INTAKE_QUEUE_MAX``), a new
  one is refused at once with :class:`IntakeOverloaded`, before anything is written; waiting is bounded.
- Age limit: an intake that has waited longer than ``max_wait`` (``ODR_INTAKE_MAX_WAIT_MS``) when it would
  join a batch is refused the same way (never once its batch has started: a refused intake is never
  written). Its age counts from :data:`arrived_at` when the HTTP layer set it (the moment the request
  reached the application, so time spent waiting for the event loop counts too), else from submission.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import logging
import os
import time
import uuid
import weakref
from typing import Any, Literal

import msgspec

from core.db.engine import tenant_transaction

log = logging.getLogger(__name__)


class IntakeRow(msgspec.Struct, kw_only=True):
    """The parameters of one intake: one object of the statement's JSON document, its fields the
    columns of ``json_to_recordset`` in :func:`intake_sql` (``explanation`` is encoded as a nested
    JSON object and stored as ``jsonb``). ``id`` is given when the row is written."""

    key: str | None
    source: str
    consumer_account_id: uuid.UUID | None
    consumer_name: str
    consumer_phone: str
    consumer_address: str | None
    enterprise_id: uuid.UUID | None
    company_name: str
    odr_unit: bool
    node_code: str
    node_path: str
    category: str | None
    subject: str
    description: str
    amount_claimed: float | None
    state: str
    contact_due: dt.datetime | None
    close_due: dt.datetime | None
    policy: str | None
    policy_version: str | None
    explanation: Any
    actor_id: str
    actor_role: str
    route: str
    timer_kinds: list[str]
    timer_dues: list[dt.datetime]
    unit_node: str | None
    id: uuid.UUID | None = None
    # set by the import of 12315 exports (core.imports) only; a filed complaint leaves them None
    registration_number: str | None = None
    """the national registration number (unique; the import is idempotent on it)"""
    received_at: dt.datetime | None = None
    """when the case was received (default: now); the complaint's number, ``created_at`` and, for a case
    in ODR, ``entered_odr_at``"""
    closed_at: dt.datetime | None = None
    event_extra: dict[str, Any] | None = None
    """merged into the ``registered`` event's ``after``"""


Outcome = tuple[Literal["created", "existing"], Any] | None

arrived_at: contextvars.ContextVar[float | None] = contextvars.ContextVar("odr_request_arrived_at", default=None)
"""``time.monotonic()`` when the current HTTP request reached the application (set by
:class:`core.api.backpressure.InflightLimit`); the start of an intake's age."""


class IntakeOverloaded(Exception):
    """More intakes of a tenant wait for a group commit than ``ODR_INTAKE_QUEUE_MAX``: this one is
    refused before anything is written (the HTTP layer answers 503 with ``Retry-After``)."""

    retry_after = 1


def new_ids(n: int) -> list[uuid.UUID]:
    """``n`` time-ordered UUIDs (version 7: milliseconds since the epoch, then 74 random bits from the
    operating system's generator, read once for all ``n``) for new complaints. Complaints filed
    together get neighbouring ids, so the indexes keyed by complaint id (the complaint's, its facts',
    events' and timers') take new entries at their right edge instead of on a random page each: fewer
    pages touched and written to the WAL per intake."""
    stamp = (time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | 0x2 << 62  # version 7, RFC 4122 variant
    noise = os.urandom(10 * n)
    keep = ~(0xF << 76) & ~(0x3 << 62) & ((1 << 80) - 1)
    return [uuid.UUID(int=stamp | int.from_bytes(noise[10 * i : 10 * i + 10], "big") & keep) for i in range(n)]


def new_id() -> uuid.UUID:
    """One id as :func:`new_ids` makes them."""
    return new_ids(1)[0]

# the SQL type of each IntakeRow field in the JSON document
_COLUMNS = {
    "key": "text", "source": "text", "consumer_account_id": "uuid", "consumer_name": "text",
    "consumer_phone": "text", "consumer_address": "text", "enterprise_id": "uuid", "company_name": "text",
    "odr_unit": "bool", "node_code": "text", "node_path": "text", "category": "text", "subject": "text",
    "description": "text", "amount_claimed": "numeric", "state": "text", "contact_due": "timestamptz",
    "close_due": "timestamptz", "policy": "text", "policy_version": "text", "explanation": "jsonb",
    "actor_id": "text", "actor_role": "text", "route": "text", "timer_kinds": "text[]",
    "timer_dues": "timestamptz[]", "unit_node": "text", "id": "uuid", "registration_number": "text",
    "received_at": "timestamptz", "closed_at": "timestamptz", "event_extra": "jsonb",
}
assert set(_COLUMNS) == set(IntakeRow.__struct_fields__)
_ENCODER = msgspec.json.Encoder()


def encode_rows(rows: list[IntakeRow]) -> str:
    """The statement's one parameter: the rows as a JSON array (one text value instead of an array
    per column, which asyncpg would encode element by element)."""
    return _ENCODER.encode(rows).decode()


@functools.cache
def intake_sql(returning: str) -> str:
    """Files every row of the JSON document ``$1`` that names no ODR unit or a unit still active at
    the same node, and whose idempotency key is new: complaint, ``registered`` event, timers and (for
    the direct ODR route) the enterprise's notification, all in this one statement. Returns
    ``returning`` (complaint columns, at least ``id`` and ``number``) of each complaint filed, with
    its notification (``notice_*``, NULL if none)."""
    names = {c.strip() for c in returning.split(",")}
    if not {"id", "number"} <= names:
        raise ValueError("intake_sql: returning must include id and number")
    record = ", ".join(f"{name} {sql_type}" for name, sql_type in _COLUMNS.items())
    return f"""
WITH input AS MATERIALIZED (
    SELECT * FROM json_to_recordset($1::json) AS u({record})
), ins AS (
    INSERT INTO complaints (id, number, idempotency_key, source, consumer_account_id, consumer_name, consumer_phone,
        consumer_address, enterprise_id, company_name, odr_unit, node_code, node_path, category, subject, description,
        amount_claimed, state, entered_odr_at, contact_due, close_due, deadline_policy, deadline_policy_version, deadlines,
        registration_number, created_at, closed_at)
    SELECT u.id, to_char(coalesce(u.received_at, now()) AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') || '-'
            || lpad(nextval('complaint_number_seq')::text, 7, '0'),
        u.key, u.source, u.consumer_account_id, u.consumer_name, u.consumer_phone, u.consumer_address, u.enterprise_id,
        u.company_name, u.odr_unit, u.node_code, u.node_path, u.category, u.subject, u.description, u.amount_claimed,
        u.state, CASE WHEN u.state = 'with_enterprise' THEN coalesce(u.received_at, now()) END, u.contact_due, u.close_due,
        u.policy, u.policy_version, u.explanation, u.registration_number, coalesce(u.received_at, now()), u.closed_at
    FROM input u
    WHERE u.enterprise_id IS NULL OR EXISTS (
        SELECT 1 FROM enterprises e WHERE e.id = u.enterprise_id AND e.status = 'active' AND e.node_code = u.unit_node)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING {returning}
), ev AS (
    INSERT INTO complaint_events (complaint_id, kind, actor_id, actor_role, node_code, after)
    SELECT ins.id, 'registered', u.actor_id, u.actor_role, u.node_code, jsonb_build_object('state', u.state, 'route', u.route)
           || CASE WHEN u.explanation IS NULL THEN '{{}}'::jsonb
                   ELSE jsonb_build_object('deadlines_provisional', coalesce((u.explanation->>'provisional')::boolean, false)) END
           || coalesce(u.event_extra, '{{}}'::jsonb)
    FROM ins JOIN input u ON u.id = ins.id
), tm AS (
    INSERT INTO timers (complaint_id, kind, due_at)
    SELECT ins.id, t.k, t.d FROM ins JOIN input u ON u.id = ins.id, unnest(u.timer_kinds, u.timer_dues) AS t(k, d)
), nt AS (
    INSERT INTO notifications (recipient, kind, complaint_id, payload)
    SELECT 'enterprise:' || u.enterprise_id, 'new_case', ins.id,
           jsonb_build_object('complaint_number', ins.number, 'state', u.state)
    FROM ins JOIN input u ON u.id = ins.id WHERE u.state = 'with_enterprise'
    RETURNING id, recipient, created_at, complaint_id
)
SELECT ins.*, nt.id AS notice_id, nt.recipient AS notice_recipient, nt.created_at AS notice_at
FROM ins LEFT JOIN nt ON nt.complaint_id = ins.id
"""


class _Item:
    __slots__ = ("row", "future", "id", "followers", "since")

    def __init__(self, row: IntakeRow, future: asyncio.Future, since: float) -> None:
        self.row = row
        self.future = future
        self.since = since
        self.id: uuid.UUID | None = None
        self.followers: list[_Item] = []


def _settle(item: _Item, outcome: Outcome) -> None:
    if not item.future.done():
        item.future.set_result(outcome)


class IntakeBatcher:
    """Per event loop; see the module's contract."""

    def __init__(
        self, returning: str, *, existing_columns: str | None = None, max_batch: int = 64, max_inflight: int = 2,
        window: float = 0.0, max_queue: int = 0, max_wait: float = 0.0,
    ) -> None:
        """``returning``: the columns of each complaint filed; ``existing_columns`` (default: the same)
        those of a complaint found by its idempotency key."""
        self.returning = returning
        self.sql = intake_sql(returning)
        self.existing_sql = (f"SELECT idempotency_key AS _key, {existing_columns or returning} FROM complaints"
                             " WHERE idempotency_key = ANY($1::text[])")
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self.window = window
        self.max_queue = max_queue
        self.max_wait = max_wait
        self._pending: dict[str, list[_Item]] = {}
        self._inflight: dict[str, int] = {}
        self._scheduled: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self.batches = 0  # statistics (tests, benchmarks)
        self.items = 0
        self.fallbacks = 0
        self.refused = 0
        self.expired = 0

    async def submit(self, tenant: str, row: IntakeRow) -> Outcome:
        """The outcome of ``row`` (see the module contract); raises :class:`IntakeOverloaded` at once when
        ``max_queue`` intakes of ``tenant`` are already waiting, and at once or later (before its batch
        starts, nothing written) when it has waited longer than ``max_wait``."""
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        since = arrived_at.get()
        since = now if since is None else min(since, now)
        if self.max_wait and now - since > self.max_wait:
            self.expired += 1
            raise IntakeOverloaded(tenant)
        queue = self._pending.setdefault(tenant, [])
        if self.max_queue and len(queue) >= self.max_queue:
            self.refused += 1
            raise IntakeOverloaded(tenant)
        item = _Item(row, loop.create_future(), since)
        queue.append(item)
        if tenant not in self._scheduled:
            self._scheduled.add(tenant)
            if self.window > 0:
                loop.call_later(self.window, self._flush, tenant)
            else:
                loop.call_soon(self._flush, tenant)
        return await item.future

    def _flush(self, tenant: str) -> None:
        self._scheduled.discard(tenant)
        pending = self._pending.get(tenant)
        while pending and self._inflight.get(tenant, 0) < self.max_inflight:
            if self.max_wait:
                self._expire(pending)
            items = [it for it in pending[: self.max_batch] if not it.future.done()]  # drop cancelled callers
            del pending[: self.max_batch]
            if not items:
                continue
            self._inflight[tenant] = self._inflight.get(tenant, 0) + 1
            # an empty context: the batch must not inherit a caller's transaction or tenant
            task = asyncio.get_running_loop().create_task(self._run(tenant, items), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not pending:
            self._pending.pop(tenant, None)

    def _expire(self, pending: list[_Item]) -> None:
        """Refuse (IntakeOverloaded) the waiting intakes older than ``max_wait``: none of them is in a
        batch yet, so nothing of theirs is written."""
        limit = time.monotonic() - self.max_wait
        if not any(it.since < limit for it in pending):
            return
        keep = []
        for it in pending:
            if it.since >= limit:
                keep.append(it)
            elif not it.future.done():
                self.expired += 1
                it.future.set_exception(IntakeOverloaded("intake waited too long"))
        pending[:] = keep

    async def _run(self, tenant: str, items: list[_Item]) -> None:
        try:
            await self._write(tenant, items)
        except Exception as exc:
            # the transaction rolled back: nothing of this batch was written; every caller files its
            # own intake (a bad item then fails alone)
            self.fallbacks += 1
            log.warning("intake batch of %d rolled back (%s); filing its items one by one", len(items), type(exc).__name__)
            for it in items:
                _settle(it, None)
        except BaseException:
            for it in items:
                _settle(it, None)
            raise
        finally:
            self._inflight[tenant] -= 1
            if not self._inflight[tenant]:
                del self._inflight[tenant]
            if self._pending.get(tenant) and tenant not in self._scheduled:
                self._flush(tenant)

    async def _write(self, tenant: str, items: list[_Item]) -> None:
        # the first submission of a key leads; later ones in the same batch follow it (created=False)
        leaders: list[_Item] = []
        by_key: dict[str, _Item] = {}
        for it in items:
            key = it.row.key
            if key is not None:
                first = by_key.get(key)
                if first is not None:
                    first.followers.append(it)
                    continue
                by_key[key] = it
            leaders.append(it)
        for it, id_ in zip(leaders, new_ids(len(leaders))):
            it.id = it.row.id = id_
        # a stable order of keys: concurrent batches take their unique-index locks in the same order
        leaders.sort(key=lambda it: (it.row.key is None, it.row.key or ""))
        doc = encode_rows([it.row for it in leaders])
        async with tenant_transaction(tenant) as conn:
            rows = await conn.fetch(self.sql, doc)
            created = {r["id"]: r for r in rows}
            # rows to read back in full: keys seen before (not filed now), and keys filed now that a
            # later submission in this batch repeated (it answers with the whole complaint)
            missing = [it.row.key for it in leaders if it.row.key is not None and (it.id not in created or it.followers)]
            existing = {}
            if missing:
                existing = {r["_key"]: r for r in await conn.fetch(self.existing_sql, missing)}
        self.batches += 1
        self.items += len(items)
        for it in leaders:
            row = created.get(it.id)
            if row is not None:
                outcome: Outcome = ("created", row)
                again = existing.get(it.row.key) if it.followers else None
                follow: Outcome = ("existing", again) if again is not None else None
            else:
                row = existing.get(it.row.key) if it.row.key is not None else None
                # not filed and not found: the cached ODR unit changed; the callers look it up again
                outcome = follow = ("existing", row) if row is not None else None
            _settle(it, outcome)
            for f in it.followers:
                _settle(f, follow)


_BATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, IntakeBatcher] = weakref.WeakKeyDictionary()


def batcher(returning: str, settings, *, existing_columns: str | None = None) -> IntakeBatcher:
    """The batcher of the running event loop (one per loop: a pool lives on one loop), sized by the
    ``ODR_INTAKE_BATCH_*`` settings."""
    loop = asyncio.get_running_loop()
    b = _BATCHERS.get(loop)
    if b is None:
        b = _BATCHERS[loop] = IntakeBatcher(
            returning,
            existing_columns=existing_columns,
            max_batch=settings.intake_batch_max,
            max_inflight=settings.intake_batch_inflight,
            window=settings.intake_batch_window_ms / 1000,
            max_queue=settings.intake_queue_max,
            max_wait=settings.intake_max_wait_ms / 1000,
        )
    return b
