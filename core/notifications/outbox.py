"""The delivery outbox in each tenant's schema: expanding notifications into channel deliveries,
claiming due deliveries, recording their outcome, the dead-letter list.

Contract:
- A recorded notification (``notifications.dispatched_at IS NULL``, written in the caller's
  transaction whoever wrote it) is expanded once into one ``deliveries`` row per (notification,
  channel, recipient) for every channel plugin active at the notification's node: endpoint channels
  (webhook) get one row for the notification's recipient; address channels (e-mail, SMS) one row per
  account matching the recipient that switched the channel on with an address. Expanding and marking
  the notification dispatched is one transaction; rows are claimed ``FOR UPDATE SKIP LOCKED``, so
  several workers expand disjoint notifications, and the idempotency key's unique index makes a
  repeat a no-op.
- A case-event subscription whose previous batch is no longer pending gets its next feed page as one
  delivery (``case_events``), and its cursor moves in the same transaction.
- :func:`claim` takes due pending rows ``FOR UPDATE SKIP LOCKED``, counts the attempt and leases them
  (``next_attempt_at`` = now + lease) in one short transaction; the channel is called outside any
  transaction; :func:`finish` then records delivered / skipped, or schedules the next attempt after
  :func:`backoff`: ``retry * 2**(attempts-1)`` seconds (at most 6 h) with equal jitter (uniform between
  half of it and all of it, so rows that failed together are spread out when their receiver comes
  back), or dead-letters the row after ``max_attempts``.
  A worker that dies after claiming leaves the row pending: it is sent again when the lease ends
  (at-least-once; receivers deduplicate on the idempotency key).
- Each row is independent: a failing channel or receiver delays only its own rows.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import asyncpg
import msgspec

from core.notifications import texts
from core.notifications.events_feed import parse_cursor, read_feed, subtree_like
from odr_plugin_api import ChannelMessage, Family

MAX_BACKOFF_SECONDS = 6 * 3600.0
BUREAU_ROLE_NAMES = ("province_admin", "bureau_officer", "office_head")


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One outbox row (``address`` only inside the worker; listings mask it)."""

    id: int
    idempotency_key: str
    channel: str
    node_code: str
    recipient: str
    address: str | None
    kind: str
    message: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    detail: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    notification_id: int | None = None
    subscription_id: str | None = None


COLUMNS = """id, idempotency_key, channel, node_code, recipient, address, kind, message, state, attempts,
    next_attempt_at, last_error, detail, created_at, finished_at, notification_id, subscription_id::text"""


def delivery_of(row: asyncpg.Record) -> Delivery:
    data = dict(row)
    if isinstance(data["message"], (str, bytes)):
        data["message"] = msgspec.json.decode(data["message"])
    return Delivery(**data)


def backoff_ceiling(attempts: int, retry_seconds: float) -> float:
    """The exponential back-off after the ``attempts``-th failed attempt, without jitter."""
    return min(MAX_BACKOFF_SECONDS, retry_seconds * 2 ** max(0, attempts - 1))


def backoff(attempts: int, retry_seconds: float, *, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: equal jitter over
    :func:`backoff_ceiling` ``c``, uniform in ``[c/2, c]`` (never sooner than half the exponential
    back-off, never later than it; the 6 h cap bounds it)."""
    ceiling = backoff_ceiling(attempts, retry_seconds)
    return ceiling / 2 + (rng or random).uniform(0.0, ceiling / 2)


def channel_plugins(platform, active: frozenset[str]) -> list[tuple[str, str]]:
    """``(plugin, address kind)`` of the channel plugins among ``active``, sorted by name."""
    out = []
    for name in sorted(active):
        info = platform.host.infos.get(name)
        if info is not None and Family.CHANNEL in info.families:
            out.append((name, info.address))
    return out


def _message(*, key: str, tenant: str, node: str, recipient: str, kind: str, payload: dict,
             created_at: dt.datetime | None) -> dict:
    subject, text, params = texts.compose(kind, payload)
    return msgspec.to_builtins(ChannelMessage(
        idempotency_key=key, tenant=tenant, node=node, recipient=recipient, kind=kind, subject=subject,
        text=text, params=params, payload=payload, created_at=created_at,
    ))


PENDING_NOTIFICATIONS = """
SELECT n.id, n.recipient, n.kind, n.payload, n.created_at,
       coalesce(c.node_code, e.node_code,
                CASE WHEN n.recipient LIKE 'node:%' THEN substr(n.recipient, 6) END) AS node_code
FROM notifications n
LEFT JOIN complaints c ON c.id = n.complaint_id
LEFT JOIN enterprises e ON e.id = n.enterprise_id
WHERE n.dispatched_at IS NULL
ORDER BY n.id
LIMIT $1
FOR UPDATE OF n SKIP LOCKED
"""

MATCHING_ACCOUNTS = """
SELECT account_id::text, address FROM channel_preferences
WHERE channel = $1 AND enabled AND address IS NOT NULL AND address <> ''
  AND CASE split_part($2, ':', 1)
        WHEN 'account' THEN account_id::text = substr($2, 9)
        WHEN 'enterprise' THEN account_role = 'enterprise_specialist' AND enterprise_id::text = substr($2, 12)
        WHEN 'node' THEN account_role = ANY($3::text[]) AND node_code = substr($2, 6)
        ELSE false END
ORDER BY account_id
"""

INSERT_DELIVERY = """
INSERT INTO deliveries (idempotency_key, notification_id, subscription_id, channel, node_code, recipient, address,
                        kind, message)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
ON CONFLICT (idempotency_key) DO NOTHING
"""


async def expand_notifications(platform, conn: asyncpg.Connection, tenant: str, *, batch: int = 200) -> int:
    """Expand pending notifications of ``tenant`` into deliveries (inside the caller's tenant
    transaction). Returns how many deliveries were queued."""
    rows = await conn.fetch(PENDING_NOTIFICATIONS, batch)
    if not rows:
        return 0
    nodes = await platform.nodes(tenant)
    queued = 0
    for row in rows:
        node = row["node_code"]
        if node not in nodes:
            continue
        _, active = await platform.scope(tenant, node)
        payload = row["payload"]
        if isinstance(payload, (str, bytes)):
            payload = msgspec.json.decode(payload)
        for channel, address_kind in channel_plugins(platform, active):
            if address_kind:
                targets = [(f"account:{r['account_id']}", r["address"])
                           for r in await conn.fetch(MATCHING_ACCOUNTS, channel, row["recipient"], list(BUREAU_ROLE_NAMES))]
            else:
                targets = [(row["recipient"], None)]
            for recipient, address in targets:
                key = f"{tenant}:n{row['id']}:{channel}:{recipient}"
                message = _message(key=key, tenant=tenant, node=node, recipient=recipient, kind=row["kind"],
                                   payload=payload, created_at=row["created_at"])
                status = await conn.execute(INSERT_DELIVERY, key, row["id"], None, channel, node, recipient, address,
                                            row["kind"], msgspec.json.encode(message).decode())
                queued += status.endswith(" 1")
    await conn.execute("UPDATE notifications SET dispatched_at = now() WHERE id = ANY($1::bigint[])",
                       [r["id"] for r in rows])
    return queued


async def expand_subscriptions(platform, conn: asyncpg.Connection, tenant: str, *, limit: int = 100) -> int:
    """Queue the next case-events batch of every active subscription whose previous batch is not
    pending (so batches of one subscription arrive in order). Returns how many batches were queued."""
    subs = await conn.fetch(
        """SELECT s.id, s.node_code, s.channel, s.cursor_key, s.cursor_id
           FROM event_subscriptions s
           WHERE s.active AND NOT EXISTS (
               SELECT 1 FROM deliveries d WHERE d.subscription_id = s.id AND d.state = 'pending')
           FOR UPDATE OF s SKIP LOCKED""")
    if not subs:
        return 0
    nodes = await platform.nodes(tenant)
    queued = 0
    for sub in subs:
        node = nodes.get(sub["node_code"])
        if node is None:
            continue
        page = await read_feed(conn, node_path=node.path, after=(sub["cursor_key"], sub["cursor_id"]), limit=limit)
        if not page.events:
            continue
        first = page.events[0].cursor
        recipient = f"subscription:{sub['id']}"
        key = f"{tenant}:s{sub['id']}:{first}"
        payload = {"events": msgspec.to_builtins(page.events), "next": page.next, "more": page.more}
        message = _message(key=key, tenant=tenant, node=node.code, recipient=recipient, kind="case_events",
                           payload=payload, created_at=None)
        await conn.execute(INSERT_DELIVERY, key, None, sub["id"], sub["channel"], node.code, recipient, None,
                           "case_events", msgspec.json.encode(message).decode())
        key, last_id = parse_cursor(page.next)
        await conn.execute(
            "UPDATE event_subscriptions SET cursor_key = $2, cursor_id = $3, updated_at = now() WHERE id = $1",
            sub["id"], key, last_id)
        queued += 1
    return queued


async def claim(conn: asyncpg.Connection, *, limit: int, lease_seconds: float) -> list[Delivery]:
    """Take up to ``limit`` due pending deliveries, count the attempt and lease them."""
    rows = await conn.fetch(
        f"""WITH due AS (
                SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= now()
                ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
            UPDATE deliveries d SET attempts = d.attempts + 1,
                   next_attempt_at = now() + make_interval(secs => $2)
            FROM due WHERE d.id = due.id
            RETURNING {', '.join('d.' + c.strip() for c in COLUMNS.split(','))}""",
        limit, lease_seconds)
    return [delivery_of(r) for r in rows]


async def finish_sent(conn: asyncpg.Connection, delivery_id: int, *, status: str, detail: str) -> None:
    await conn.execute(
        """UPDATE deliveries SET state = $2, detail = $3, last_error = NULL, finished_at = now()
           WHERE id = $1 AND state = 'pending'""",
        delivery_id, "skipped" if status == "skipped" else "delivered", detail[:500])


async def finish_failed(conn: asyncpg.Connection, delivery: Delivery, *, error: str, retry_seconds: float,
                        max_attempts: int) -> str:
    """Schedule the next attempt, or dead-letter the row; returns the new state."""
    if delivery.attempts >= max_attempts:
        await conn.execute(
            """UPDATE deliveries SET state = 'dead', last_error = $2, finished_at = now()
               WHERE id = $1 AND state = 'pending'""", delivery.id, error[:500])
        return "dead"
    await conn.execute(
        """UPDATE deliveries SET last_error = $2, next_attempt_at = now() + make_interval(secs => $3)
           WHERE id = $1 AND state = 'pending'""",
        delivery.id, error[:500], backoff(delivery.attempts, retry_seconds))
    return "pending"


async def list_deliveries(conn: asyncpg.Connection, *, node_path: tuple[str, ...], state: str | None,
                          before_id: int | None, limit: int) -> list[Delivery]:
    """Deliveries of the nodes in the subtree of ``node_path``, newest first."""
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM deliveries
            WHERE node_code IN (SELECT code FROM jurisdictions WHERE path = $1 OR path LIKE $2)
              AND ($3::text IS NULL OR state = $3) AND ($4::bigint IS NULL OR id < $4)
            ORDER BY id DESC LIMIT $5""",
        "/".join(node_path), subtree_like("/".join(node_path)), state, before_id, limit)
    return [delivery_of(r) for r in rows]


async def retry_dead(conn: asyncpg.Connection, delivery_id: int, *, node_path: tuple[str, ...]) -> Delivery | None:
    """Put a dead-lettered delivery of the subtree back in the queue (attempts from zero)."""
    row = await conn.fetchrow(
        f"""UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = now(), finished_at = NULL
            WHERE id = $1 AND state = 'dead'
              AND node_code IN (SELECT code FROM jurisdictions WHERE path = $2 OR path LIKE $3)
            RETURNING {COLUMNS}""",
        delivery_id, "/".join(node_path), subtree_like("/".join(node_path)))
    return delivery_of(row) if row else None

