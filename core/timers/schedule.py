"""Schedule and cancel timers inside the caller's tenant transaction (atomic with the domain change).

Contract: a row in ``timers`` with ``fired_at IS NULL AND cancelled_at IS NULL`` will fire once, at or
shortly after ``due_at``, even if workers restart or Valkey is flushed (workers rebuild their queue
from these rows). Re-scheduling the same (subject, kind) moves the due moment.
"""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

TIMER_KINDS = ("contact_warning", "contact_breach", "close_warning", "close_breach", "liaison_breach")


async def schedule(
    conn: asyncpg.Connection,
    *,
    kind: str,
    due_at: dt.datetime,
    complaint_id: uuid.UUID | None = None,
    liaison_change_id: uuid.UUID | None = None,
) -> uuid.UUID:
    if kind not in TIMER_KINDS:
        raise ValueError(f"kind: unknown timer kind {kind!r}")
    if (complaint_id is None) == (liaison_change_id is None):
        raise ValueError("exactly one of complaint_id and liaison_change_id")
    return await conn.fetchval(
        """INSERT INTO timers (complaint_id, liaison_change_id, kind, due_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (coalesce(complaint_id, liaison_change_id), kind)
           DO UPDATE SET due_at = EXCLUDED.due_at, fired_at = NULL, cancelled_at = NULL
           RETURNING id""",
        complaint_id,
        liaison_change_id,
        kind,
        due_at,
    )


async def cancel(
    conn: asyncpg.Connection,
    *,
    kinds: tuple[str, ...],
    complaint_id: uuid.UUID | None = None,
    liaison_change_id: uuid.UUID | None = None,
) -> int:
    """Cancel pending timers of a subject (e.g. the contact clocks once the consumer was contacted)."""
    result = await conn.execute(
        """UPDATE timers SET cancelled_at = now()
           WHERE coalesce(complaint_id, liaison_change_id) = $1 AND kind = ANY($2)
             AND fired_at IS NULL AND cancelled_at IS NULL""",
        complaint_id or liaison_change_id,
        list(kinds),
    )
    return int(result.split()[-1])
