"""Complaint commands and queries: the complaint service's public face. Each command is one tenant
transaction; each change writes an append-only event in the same transaction.

Who may see a complaint (others get 404), who sees the consumer's contact details unmasked, and
which actions a principal may take are decided in :mod:`core.complaints.access`. The commands live in
:mod:`core.complaints.intake` (filing) and :mod:`core.complaints.actions` (every action); what they
share in :mod:`core.complaints.records`. The queries are here.
"""

from __future__ import annotations

import msgspec

from core.auth.principal import Principal
from core.complaints import states as S
from core.complaints.access import view, visibility_sql
from core.complaints.actions import act  # noqa: F401 (a command of the service)
from core.complaints.intake import FILED_COLUMNS, intake  # noqa: F401 (a command of the service)
from core.complaints.records import COMPLAINT_COLUMNS, ODR_NOTICE, find_unit, load_complaint  # noqa: F401
from core.complaints.schemas import ComplaintView, EventView
from core.db.engine import tenant_transaction
from core.runtime import Platform


async def get(platform: Platform, tenant: str, principal: Principal, complaint_id: str) -> ComplaintView:
    async with tenant_transaction(tenant) as conn:
        row = await load_complaint(conn, principal, complaint_id)
    return view(principal, row)


async def search(
    platform: Platform, tenant: str, principal: Principal, *, state: str | None, limit: int, offset: int
) -> list[ComplaintView]:
    where, params = visibility_sql(principal, 1)
    sql = f"SELECT {COMPLAINT_COLUMNS} FROM complaints WHERE {where}"
    if state:
        if state not in S.STATES:
            raise ValueError(f"state: one of {', '.join(S.STATES)}")
        params.append(state)
        sql += f" AND state = ${len(params)}"
    sql += f" ORDER BY created_at DESC LIMIT {int(limit)} OFFSET {int(offset)}"
    async with tenant_transaction(tenant) as conn:
        rows = await conn.fetch(sql, *params)
    return [view(principal, r) for r in rows]


async def timeline(platform: Platform, tenant: str, principal: Principal, complaint_id: str) -> list[EventView]:
    async with tenant_transaction(tenant) as conn:
        row = await load_complaint(conn, principal, complaint_id)
        events = await conn.fetch(
            "SELECT id, kind, actor_id, actor_role, node_code, at, before, after, note FROM complaint_events"
            " WHERE complaint_id = $1 ORDER BY id",
            row["id"],
        )
    return [
        EventView(**{**dict(e), "before": msgspec.json.decode(e["before"]) if e["before"] else None,
                     "after": msgspec.json.decode(e["after"]) if e["after"] else None})
        for e in events
    ]


async def deadlines(platform: Platform, tenant: str, principal: Principal, complaint_id: str) -> dict | None:
    async with tenant_transaction(tenant) as conn:
        row = await load_complaint(conn, principal, complaint_id)
        raw = await conn.fetchval("SELECT deadlines FROM complaints WHERE id = $1", row["id"])
    return msgspec.json.decode(raw) if raw else None
