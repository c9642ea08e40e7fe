"""The caller's notifications: list, mark read, and a live Server-Sent Events stream.

Who sees what (fail closed): an enterprise specialist sees ``enterprise:<their enterprise id>``; a
bureau user sees ``node:<code>`` for every node of their subtree; everyone sees ``account:<own id>``.
A node's notifications are shared by the users of that node (reading one marks it read for all).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, AsyncIterator

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, PathParameter, QueryParameter
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from core.api.access import tenant_member
from core.api.errors import NotFound
from core.auth.principal import BUREAU_ROLES, Principal, Role
from core.db.engine import tenant_transaction
from core.notifications.bus import Notice
from core.runtime import Platform

KEEPALIVE_SECONDS = 15.0
REPLAY_LIMIT = 200
ID_MAX = 2**63 - 1
"""Largest id PostgreSQL's bigint holds: a larger one in a request is a 400 naming it, never a 500."""
_COLUMNS = "id, recipient, kind, complaint_id::text, enterprise_id::text, payload, created_at, read_at"


async def visible_recipients(platform: Platform, principal: Principal) -> list[str]:
    """The recipient strings ``principal`` may read in its tenant."""
    out = [f"account:{principal.id}"]
    if principal.role is Role.ENTERPRISE_SPECIALIST and principal.enterprise_id:
        out.append(f"enterprise:{principal.enterprise_id}")
    if principal.role in BUREAU_ROLES and principal.tenant:
        nodes = await platform.nodes(principal.tenant)
        out.extend(f"node:{code}" for code, node in nodes.items() if principal.covers(node.path))
    return out


def _notice(tenant: str, row) -> Notice:
    return Notice(
        id=row["id"],
        tenant=tenant,
        recipient=row["recipient"],
        kind=row["kind"],
        complaint_id=row["complaint_id"],
        enterprise_id=row["enterprise_id"],
        payload=msgspec.json.decode(row["payload"]) if isinstance(row["payload"], (str, bytes)) else row["payload"],
        created_at=row["created_at"],
        read_at=row["read_at"],
    )


def _event(notice: Notice) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=msgspec.json.encode(notice).decode(), event=notice.kind, id=notice.id)


class NotificationController(Controller):
    path = "/api/tenants/{tenant:str}/notifications"
    tags = ["notifications"]

    @get("/")
    async def list_notifications(
        self,
        request: Request[Principal, Any, Any],
        tenant: FromPath[str],
        before_id: Annotated[int | None, QueryParameter(name="before_id", ge=0, le=ID_MAX)] = None,
        after_id: Annotated[int | None, QueryParameter(name="after_id", ge=0, le=ID_MAX)] = None,
        unread: FromQuery[bool] = False,
        limit: Annotated[int, QueryParameter(name="limit", ge=1, le=200)] = 50,
    ) -> list[Notice]:
        """The caller's notifications, newest first (``before_id`` pages back; ``after_id`` gives the
        ones newer than that id, oldest first)."""
        platform, principal = await tenant_member(request, tenant)
        recipients = await visible_recipients(platform, principal)
        order = "ASC" if after_id is not None else "DESC"
        async with tenant_transaction(tenant) as conn:
            rows = await conn.fetch(
                f"""SELECT {_COLUMNS} FROM notifications
                    WHERE recipient = ANY($1) AND ($2::bigint IS NULL OR id < $2) AND ($3::bigint IS NULL OR id > $3)
                      AND (NOT $4 OR read_at IS NULL)
                    ORDER BY id {order} LIMIT $5""",
                recipients,
                before_id,
                after_id,
                unread,
                limit,
            )
        return [_notice(tenant, r) for r in rows]

    @post("/{notification_id:int}/read", status_code=200)
    async def mark_read(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str],
        notification_id: Annotated[int, PathParameter(ge=1, le=ID_MAX)],
    ) -> Notice:
        """Mark one of the caller's notifications read (idempotent); 404 if it is not theirs."""
        platform, principal = await tenant_member(request, tenant)
        recipients = await visible_recipients(platform, principal)
        async with tenant_transaction(tenant) as conn:
            row = await conn.fetchrow(
                f"""UPDATE notifications SET read_at = coalesce(read_at, now())
                    WHERE id = $1 AND recipient = ANY($2) RETURNING {_COLUMNS}""",
                notification_id,
                recipients,
            )
        if row is None:
            raise NotFound(f"notification {notification_id} not found")
        return _notice(tenant, row)

    @get("/stream")
    async def stream(self, request: Request[Principal, Any, Any], tenant: FromPath[str]) -> ServerSentEvent:
        """Live notifications for the caller as Server-Sent Events (event = notification kind, id =
        notification id, data = the notification as JSON). A ``Last-Event-ID`` header replays what
        was recorded after that id first. A comment line is sent on connect and every 15 s."""
        platform, principal = await tenant_member(request, tenant)
        recipients = await visible_recipients(platform, principal)
        visible = frozenset(recipients)
        bus = request.app.state.notify_bus
        raw_last = request.headers.get("last-event-id")
        last_id = int(raw_last) if raw_last and raw_last.isdigit() else None

        async def events() -> AsyncIterator[ServerSentEventMessage]:
            sub = await bus.subscribe(tenant)
            try:
                replayed: set[int] = set()
                if last_id is not None:
                    async with tenant_transaction(tenant) as conn:
                        rows = await conn.fetch(
                            f"""SELECT {_COLUMNS} FROM notifications WHERE recipient = ANY($1) AND id > $2
                                ORDER BY id LIMIT {REPLAY_LIMIT}""",
                            recipients,
                            last_id,
                        )
                    for r in rows:
                        replayed.add(r["id"])
                        yield _event(_notice(tenant, r))
                yield ServerSentEventMessage(data=None, comment="connected", retry=3000)
                while True:
                    try:
                        notice = await asyncio.wait_for(sub.get(), KEEPALIVE_SECONDS)
                    except asyncio.TimeoutError:
                        yield ServerSentEventMessage(data=None, comment="keep-alive")
                        continue
                    if notice.recipient in visible and notice.id not in replayed:
                        yield _event(notice)
            finally:
                await bus.unsubscribe(sub)

        return ServerSentEvent(events())
