"""Builders for the provisional-deadline tests: a complaint filed through the API on the direct ODR
route, then set to have entered ODR at a chosen moment (its deadlines counted then by the platform's
own counting), and what is stored about it."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

from core.db.engine import tenant_transaction
from core.deadlines.provisional import NOTICE
from core.deadlines.service import complaint_deadlines
from core.timers.schedule import schedule_complaint_clocks

INTAKE = {"company_name": "某电商公司", "subject": "网购商品质量问题", "description": "收到的电饭煲无法加热，要求退货退款。",
          "consumer_name": "李小龙", "consumer_phone": "13912345678", "route": "odr"}


async def file(client, tenant: str, unit: dict, headers: dict) -> str:
    """A complaint to ``unit`` on the direct ODR route (filed now); its id."""
    body = {**INTAKE, "credit_code": unit["credit_code"], "idempotency_key": uuid.uuid4().hex}
    r = await client.post(f"/api/tenants/{tenant}/complaints", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["complaint"]["id"]


async def entered_at(platform, tenant: str, node: str, cid: str, start: dt.datetime, *, state: str | None = None) -> None:
    """Test set-up: the complaint entered ODR at ``start`` (deadlines and clocks as the intake would
    have given them then); ``state`` 'closed' closes it."""
    d = await complaint_deadlines(platform, tenant, node, start)
    async with tenant_transaction(tenant) as conn:
        await conn.execute(
            """UPDATE complaints SET entered_odr_at = $2, contact_due = $3, close_due = $4, deadlines = $5,
                   state = coalesce($6, state), closed_at = CASE WHEN $6 = 'closed' THEN now() END WHERE id = $1""",
            uuid.UUID(cid), start, d.contact.due, d.close.due, msgspec.json.encode(d).decode(), state)
        await schedule_complaint_clocks(conn, uuid.UUID(cid), d.contact.due, d.close.due, dt.timedelta(hours=24))


async def stored(tenant: str, cid: str):
    """(row: deadlines JSON ``d``, version, due moments; events; pending timers by kind; its
    ``deadlines_changed`` notifications)."""
    async with tenant_transaction(tenant) as conn:
        row = await conn.fetchrow("SELECT deadlines::text AS d, version, contact_due, close_due FROM complaints WHERE id = $1",
                                  uuid.UUID(cid))
        events = await conn.fetch("SELECT kind, before, after, note FROM complaint_events WHERE complaint_id = $1 ORDER BY id",
                                  uuid.UUID(cid))
        timers = {r["kind"]: r["due_at"] for r in await conn.fetch(
            "SELECT kind, due_at FROM timers WHERE complaint_id = $1 AND cancelled_at IS NULL", uuid.UUID(cid))}
        notices = await conn.fetch("SELECT recipient, payload FROM notifications WHERE complaint_id = $1 AND kind = $2",
                                   uuid.UUID(cid), NOTICE)
    return row, events, timers, notices
