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


CONTACT_KINDS = ("contact_warning", "contact_breach")
CLOSE_KINDS = ("close_warning", "close_breach")


ALL_COMPLAINT_KINDS = CONTACT_KINDS + CLOSE_KINDS


def complaint_clocks(
    contact_due: dt.datetime, close_due: dt.datetime, warning_before: dt.timedelta
) -> tuple[list[str], list[dt.datetime]]:
    """The four clocks of a complaint in ODR as (kinds, due moments), for a multi-row insert: a
    warning ``warning_before`` each due moment, and the breach at it."""
    return (
        [*CONTACT_KINDS, *CLOSE_KINDS],
        [contact_due - warning_before, contact_due, close_due - warning_before, close_due],
    )


async def schedule_complaint_clocks(
    conn: asyncpg.Connection,
    complaint_id: uuid.UUID,
    contact_due: dt.datetime | None,
    close_due: dt.datetime | None,
    warning_before: dt.timedelta,
) -> dict[str, uuid.UUID]:
    """Schedule a complaint's contact and close clocks inside the caller's tenant transaction.

    For each deadline given: a ``*_warning`` at ``due - warning_before`` and a ``*_breach`` at the due
    moment (re-scheduling moves them and re-arms fired or cancelled ones). A warning moment already
    past fires at once (the case is inside its warning window). A deadline given as None cancels that
    milestone's pending clocks. Returns the timer ids by kind.
    """
    if warning_before < dt.timedelta(0):
        raise ValueError("warning_before: must not be negative")
    ids: dict[str, uuid.UUID] = {}
    for prefix, due, kinds in (("contact", contact_due, CONTACT_KINDS), ("close", close_due, CLOSE_KINDS)):
        if due is None:
            await cancel(conn, kinds=kinds, complaint_id=complaint_id)
            continue
        if due.tzinfo is None:
            raise ValueError(f"{prefix}_due: must carry a time zone")
        ids[f"{prefix}_warning"] = await schedule(
            conn, kind=f"{prefix}_warning", due_at=due - warning_before, complaint_id=complaint_id
        )
        ids[f"{prefix}_breach"] = await schedule(conn, kind=f"{prefix}_breach", due_at=due, complaint_id=complaint_id)
    return ids


async def cancel_contact_clocks(conn: asyncpg.Connection, complaint_id: uuid.UUID) -> int:
    """Cancel the pending contact warning and breach (the consumer was contacted in time)."""
    return await cancel(conn, kinds=CONTACT_KINDS, complaint_id=complaint_id)


async def cancel_close_clocks(conn: asyncpg.Connection, complaint_id: uuid.UUID) -> int:
    """Cancel the pending close warning and breach (the case was closed or left ODR)."""
    return await cancel(conn, kinds=CLOSE_KINDS, complaint_id=complaint_id)
