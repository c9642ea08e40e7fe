"""The outbound case-events feed of a bureau node's subtree: pages of ``complaint_events`` after a cursor.

Why a cursor never skips an event: event ids come from a sequence, and a transaction that took a lower
id may commit after one that took a higher id, so "everything after id N" could miss the late one.
Each event records an order key (``feed_key``, tenant migration 0009): ``feed_clock()`` of the
inserting transaction, its transaction id plus the schema's shift (:mod:`core.notifications.feed_clock`).
The feed is ordered by ``(feed_key, id)`` and returns only events below ``feed_horizon()``, the oldest
transaction still running plus the same shift: every transaction below it has ended, so no event can
ever appear before a cursor already handed out. The shift is raised when the schema lands on another
cluster (``odr tenant move``; ``odr migrate`` after a restore), so keys stay monotonic per tenant and a
cursor survives a move. The price: an event shows up only once every transaction that started before
its own has ended (normally milliseconds; a long-running transaction holds the feed back while it runs).

The cursor is opaque to clients: the string ``"<feed_key>-<id>"`` of the last event returned (two
decimal numbers; the key is not a transaction id of any server); ``"0"`` (or none) starts at the
beginning. Clients store it and send it back unchanged.

What an event carries (no consumer's personal data unmasked, as for the bureau role outside the
handling node): the event's kind, time, node and actor role, whitelisted parts of its change (state,
milestone, due, route) and a snapshot of the complaint as it is when the page is read (number, state,
node, company, subject, category, amounts, due moments, breaches, the consumer's name and phone
masked). Events belong to the subtree of the node their complaint is under when the page is read.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import asyncpg
import msgspec

from core.complaints.masking import mask_name, mask_phone

MAX_LIMIT = 500
CURSOR_RE = re.compile(r"^(\d{1,20})-(\d{1,20})$")
BIGINT_MAX = 2**63 - 1  # both parts are bigint columns
CHANGE_KEYS = ("state", "milestone", "due", "route", "breaches")


class ComplaintSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    number: str
    state: str
    source: str
    node_code: str
    enterprise_id: str | None
    company_name: str
    subject: str
    category: str | None
    amount_claimed: float | None
    amount_recovered: float | None
    settled: bool | None
    consumer_name: str
    """Masked (张**)."""
    consumer_phone: str
    """Masked (139****5678)."""
    contact_due: dt.datetime | None
    close_due: dt.datetime | None
    closed_at: dt.datetime | None
    breaches: list[str]
    created_at: dt.datetime


class FeedEvent(msgspec.Struct, frozen=True, kw_only=True):
    cursor: str
    """Pass as ``after`` to continue after this event."""
    id: int
    kind: str
    at: dt.datetime
    node_code: str | None
    actor_role: str
    change: dict[str, Any]
    complaint: ComplaintSnapshot


class FeedPage(msgspec.Struct, frozen=True, kw_only=True):
    events: list[FeedEvent]
    next: str
    """The cursor to ask with next (equal to ``after`` when nothing new was ready)."""
    more: bool
    """True when the page was full (ask again at once)."""


def parse_cursor(raw: str | None) -> tuple[int, int]:
    """``(feed_key, id)`` of a cursor; ValueError naming ``after`` when malformed or out of range."""
    if raw is None or raw in ("", "0"):
        return 0, 0
    match = CURSOR_RE.match(raw)
    if match is None or max(int(match.group(1)), int(match.group(2))) > BIGINT_MAX:
        raise ValueError("after: a cursor from a previous page (\"<key>-<id>\") or 0")
    return int(match.group(1)), int(match.group(2))


def subtree_like(path: str) -> str:
    """A LIKE pattern matching the paths strictly below ``path`` (its wildcards escaped)."""
    return path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"


def format_cursor(key: int, event_id: int) -> str:
    return f"{key}-{event_id}" if (key or event_id) else "0"


FEED_SQL = """
SELECT e.feed_key, e.id, e.kind, e.at, e.node_code, e.actor_role, e.after,
       c.id::text AS c_id, c.number, c.state, c.source, c.node_code AS c_node, c.enterprise_id::text AS enterprise_id,
       c.company_name, c.subject, c.category, c.amount_claimed::float8 AS amount_claimed,
       c.amount_recovered::float8 AS amount_recovered, c.settled, c.consumer_name, c.consumer_phone,
       c.contact_due, c.close_due, c.closed_at, c.breaches, c.created_at AS c_created
FROM complaint_events e JOIN complaints c ON c.id = e.complaint_id
WHERE (e.feed_key, e.id) > ($1::bigint, $2::bigint)
  AND e.feed_key < feed_horizon()
  AND (c.node_path = $3 OR c.node_path LIKE $4)
ORDER BY e.feed_key, e.id
LIMIT $5
"""


def _event(row: asyncpg.Record) -> FeedEvent:
    after = row["after"]
    if isinstance(after, (str, bytes)):
        after = msgspec.json.decode(after)
    change = {k: after[k] for k in CHANGE_KEYS if isinstance(after, dict) and k in after}
    return FeedEvent(
        cursor=format_cursor(row["feed_key"], row["id"]),
        id=row["id"],
        kind=row["kind"],
        at=row["at"],
        node_code=row["node_code"],
        actor_role=row["actor_role"],
        change=change,
        complaint=ComplaintSnapshot(
            id=row["c_id"], number=row["number"], state=row["state"], source=row["source"], node_code=row["c_node"],
            enterprise_id=row["enterprise_id"], company_name=row["company_name"], subject=row["subject"],
            category=row["category"], amount_claimed=row["amount_claimed"], amount_recovered=row["amount_recovered"],
            settled=row["settled"], consumer_name=mask_name(row["consumer_name"]),
            consumer_phone=mask_phone(row["consumer_phone"]), contact_due=row["contact_due"],
            close_due=row["close_due"], closed_at=row["closed_at"], breaches=list(row["breaches"] or ()),
            created_at=row["c_created"],
        ),
    )


async def read_feed(conn: asyncpg.Connection, *, node_path: tuple[str, ...], after: tuple[int, int],
                    limit: int) -> FeedPage:
    """The next page of the subtree's events after ``after`` (inside the caller's tenant transaction)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: must be between 1 and {MAX_LIMIT}")
    path = "/".join(node_path)
    like = subtree_like(path)
    rows = await conn.fetch(FEED_SQL, after[0], after[1], path, like, limit)
    events = [_event(r) for r in rows]
    nxt = events[-1].cursor if events else format_cursor(*after)
    return FeedPage(events=events, next=nxt, more=len(events) == limit)
