"""Group commit for complaint intake: intakes of one tenant that arrive together are written in ONE
tenant transaction (multi-row inserts over arrays), each caller getting its own row back.

Contract (see :func:`core.complaints.service.intake`, the only user):
- A caller submits a fully validated :class:`IntakeRow` (everything that can be refused has been
  checked before) and awaits an :class:`Outcome`:
  ``("created", row)``: filed now; ``("existing", row)``: the idempotency key was seen before (in the
  table, or earlier in the same batch: the first submission wins, like sequential requests);
  ``None``: not decided here (the cached ODR unit changed, or the batch failed): the caller files it
  on its own, in its own transaction, exactly as without batching.
- A batch is one transaction: an item is written completely (complaint, event, timers, notification)
  or not at all. When the batch's statement fails, the whole batch rolls back and every item answers
  ``None``, so one bad item never fails the others.
- Batching adds no waiting when the tenant is idle: the first intake is flushed on the next turn of the
  event loop; while ``max_inflight`` batches of a tenant are being written, new arrivals queue up and
  form the next batch (at most ``max_batch`` items). ``ODR_INTAKE_BATCH_WINDOW_MS`` adds an optional
  collection window.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import uuid
import weakref
from typing import Any, Literal, NamedTuple

from core.db.engine import tenant_transaction

log = logging.getLogger(__name__)


class IntakeRow(NamedTuple):
    """The parameters of one intake, in the order of ``INTAKE_SQL``'s ``$1 … $27``."""

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
    explanation: str | None
    actor_id: str
    actor_role: str
    route: str
    timer_kinds: list[str]
    timer_dues: list[dt.datetime]
    unit_node: str | None


Outcome = tuple[Literal["created", "existing"], Any] | None

# columns of the unnest() input, in IntakeRow order (timers go in separate flattened arrays)
_INPUT = [
    ("key", "text"), ("source", "text"), ("consumer_account_id", "uuid"), ("consumer_name", "text"),
    ("consumer_phone", "text"), ("consumer_address", "text"), ("enterprise_id", "uuid"), ("company_name", "text"),
    ("odr_unit", "bool"), ("node_code", "text"), ("node_path", "text"), ("category", "text"), ("subject", "text"),
    ("description", "text"), ("amount_claimed", "numeric"), ("state", "text"), ("contact_due", "timestamptz"),
    ("close_due", "timestamptz"), ("policy", "text"), ("policy_version", "text"), ("explanation", "text"),
    ("actor_id", "text"), ("actor_role", "text"), ("route", "text"),
]
_UNIT_NODE = len(IntakeRow._fields) - 1
_N = len(_INPUT)  # $1 = ids, $2 … $(N+1) = the columns above, then unit_node, then the timer arrays


def batch_sql(returning: str) -> str:
    arrays = ", ".join(f"${i + 2}::{t}[]" for i, (_, t) in enumerate(_INPUT))
    names = ", ".join(name for name, _ in _INPUT)
    un, tc, tk, td = _N + 2, _N + 3, _N + 4, _N + 5
    return f"""
WITH input AS MATERIALIZED (
    SELECT * FROM unnest($1::uuid[], {arrays}, ${un}::text[]) AS u(id, {names}, unit_node)
), ins AS (
    INSERT INTO complaints (id, number, idempotency_key, source, consumer_account_id, consumer_name, consumer_phone,
        consumer_address, enterprise_id, company_name, odr_unit, node_code, node_path, category, subject, description,
        amount_claimed, state, entered_odr_at, contact_due, close_due, deadline_policy, deadline_policy_version, deadlines)
    SELECT u.id, to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') || '-' || lpad(nextval('complaint_number_seq')::text, 7, '0'),
        u.key, u.source, u.consumer_account_id, u.consumer_name, u.consumer_phone, u.consumer_address, u.enterprise_id,
        u.company_name, u.odr_unit, u.node_code, u.node_path, u.category, u.subject, u.description, u.amount_claimed,
        u.state, CASE WHEN u.state = 'with_enterprise' THEN now() END, u.contact_due, u.close_due, u.policy,
        u.policy_version, u.explanation::jsonb
    FROM input u
    WHERE u.enterprise_id IS NULL OR EXISTS (
        SELECT 1 FROM enterprises e WHERE e.id = u.enterprise_id AND e.status = 'active' AND e.node_code = u.unit_node)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING {returning}
), ev AS (
    INSERT INTO complaint_events (complaint_id, kind, actor_id, actor_role, node_code, after)
    SELECT ins.id, 'registered', u.actor_id, u.actor_role, ins.node_code, jsonb_build_object('state', ins.state, 'route', u.route)
    FROM ins JOIN input u ON u.id = ins.id
), tm AS (
    INSERT INTO timers (complaint_id, kind, due_at)
    SELECT ins.id, t.k, t.d FROM unnest(${tc}::uuid[], ${tk}::text[], ${td}::timestamptz[]) AS t(cid, k, d)
    JOIN ins ON ins.id = t.cid
), nt AS (
    INSERT INTO notifications (recipient, kind, complaint_id, payload)
    SELECT 'enterprise:' || ins.enterprise_id, 'new_case', ins.id,
           jsonb_build_object('complaint_number', ins.number, 'state', ins.state)
    FROM ins WHERE ins.state = 'with_enterprise'
    RETURNING id, recipient, created_at, complaint_id
)
SELECT ins.*, nt.id AS notice_id, nt.recipient AS notice_recipient, nt.created_at AS notice_at
FROM ins LEFT JOIN nt ON nt.complaint_id = ins.id
"""


class _Item:
    __slots__ = ("row", "future", "id", "followers")

    def __init__(self, row: IntakeRow, future: asyncio.Future) -> None:
        self.row = row
        self.future = future
        self.id: uuid.UUID | None = None
        self.followers: list[_Item] = []


def _settle(item: _Item, outcome: Outcome) -> None:
    if not item.future.done():
        item.future.set_result(outcome)


class IntakeBatcher:
    """Per event loop; see the module's contract."""

    def __init__(self, returning: str, *, max_batch: int = 64, max_inflight: int = 2, window: float = 0.0) -> None:
        self.returning = returning
        self.sql = batch_sql(returning)
        self.existing_sql = f"SELECT idempotency_key AS _key, {returning} FROM complaints WHERE idempotency_key = ANY($1::text[])"
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self.window = window
        self._pending: dict[str, list[_Item]] = {}
        self._inflight: dict[str, int] = {}
        self._scheduled: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self.batches = 0  # statistics (tests, benchmarks)
        self.items = 0
        self.fallbacks = 0

    async def submit(self, tenant: str, row: IntakeRow) -> Outcome:
        loop = asyncio.get_running_loop()
        item = _Item(row, loop.create_future())
        self._pending.setdefault(tenant, []).append(item)
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
            it.id = uuid.uuid4()
            leaders.append(it)
        # a stable order of keys: concurrent batches take their unique-index locks in the same order
        leaders.sort(key=lambda it: (it.row.key is None, it.row.key or ""))
        columns: list[list[Any]] = [[it.id for it in leaders]]
        for i in range(_N):
            columns.append([it.row[i] for it in leaders])
        columns.append([it.row[_UNIT_NODE] for it in leaders])
        timer_ids: list[uuid.UUID] = []
        timer_kinds: list[str] = []
        timer_dues: list[dt.datetime] = []
        for it in leaders:
            kinds = it.row.timer_kinds
            timer_ids.extend([it.id] * len(kinds))
            timer_kinds.extend(kinds)
            timer_dues.extend(it.row.timer_dues)
        async with tenant_transaction(tenant) as conn:
            rows = await conn.fetch(self.sql, *columns, timer_ids, timer_kinds, timer_dues)
            created = {r["id"]: r for r in rows}
            missing = [it.row.key for it in leaders if it.id not in created and it.row.key is not None]
            existing = {}
            if missing:
                existing = {r["_key"]: r for r in await conn.fetch(self.existing_sql, missing)}
        self.batches += 1
        self.items += len(items)
        for it in leaders:
            row = created.get(it.id)
            if row is not None:
                outcome: Outcome = ("created", row)
                follow: Outcome = ("existing", row)
            else:
                row = existing.get(it.row.key) if it.row.key is not None else None
                # not filed and not found: the cached ODR unit changed; the callers look it up again
                outcome = follow = ("existing", row) if row is not None else None
            _settle(it, outcome)
            for f in it.followers:
                _settle(f, follow)


_BATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, IntakeBatcher] = weakref.WeakKeyDictionary()


def batcher(returning: str, settings) -> IntakeBatcher:
    """The batcher of the running event loop (one per loop: a pool lives on one loop), sized by the
    ``ODR_INTAKE_BATCH_*`` settings."""
    loop = asyncio.get_running_loop()
    b = _BATCHERS.get(loop)
    if b is None:
        b = _BATCHERS[loop] = IntakeBatcher(
            returning,
            max_batch=settings.intake_batch_max,
            max_inflight=settings.intake_batch_inflight,
            window=settings.intake_batch_window_ms / 1000,
        )
    return b
