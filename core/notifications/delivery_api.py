"""Channels, deliveries and the outbound case-events API.

- ``GET /api/tenants/{t}/me/channels``, ``PUT .../me/channels/{channel}``: the caller's own channel
  choices (any account of the tenant; see :mod:`core.notifications.preferences`).
- ``GET /api/tenants/{t}/nodes/{node}/deliveries?state=&before_id=&limit=``: the deliveries of the
  node's subtree, newest first (``state=dead``: the dead-letter list), addresses masked; bureau roles.
- ``POST .../deliveries/{id}/retry``: a dead-lettered delivery back in the queue; bureau roles.
- ``GET /api/tenants/{t}/nodes/{node}/events?after=&limit=``: the subtree's case events after a cursor
  (:mod:`core.notifications.events_feed`), consumers' personal data masked; bureau roles.
- ``GET / PUT / DELETE .../nodes/{node}/event-subscription``: the node's subscription to its
  subtree's case events, delivered in batches through a channel (default the signed webhook, whose
  URL and secret are that plugin's configuration at the node); provincial admins and bureau officers.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter

from core.api.access import bureau_node, tenant_member
from core.api.errors import NotFound
from core.auth.principal import POLICY_ROLES, Principal
from core.complaints.masking import mask_phone
from core.db.engine import tenant_transaction
from core.notifications import outbox, preferences
from core.notifications.events_feed import FeedPage, format_cursor, parse_cursor, read_feed
from core.notifications.api import ID_MAX
from odr_plugin_api import Family

STATES = ("pending", "delivered", "skipped", "dead")


def mask_address(address: str | None) -> str | None:
    if not address:
        return address
    if "@" in address:
        name, _, domain = address.partition("@")
        return name[:1] + "***@" + domain
    return mask_phone(address)


class DeliveryView(msgspec.Struct, kw_only=True):
    id: int
    channel: str
    kind: str
    node_code: str
    recipient: str
    address: str | None
    """Masked."""
    complaint_number: str | None
    state: str
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str | None
    detail: str | None
    idempotency_key: str
    created_at: dt.datetime
    finished_at: dt.datetime | None


def delivery_view(d: outbox.Delivery) -> DeliveryView:
    params = d.message.get("params") or {}
    return DeliveryView(
        id=d.id, channel=d.channel, kind=d.kind, node_code=d.node_code, recipient=d.recipient,
        address=mask_address(d.address), complaint_number=params.get("number") or None, state=d.state,
        attempts=d.attempts, next_attempt_at=d.next_attempt_at if d.state == "pending" else None,
        last_error=d.last_error, detail=d.detail, idempotency_key=d.idempotency_key, created_at=d.created_at,
        finished_at=d.finished_at,
    )


class SubscriptionChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    active: bool = True
    channel: str = "odr_webhook"
    start: Literal["now", "beginning"] = "now"
    """For a new subscription: deliver events from now on, or every event from the beginning."""


class Subscription(msgspec.Struct, kw_only=True):
    id: str
    node_code: str
    channel: str
    active: bool
    cursor: str
    """The last event delivered (queued) so far."""
    pending_batches: int
    dead_batches: int
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime


async def _subscription(conn, node_code: str) -> Subscription | None:
    row = await conn.fetchrow(
        """SELECT s.id::text, s.node_code, s.channel, s.active, s.cursor_key, s.cursor_id, s.created_by,
                  s.created_at, s.updated_at,
                  (SELECT count(*) FROM deliveries d WHERE d.subscription_id = s.id AND d.state = 'pending') AS pending,
                  (SELECT count(*) FROM deliveries d WHERE d.subscription_id = s.id AND d.state = 'dead') AS dead
           FROM event_subscriptions s WHERE s.node_code = $1""", node_code)
    if row is None:
        return None
    return Subscription(id=row["id"], node_code=row["node_code"], channel=row["channel"], active=row["active"],
                        cursor=format_cursor(row["cursor_key"], row["cursor_id"]), pending_batches=row["pending"],
                        dead_batches=row["dead"], created_by=row["created_by"], created_at=row["created_at"],
                        updated_at=row["updated_at"])


class ChannelPreferenceController(Controller):
    path = "/api/tenants/{tenant:str}/me/channels"
    tags = ["notifications"]

    @get("/")
    async def list_choices(self, request: Request[Principal, Any, Any], tenant: FromPath[str]) -> list[preferences.ChannelChoice]:
        """The caller's choice for every channel that needs an address (e-mail, SMS)."""
        platform, principal = await tenant_member(request, tenant)
        async with tenant_transaction(tenant) as conn:
            return await preferences.choices(conn, platform.host, principal)

    @put("/{channel:str}")
    async def save_choice(self, request: Request[Principal, Any, Any], tenant: FromPath[str], channel: FromPath[str],
                          data: JSONBody[preferences.ChoiceChange]) -> preferences.ChannelChoice:
        """Switch a channel on (with the address to use) or off for the caller."""
        platform, principal = await tenant_member(request, tenant)
        async with tenant_transaction(tenant) as conn:
            return await preferences.save_choice(conn, platform.host, principal, channel, data)


class DeliveryController(Controller):
    path = "/api/tenants/{tenant:str}/nodes/{node:str}"
    tags = ["notifications"]

    @get("/deliveries")
    async def list_deliveries(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: FromPath[str],
        delivery_state: Annotated[str | None, QueryParameter(name="state")] = None, before_id: Annotated[int | None, QueryParameter(name="before_id", ge=0, le=ID_MAX)] = None,
        limit: Annotated[int, QueryParameter(name="limit", ge=1, le=200)] = 50,
    ) -> list[DeliveryView]:
        """Notification deliveries of the node's subtree, newest first; ``state=dead`` is the
        dead-letter list. Addresses are masked."""
        _, _, n = await bureau_node(request, tenant, node)
        state = delivery_state
        if state is not None and state not in STATES:
            raise ValueError(f"state: one of {', '.join(STATES)}")
        async with tenant_transaction(tenant) as conn:
            rows = await outbox.list_deliveries(conn, node_path=n.path, state=state, before_id=before_id, limit=limit)
        return [delivery_view(d) for d in rows]

    @post("/deliveries/{delivery_id:int}/retry", status_code=200)
    async def retry(self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: FromPath[str],
                    delivery_id: Annotated[int, PathParameter(ge=1, le=ID_MAX)]) -> DeliveryView:
        """Queue a dead-lettered delivery of the subtree again (its attempts start from zero)."""
        _, _, n = await bureau_node(request, tenant, node)
        async with tenant_transaction(tenant) as conn:
            row = await outbox.retry_dead(conn, delivery_id, node_path=n.path)
        if row is None:
            raise NotFound(f"dead-lettered delivery {delivery_id} not found under node {node}")
        return delivery_view(row)

    @get("/events")
    async def events(self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: FromPath[str],
                     after: FromQuery[str | None] = None, limit: FromQuery[int] = 100) -> FeedPage:
        """Case events of the node's subtree after the cursor ``after`` (``next`` of the previous
        page; none or ``0`` from the beginning), in commit order; never skips an event committed
        late. Consumers' names and phones are masked."""
        _, _, n = await bureau_node(request, tenant, node)
        cursor = parse_cursor(after)
        async with tenant_transaction(tenant) as conn:
            return await read_feed(conn, node_path=n.path, after=cursor, limit=limit)

    @get("/event-subscription")
    async def subscription(self, request: Request[Principal, Any, Any], tenant: FromPath[str],
                           node: FromPath[str]) -> Subscription:
        """The node's case-events subscription (404 when it has none)."""
        _, _, n = await bureau_node(request, tenant, node)
        async with tenant_transaction(tenant) as conn:
            sub = await _subscription(conn, n.code)
        if sub is None:
            raise NotFound(f"node {node} has no event subscription")
        return sub

    @put("/event-subscription")
    async def subscribe(self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: FromPath[str],
                        data: JSONBody[SubscriptionChange]) -> Subscription:
        """Subscribe the node's system to its subtree's case events (or change the subscription):
        batches go out through ``channel`` (an endpoint channel such as ``odr_webhook``, configured
        and activated at the node), in order, each retried and dead-lettered like any delivery."""
        platform, principal, n = await bureau_node(request, tenant, node, POLICY_ROLES)
        info = platform.host.infos.get(data.channel)
        if info is None or Family.CHANNEL not in info.families or info.address:
            raise ValueError(f"channel: {data.channel!r} is not an installed endpoint channel (e.g. odr_webhook)")
        async with tenant_transaction(tenant) as conn:
            if data.start == "now":
                start = await conn.fetchrow(
                    """SELECT feed_key, id FROM complaint_events
                       WHERE feed_key < feed_horizon() ORDER BY feed_key DESC, id DESC LIMIT 1""")
                key, last = (start["feed_key"], start["id"]) if start else (0, 0)
            else:
                key, last = 0, 0
            await conn.execute(
                """INSERT INTO event_subscriptions (node_code, channel, active, cursor_key, cursor_id, created_by)
                   VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (node_code) DO UPDATE SET channel = EXCLUDED.channel, active = EXCLUDED.active,
                       updated_at = now()""",
                n.code, data.channel, data.active, key, last, principal.id)
            return await _subscription(conn, n.code)

    @delete("/event-subscription", status_code=200)
    async def unsubscribe(self, request: Request[Principal, Any, Any], tenant: FromPath[str],
                          node: FromPath[str]) -> Subscription:
        """Pause the node's subscription (kept with its cursor; PUT with ``active`` resumes it)."""
        _, _, n = await bureau_node(request, tenant, node, POLICY_ROLES)
        async with tenant_transaction(tenant) as conn:
            await conn.execute("UPDATE event_subscriptions SET active = false, updated_at = now() WHERE node_code = $1",
                               n.code)
            sub = await _subscription(conn, n.code)
        if sub is None:
            raise NotFound(f"node {node} has no event subscription")
        return sub
