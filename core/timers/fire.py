"""Fire one timer: claim it in PostgreSQL exactly once and apply its effects in the same transaction.

Contract:
- The claim is ``UPDATE timers SET fired_at = now() WHERE id = $1 AND fired_at IS NULL AND
  cancelled_at IS NULL AND due_at <= now()``. Row locking makes it exactly-once across processes: a
  second claimant waits for the first to commit and then matches nothing. A crash or error before
  commit rolls everything back, leaving the timer pending for the next attempt.
- Effects, in the claim's transaction:
  * ``*_breach`` of a complaint: the milestone (``contact``/``close``) appended to
    ``complaints.breaches`` (once per milestone), a ``deadline_breached`` complaint event by
    ``system``, ``enterprises.breach_count + 1`` for the complaint's enterprise (when newly recorded);
  * ``*_warning``: a ``deadline_warning`` complaint event;
  * ``liaison_breach``: the liaison change set ``overdue`` and its enterprise's ``breach_count + 1``;
  * a notification row per recipient (``enterprise:<id>``, ``node:<code>``), payload without
    personal data.
- A timer whose milestone was already met at its due moment (consumer contacted, case closed,
  liaison change filed) but not cancelled by the domain is cancelled instead of fired: no false breach.
- :func:`fire_timer` returns what to deliver after commit (:func:`core.notifications.deliver.deliver`).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

import asyncpg
import msgspec

from core.db.engine import tenant_transaction
from core.notifications.deliver import Outgoing, record

SYSTEM_ACTOR = "system"


class Outcome(str, enum.Enum):
    FIRED = "fired"
    NOT_DUE = "not_due"  # still pending, due later (moved): the caller re-queues it
    GONE = "gone"  # fired, cancelled or deleted already
    SATISFIED = "satisfied"  # milestone met in time; cancelled instead of fired


class FireResult(msgspec.Struct, kw_only=True):
    outcome: Outcome
    due_at: dt.datetime | None = None
    kind: str | None = None
    outgoing: Outgoing | None = None


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def fire_timer(tenant: str, timer_id: uuid.UUID) -> FireResult:
    """Claim and fire timer ``timer_id`` of ``tenant`` (one tenant transaction)."""
    async with tenant_transaction(tenant) as conn:
        row = await conn.fetchrow(
            """UPDATE timers SET fired_at = now()
               WHERE id = $1 AND fired_at IS NULL AND cancelled_at IS NULL AND due_at <= now()
               RETURNING id, kind, due_at, complaint_id, liaison_change_id""",
            timer_id,
        )
        if row is None:
            due_at = await conn.fetchval(
                "SELECT due_at FROM timers WHERE id = $1 AND fired_at IS NULL AND cancelled_at IS NULL", timer_id
            )
            return FireResult(outcome=Outcome.NOT_DUE if due_at is not None else Outcome.GONE, due_at=due_at)
        if row["complaint_id"] is not None:
            result = await _fire_complaint(conn, tenant, row)
        else:
            result = await _fire_liaison(conn, tenant, row)
        if result.outcome is Outcome.SATISFIED:
            await conn.execute("UPDATE timers SET fired_at = NULL, cancelled_at = now() WHERE id = $1", timer_id)
        return result


async def _fire_complaint(conn: asyncpg.Connection, tenant: str, timer: asyncpg.Record) -> FireResult:
    kind: str = timer["kind"]
    milestone, _, what = kind.partition("_")  # contact|close, warning|breach
    c = await conn.fetchrow(
        """SELECT id, number, node_code, enterprise_id, breaches, contact_due, close_due, contacted_at, closed_at
           FROM complaints WHERE id = $1 FOR UPDATE""",
        timer["complaint_id"],
    )
    met_at = c["contacted_at"] if milestone == "contact" else c["closed_at"]
    if what == "breach":
        deadline = timer["due_at"]
    else:
        deadline = c["contact_due"] if milestone == "contact" else c["close_due"]
        if deadline is None:
            deadline = await conn.fetchval(
                "SELECT due_at FROM timers WHERE coalesce(complaint_id, liaison_change_id) = $1 AND kind = $2",  # uses the unique index
                c["id"], f"{milestone}_breach"
            )
    if met_at is not None and (deadline is None or met_at <= deadline):
        return FireResult(outcome=Outcome.SATISFIED, kind=kind, due_at=timer["due_at"])

    breaches = list(c["breaches"])
    if what == "breach":
        newly = milestone not in breaches
        if newly:
            await conn.execute(
                "UPDATE complaints SET breaches = array_append(breaches, $2), updated_at = now() WHERE id = $1",
                c["id"],
                milestone,
            )
            if c["enterprise_id"] is not None:
                await conn.execute(
                    "UPDATE enterprises SET breach_count = breach_count + 1 WHERE id = $1", c["enterprise_id"]
                )
        before = {"breaches": breaches}
        after = {
            "breaches": breaches + [milestone] if newly else breaches,
            "milestone": milestone,
            "due": _iso(deadline),
            "timer_id": str(timer["id"]),
        }
        event_kind = "deadline_breached"
    else:
        before = None
        after = {"milestone": milestone, "due": _iso(deadline), "warn_at": _iso(timer["due_at"]),
                 "timer_id": str(timer["id"])}
        event_kind = "deadline_warning"
    await conn.execute(
        """INSERT INTO complaint_events (complaint_id, kind, actor_id, actor_role, node_code, before, after)
           VALUES ($1, $2, $3, $3, $4, $5::jsonb, $6::jsonb)""",
        c["id"],
        event_kind,
        SYSTEM_ACTOR,
        c["node_code"],
        msgspec.json.encode(before).decode() if before is not None else None,
        msgspec.json.encode(after).decode(),
    )
    recipients = [f"node:{c['node_code']}"]
    if c["enterprise_id"] is not None:
        recipients.insert(0, f"enterprise:{c['enterprise_id']}")
    payload = {"complaint_number": c["number"], "milestone": milestone, "due": _iso(deadline), "timer_kind": kind}
    out = await record(
        conn,
        tenant=tenant,
        kind=event_kind,
        recipients=recipients,
        payload=payload,
        node_code=c["node_code"],
        complaint_id=c["id"],
        enterprise_id=c["enterprise_id"],
    )
    return FireResult(outcome=Outcome.FIRED, kind=kind, due_at=timer["due_at"], outgoing=out)


async def _fire_liaison(conn: asyncpg.Connection, tenant: str, timer: asyncpg.Record) -> FireResult:
    lc = await conn.fetchrow(
        """SELECT lc.id, lc.enterprise_id, lc.role, lc.status, lc.filed_at, e.node_code
           FROM liaison_changes lc JOIN enterprises e ON e.id = lc.enterprise_id
           WHERE lc.id = $1 FOR UPDATE OF lc""",
        timer["liaison_change_id"],
    )
    if lc["status"] == "filed" or (lc["filed_at"] is not None and lc["filed_at"] <= timer["due_at"]):
        return FireResult(outcome=Outcome.SATISFIED, kind=timer["kind"], due_at=timer["due_at"])
    if lc["status"] != "overdue":
        await conn.execute("UPDATE liaison_changes SET status = 'overdue' WHERE id = $1", lc["id"])
        await conn.execute("UPDATE enterprises SET breach_count = breach_count + 1 WHERE id = $1", lc["enterprise_id"])
    payload = {
        "milestone": "liaison_filing",
        "due": _iso(timer["due_at"]),
        "liaison_change_id": str(lc["id"]),
        "liaison_role": lc["role"],
        "timer_kind": timer["kind"],
    }
    out = await record(
        conn,
        tenant=tenant,
        kind="liaison_overdue",
        recipients=[f"enterprise:{lc['enterprise_id']}", f"node:{lc['node_code']}"],
        payload=payload,
        node_code=lc["node_code"],
        enterprise_id=lc["enterprise_id"],
    )
    return FireResult(outcome=Outcome.FIRED, kind=timer["kind"], due_at=timer["due_at"], outgoing=out)
