"""The events feed's clock: the order key of ``complaint_events`` (``feed_key``), per tenant schema.

Two functions in each tenant schema (tenant migration 0009) share one constant ``shift``:

- ``feed_clock()`` — the key of an event inserted now: ``pg_current_xact_id() + shift`` (the column
  default of ``complaint_events.feed_key``);
- ``feed_horizon()`` — the feed shows events with ``feed_key < feed_horizon()``:
  ``pg_snapshot_xmin(pg_current_snapshot()) + shift``, i.e. below the oldest transaction still running.

On one cluster with a constant shift this is the commit-ordered feed of transaction ids: no event can
later appear below the horizon. Transaction ids belong to a cluster, though: a schema copied to another
cluster (``odr tenant move``, or ``pg_dump`` / ``pg_restore``) carries keys of the old cluster's
counter, which may be far ahead of the new one. :func:`advance_feed_clock` then raises the shift so the
new cluster's next transaction gets a key above every copied key (``max(feed_key) + 1 - next xid``),
never lowering it. The shift only ever grows, so keys stay monotonic per tenant across any number of
moves, and a cursor (``"<feed_key>-<id>"``, opaque to clients) handed out before the move still points
between the same events after it.

Raising the shift is safe only while nothing inserts events with the old shift: the function takes a
SHARE ROW EXCLUSIVE lock on ``complaint_events`` (waits for inserting transactions to end, blocks new
inserts until commit) and replaces both functions in the same transaction. ``odr tenant move`` calls it
on the target during the write pause, after the copy is verified and before the placement flips (the
functions are not replicated: that is why it happens at the switch); ``odr migrate`` calls it for every
tenant (a cheap check without any lock first: on a cluster that wrote every key itself it is a no-op),
which covers a schema restored from a dump onto another server.

The functions are plain SQL on ``pg_catalog`` only (inlined into the insert and the feed's query: no
lookup on the insert path; nothing outside the schema for ``odr check citus-ready``).
"""

from __future__ import annotations

import asyncpg

FUNCTIONS = """
CREATE OR REPLACE FUNCTION {schema}.feed_clock() RETURNS bigint LANGUAGE sql VOLATILE
    AS $$ SELECT pg_catalog.pg_current_xact_id()::text::bigint + {shift} $$;
CREATE OR REPLACE FUNCTION {schema}.feed_horizon() RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint + {shift} $$
"""
"""Both functions with the constant ``shift`` (tenant migration 0009 creates them with shift 0)."""

_STATE = """
SELECT {schema}.feed_horizon() - pg_snapshot_xmin(s)::text::bigint AS shift,
       pg_snapshot_xmax(s)::text::bigint AS next_xid,
       (SELECT max(feed_key) FROM {schema}.complaint_events) AS top
FROM pg_current_snapshot() s
"""


def functions_sql(schema: str, shift: int) -> str:
    return FUNCTIONS.format(schema=schema, shift=int(shift))


async def _needed(conn: asyncpg.Connection, schema: str) -> tuple[int, int]:
    """``(current shift, shift needed)`` of ``schema``'s feed clock on this cluster."""
    row = await conn.fetchrow(_STATE.format(schema=schema))
    current = row["shift"]
    if row["top"] is None:
        return current, current
    return current, max(current, row["top"] + 1 - row["next_xid"])


async def advance_feed_clock(conn: asyncpg.Connection, schema: str) -> tuple[int, int] | None:
    """Raise ``schema``'s feed-clock shift so this cluster's next event gets a key above every stored
    one (see the module's contract). Call inside a transaction of a login that may SET ROLE to the
    functions' owner (the schema's owner, who replaces them; the role is the login's again on return).
    Everything that reads the schema runs as that owner, so the login's own privileges on the schema
    do not matter. Returns ``(shift before, shift after)``, or None when the schema has no feed clock
    (before tenant migration 0009)."""
    owner = await conn.fetchval(  # catalog names only: no lookup through the schema, no privilege needed
        """SELECT p.proowner::regrole::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = $1 AND p.proname = 'feed_horizon' AND p.pronargs = 0""", schema)
    if owner is None:
        return None
    await conn.execute("SELECT set_config('role', $1, true)", owner)
    try:
        before, needed = await _needed(conn, schema)
        if needed != before:
            await conn.execute(f"LOCK TABLE {schema}.complaint_events IN SHARE ROW EXCLUSIVE MODE")
            before, needed = await _needed(conn, schema)  # again, now that nothing inserts
            if needed > before:
                await conn.execute(functions_sql(schema, needed))
    finally:
        await conn.execute("SELECT set_config('role', 'none', true)")
    return before, needed
