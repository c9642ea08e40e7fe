"""What every complaint command shares: the columns a complaint is read with, finding the ODR unit a
complaint names, loading a complaint the principal may see, and recording an event or a notification
in the command's transaction.

Contract:
- :func:`load_complaint` answers only a complaint ``principal`` may see (:func:`core.complaints.access.visible`),
  ``KeyError("complaint not found")`` otherwise (a malformed id too), so a stranger cannot tell a
  missing complaint from someone else's; ``lock`` takes the row lock for a command.
- :func:`record_event` appends one event (append-only ``complaint_events``) in the caller's transaction.
- :func:`record_notice` records a notification in the caller's transaction; it is pushed after commit
  by whoever holds ``outbox``.
"""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import msgspec

from core.auth.principal import Principal
from core.complaints.access import visible
from core.deadlines.service import ComplaintDeadlines
from core.notifications.deliver import Outgoing
from core.notifications.deliver import record as record_notification
from core.runtime import Platform
from core.timers.schedule import complaint_clocks


ODR_NOTICE = (
    "该企业是全国12315平台在线消费纠纷解决（ODR）企业，可直接与其协商解决。"
    " / This company is an ODR enterprise on the national 12315 platform: you may settle with it directly."
)
COMPLAINT_COLUMNS = """id, number, state, source, consumer_account_id, consumer_name, consumer_phone, consumer_address,
    enterprise_id, company_name, odr_unit, node_code, node_path, category, subject, description, amount_claimed,
    entered_odr_at, contact_due, close_due, deadline_policy, deadline_policy_version, contacted_at, feedback,
    settled, amount_recovered, closed_at, rating, rating_comment, breaches, feedback_untrue, created_at, updated_at,
    coalesce((deadlines->>'provisional')::boolean, false) AS deadlines_provisional"""
"""``deadlines_provisional`` is read from the stored explanation (``ComplaintDeadlines.provisional``)."""


async def find_unit(conn: asyncpg.Connection, *, enterprise_id: str | None, credit_code: str | None) -> asyncpg.Record | None:
    """The active ODR unit named by id or credit code; a member merchant resolves to its host unit.

    Not :func:`core.enterprises.common.find_active_unit`: that one also requires the member merchant
    itself to be active (here only the host's status counts) and normalises the credit code."""
    if enterprise_id:
        try:
            key = uuid.UUID(enterprise_id)
        except ValueError:
            raise ValueError("enterprise_id: not a valid id") from None
        row = await conn.fetchrow(
            "SELECT id, name, node_code, status, host_unit_id FROM enterprises WHERE id = $1", key
        )
    elif credit_code:
        row = await conn.fetchrow(
            "SELECT id, name, node_code, status, host_unit_id FROM enterprises WHERE credit_code = $1", credit_code
        )
    else:
        return None
    if row is not None and row["host_unit_id"] is not None:
        row = await conn.fetchrow(
            "SELECT id, name, node_code, status, host_unit_id FROM enterprises WHERE id = $1", row["host_unit_id"]
        )
    return row if row is not None and row["status"] == "active" else None


def timer_args(platform: Platform, d: ComplaintDeadlines) -> tuple[list[str], list[dt.datetime]]:
    """The complaint's four clocks (kinds, due moments) for the intake statement's timers."""
    return complaint_clocks(d.contact.due, d.close.due, dt.timedelta(hours=platform.settings.warning_before_hours))


async def record_event(conn, complaint_id, kind: str, principal: Principal, node_code: str | None, before=None, after=None, note=None) -> None:
    await conn.execute(
        """INSERT INTO complaint_events (complaint_id, kind, actor_id, actor_role, node_code, before, after, note)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        complaint_id,
        kind,
        principal.id,
        principal.role.value,
        node_code,
        msgspec.json.encode(before).decode() if before is not None else None,
        msgspec.json.encode(after).decode() if after is not None else None,
        note,
    )


async def record_notice(conn, outbox: list[Outgoing] | None, *, tenant: str, row, recipient: str, kind: str) -> None:
    """Record a notification in this transaction; it is pushed after commit by whoever holds ``outbox``."""
    out = await record_notification(
        conn,
        tenant=tenant,
        kind=kind,
        recipients=[recipient],
        payload={"complaint_number": row["number"], "state": row["state"]},
        node_code=row["node_code"],
        complaint_id=row["id"],
    )
    if outbox is not None:
        outbox.append(out)


async def load_complaint(conn, principal: Principal, complaint_id: str, *, lock: bool = False) -> asyncpg.Record:
    try:
        key = uuid.UUID(complaint_id)
    except ValueError:
        raise KeyError("complaint not found") from None
    row = await conn.fetchrow(
        f"SELECT {COMPLAINT_COLUMNS} FROM complaints WHERE id = $1" + (" FOR UPDATE" if lock else ""), key
    )
    if row is None or not visible(principal, row):
        raise KeyError("complaint not found")
    return row
