"""``odr tenant move T --to CLUSTER``: a tenant's schema moved to another cluster with PostgreSQL's
logical replication, and ``odr tenant drop-source T``.

Contract (the steps, each recorded in ``odr.tenant_moves`` so an interrupted move resumes or rolls back):

1. **copying** — on the target, the tenant's roles and schema are made exactly as onboarding makes
   them (the tenant migrations run as the owner: tables, views, functions, triggers, grants), then
   emptied; on the source a publication of every table of the schema; on the target a subscription
   with ``copy_data``. Rows arrive through the apply workers, which run with
   ``session_replication_role = replica``: ordinary triggers (``complaint_facts`` upkeep, foreign keys)
   do not fire for them, so nothing is counted twice — ``complaint_facts`` is copied as a table like the
   others. Wait until every table is synchronised (``pg_subscription_rel`` state ``r``).
2. **switching** — the write pause: the registry's ``writes_paused_at`` is set (every process answers
   the tenant's requests 503 with ``Retry-After``, :class:`core.db.engine.WritesPaused`), then on the
   source the runtime role loses INSERT, UPDATE and DELETE (checked per statement, so a process whose
   cached placement is behind cannot write either) and a SHARE lock on every table waits for the
   transactions that wrote to finish. Then wait until the target has caught up: the row count and an
   order-independent checksum of every table equal on both sides; sequences are set on the target to
   the source's values; the events feed's clock is advanced on the target above every copied order
   key (:func:`core.notifications.feed_clock.advance_feed_clock`: the copied keys count the source's
   transaction ids, which the target's may be far behind; functions are not replicated, so this is
   done here, as the schema's owner, while nothing writes); the placement is flipped and the pause
   lifted in one registry transaction.
3. **switched** — the subscription and publication are dropped; the source schema stays (its runtime
   role without USAGE, so nothing reads it by mistake) until ``odr tenant drop-source``. **done**.

``abort`` rolls back a move that has not switched: the subscription, publication and target schema
are dropped, the source's privileges given back, the pause lifted. Moving needs a superuser URL of both
clusters and ``wal_level = logical`` on the source (:func:`core.db.clusters.superuser_url`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

import asyncpg
import msgspec

from core.db import clusters
from core.db.admin import admin_transaction, owner_role
from core.db.engine import tenant_role
from core.db.migrations import discover
from core.notifications.feed_clock import advance_feed_clock
from tenants.migrate import TENANT_MIGRATIONS, apply_tenant_migrations
from tenants.onboarding import drop_schema_and_roles
from tenants.roles import SCHEMA_RELATIONS, apply_runtime_grants, create_roles

log = logging.getLogger(__name__)

Publish = Callable[[str], Awaitable[object]]


class MoveError(ValueError):
    """The move cannot be done as asked (the message names the field: ``tenant``, ``to``)."""


class TableCheck(msgspec.Struct, frozen=True, kw_only=True):
    table: str
    rows: int
    checksum: str
    equal: bool


class MoveReport(msgspec.Struct, frozen=True, kw_only=True):
    tenant: str
    source: str
    target: str
    state: str
    tables: list[TableCheck] = []
    rows: int = 0
    sequences: dict[str, int] = {}
    feed_shift: int = 0
    """The target's events-feed clock shift after the switch (see :mod:`core.notifications.feed_clock`)."""
    copy_seconds: float = 0.0
    catch_up_seconds: float = 0.0
    write_pause_ms: float = 0.0
    resumed: bool = False


def _names(slug: str) -> tuple[str, str]:
    name = f"odr_move_{slug}"
    return name, name


async def _connect(url: str) -> asyncpg.Connection:
    """A superuser connection with the settings that make rows' text forms comparable across servers."""
    return await asyncpg.connect(url, server_settings={"TimeZone": "UTC", "DateStyle": "ISO, YMD", "extra_float_digits": "3",
                                                       "IntervalStyle": "postgres", "application_name": "odr-move"})


async def _open_move(slug: str) -> asyncpg.Record | None:
    async with admin_transaction() as conn:
        return await conn.fetchrow(
            "SELECT id, source, target, state FROM odr.tenant_moves WHERE tenant = $1 AND state IN ('copying', 'switching', 'switched')",
            slug)


async def _set_state(move_id: int, state: str, **extra) -> None:
    async with admin_transaction() as conn:
        await conn.execute(
            "UPDATE odr.tenant_moves SET state = $2, updated_at = now(), pause_ms = coalesce($3, pause_ms),"
            " report = coalesce($4::jsonb, report) WHERE id = $1",
            move_id, state, extra.get("pause_ms"), extra.get("report"))


async def _tables(conn: asyncpg.Connection, schema: str) -> list[str]:
    rows = await conn.fetch(SCHEMA_RELATIONS + " AND c.relkind IN ('r', 'p') ORDER BY c.relname", schema)
    return [r["relname"] for r in rows]


async def _sequences(conn: asyncpg.Connection, schema: str) -> list[str]:
    rows = await conn.fetch(SCHEMA_RELATIONS + " AND c.relkind = 'S' ORDER BY c.relname", schema)
    return [r["relname"] for r in rows]


async def table_checks(conn: asyncpg.Connection, schema: str, tables: list[str]) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum (sum of the rows' md5 hashes) per table."""
    out = {}
    for t in tables:
        row = await conn.fetchrow(
            f"""SELECT count(*) AS n,
                       coalesce(sum(('x' || substr(md5(r::text), 1, 15))::bit(60)::bigint), 0)::text AS sum
                FROM {schema}.{t} r""")
        out[t] = (row["n"], row["sum"])
    return out


async def _prepare_target(slug: str, target: str) -> None:
    """Roles and schema on the target as onboarding makes them, then every table emptied (the
    migrations' own rows come with the copy)."""
    schema, owner = tenant_role(slug), owner_role(slug)
    async with admin_transaction(target) as conn:
        await drop_schema_and_roles(conn, slug)  # a leftover of an interrupted, rolled-back attempt
        await create_roles(conn, slug, runtime_login=await clusters.runtime_login(target))
        await conn.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {owner}")
        await apply_tenant_migrations(conn, slug, discover(TENANT_MIGRATIONS))
        filled = [t for t in await _tables(conn, schema) if await conn.fetchval(f"SELECT EXISTS (SELECT FROM {schema}.{t})")]
        if filled:  # _migrations (the append-only tables, whose triggers refuse TRUNCATE, are empty here)
            await conn.execute("SELECT set_config('role', $1, true)", owner)
            await conn.execute(f"TRUNCATE {', '.join(f'{schema}.{t}' for t in filled)}")
            await conn.execute("SELECT set_config('role', 'none', true)")


async def _wait_synchronised(dst: asyncpg.Connection, sub: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        row = await dst.fetchrow(
            """SELECT count(*) AS n, count(*) FILTER (WHERE r.srsubstate = 'r') AS ready
               FROM pg_subscription s JOIN pg_subscription_rel r ON r.srsubid = s.oid WHERE s.subname = $1""", sub)
        if row["n"] and row["n"] == row["ready"]:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the initial copy did not finish within {timeout:.0f} s ({row['ready']}/{row['n']} tables)")
        await asyncio.sleep(0.1)


async def _give_back_source(src: asyncpg.Connection, slug: str) -> None:
    """The source's runtime privileges as declared again (after an aborted switch)."""
    schema, owner = tenant_role(slug), owner_role(slug)
    async with src.transaction():
        await src.execute("SELECT set_config('search_path', $1, true), set_config('role', $2, true)", schema, owner)
        await apply_runtime_grants(src, slug)


async def move_tenant(slug: str, target: str, *, publish: Publish | None = None, timeout: float = 120.0,
                      after_state: Callable[[str], Awaitable[None]] | None = None) -> MoveReport:
    """Move (or resume moving) tenant ``slug`` to cluster ``target``; see the module's contract.
    ``publish(slug)`` tells every process to forget the tenant's cached placement; ``after_state`` is
    called after each state is recorded (tests interrupt moves there)."""
    tenant_role(slug)
    async with admin_transaction() as conn:
        info = await conn.fetchrow("SELECT cluster FROM odr.tenants WHERE slug = $1", slug)
        if info is None:
            raise MoveError(f"tenant: no tenant {slug!r}")
        if not await conn.fetchval("SELECT 1 FROM odr.clusters WHERE name = $1", target):
            raise MoveError(f"to: no cluster named {target!r} (odr cluster list)")
    move = await _open_move(slug)
    resumed = move is not None
    if move is not None and move["target"] != target:
        raise MoveError(f"to: a move of {slug} to {move['target']} is open: finish it (--to {move['target']}) or --abort it")
    if move is None:
        if info["cluster"] == target:
            raise MoveError(f"to: {slug} is on cluster {target} already")
        async with admin_transaction() as conn:
            move_id = await conn.fetchval(
                "INSERT INTO odr.tenant_moves (tenant, source, target, state) VALUES ($1, $2, $3, 'copying') RETURNING id",
                slug, info["cluster"], target)
        move = {"id": move_id, "source": info["cluster"], "target": target, "state": "copying"}
        if after_state:
            await after_state("copying")
    source = move["source"]
    schema = tenant_role(slug)
    pub, sub = _names(slug)
    src_url, dst_url = await clusters.superuser_url(source), await clusters.superuser_url(target)
    src, dst = await _connect(src_url), await _connect(dst_url)
    copy_seconds = catch_up = pause_ms = 0.0
    feed_shift = 0
    checks: list[TableCheck] = []
    sequences: dict[str, int] = {}
    try:
        state = move["state"]
        if state == "copying":
            if await src.fetchval("SHOW wal_level") != "logical":
                raise MoveError(f"to: cluster {source} needs wal_level = logical to move a tenant off it (then restart it)")
            started = time.perf_counter()
            if not await dst.fetchval("SELECT 1 FROM pg_subscription WHERE subname = $1", sub):
                await _prepare_target(slug, target)
                if not await src.fetchval("SELECT 1 FROM pg_publication WHERE pubname = $1", pub):
                    await src.execute(f"CREATE PUBLICATION {pub} FOR TABLES IN SCHEMA {schema}")
                conninfo = src_url.replace("'", "''")
                await dst.execute(f"CREATE SUBSCRIPTION {sub} CONNECTION '{conninfo}' PUBLICATION {pub} WITH (copy_data = true)")
            await _wait_synchronised(dst, sub, timeout)
            copy_seconds = time.perf_counter() - started
            state = "switching"
            await _set_state(move["id"], state)
            if after_state:
                await after_state(state)
        if state == "switching":
            paused = time.perf_counter()
            async with admin_transaction() as conn:
                await conn.execute("UPDATE odr.tenants SET writes_paused_at = coalesce(writes_paused_at, now()) WHERE slug = $1", slug)
            clusters.forget_placement(slug)
            if publish:
                await publish(slug)
            tables = await _tables(src, schema)
            async with src.transaction():
                await src.execute(f"REVOKE INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} FROM {schema}")
            async with src.transaction():  # waits for every transaction that wrote to end
                await src.execute(f"LOCK TABLE {', '.join(f'{schema}.{t}' for t in tables)} IN SHARE MODE")
            caught = time.perf_counter()
            deadline = time.monotonic() + timeout
            while True:
                left, right = await table_checks(src, schema, tables), await table_checks(dst, schema, tables)
                if left == right:
                    break
                if time.monotonic() > deadline:
                    differing = [t for t in tables if left[t] != right.get(t)]
                    raise TimeoutError(f"the target did not catch up within {timeout:.0f} s: {', '.join(differing)}")
                await asyncio.sleep(0.05)
            catch_up = time.perf_counter() - caught
            checks = [TableCheck(table=t, rows=left[t][0], checksum=left[t][1], equal=left[t] == right[t]) for t in tables]
            for seq in await _sequences(src, schema):
                row = await src.fetchrow(f"SELECT last_value, is_called FROM {schema}.{seq}")
                await dst.execute("SELECT setval($1, $2, $3)", f"{schema}.{seq}", row["last_value"], row["is_called"])
                sequences[seq] = row["last_value"]
            async with dst.transaction():
                _, feed_shift = await advance_feed_clock(dst, schema)
            async with admin_transaction() as conn:
                await conn.execute("UPDATE odr.tenants SET cluster = $2, writes_paused_at = NULL WHERE slug = $1", slug, target)
                await conn.execute(
                    "UPDATE odr.tenant_moves SET state = 'switched', updated_at = now(), pause_ms = $2 WHERE id = $1",
                    move["id"], (time.perf_counter() - paused) * 1000)
            pause_ms = (time.perf_counter() - paused) * 1000
            clusters.forget_placement(slug)
            if publish:
                await publish(slug)
            state = "switched"
            if after_state:
                await after_state(state)
        if state == "switched":
            if await dst.fetchval("SELECT 1 FROM pg_subscription WHERE subname = $1", sub):
                await dst.execute(f"DROP SUBSCRIPTION {sub}")
            if await src.fetchval("SELECT 1 FROM pg_publication WHERE pubname = $1", pub):
                await src.execute(f"DROP PUBLICATION {pub}")
            # the kept source: nothing reads or writes it by mistake (a stale placement gets WritesPaused)
            await src.execute(f"REVOKE USAGE ON SCHEMA {schema} FROM {schema}")
            rows = sum(c.rows for c in checks)
            report = MoveReport(tenant=slug, source=source, target=target, state="done", tables=checks, rows=rows,
                                sequences=sequences, feed_shift=feed_shift, copy_seconds=round(copy_seconds, 3),
                                catch_up_seconds=round(catch_up, 3), write_pause_ms=round(pause_ms, 1), resumed=resumed)
            await _set_state(move["id"], "done", report=msgspec.json.encode(report).decode())
            log.info("tenant %s moved from %s to %s (write pause %.0f ms)", slug, source, target, pause_ms)
            return report
        raise RuntimeError(f"move {move['id']} in unexpected state {state}")
    finally:
        await src.close()
        await dst.close()


async def abort_move(slug: str, *, publish: Publish | None = None) -> MoveReport:
    """Roll back tenant ``slug``'s open move that has not switched (see the module's contract)."""
    move = await _open_move(slug)
    if move is None:
        raise MoveError(f"tenant: {slug} has no open move")
    if move["state"] == "switched":
        raise MoveError(f"tenant: the move of {slug} has switched already; finish it (odr tenant move {slug} --to {move['target']})")
    source, target = move["source"], move["target"]
    pub, sub = _names(slug)
    src, dst = await _connect(await clusters.superuser_url(source)), await _connect(await clusters.superuser_url(target))
    try:
        if await dst.fetchval("SELECT 1 FROM pg_subscription WHERE subname = $1", sub):
            await dst.execute(f"DROP SUBSCRIPTION {sub}")
        if await src.fetchval("SELECT 1 FROM pg_publication WHERE pubname = $1", pub):
            await src.execute(f"DROP PUBLICATION {pub}")
        await _give_back_source(src, slug)
        async with admin_transaction(target) as conn:
            await drop_schema_and_roles(conn, slug)
        async with admin_transaction() as conn:
            await conn.execute("UPDATE odr.tenants SET writes_paused_at = NULL WHERE slug = $1", slug)
            await conn.execute("UPDATE odr.tenant_moves SET state = 'rolled_back', updated_at = now() WHERE id = $1", move["id"])
    finally:
        await src.close()
        await dst.close()
    clusters.forget_placement(slug)
    if publish:
        await publish(slug)
    return MoveReport(tenant=slug, source=source, target=target, state="rolled_back")


async def drop_source(slug: str) -> dict:
    """Drop the schema and roles a finished move left on its source cluster (the operator's decision)."""
    async with admin_transaction() as conn:
        move = await conn.fetchrow(
            "SELECT id, source, target FROM odr.tenant_moves WHERE tenant = $1 AND state = 'done' ORDER BY id DESC LIMIT 1", slug)
        current = await conn.fetchval("SELECT cluster FROM odr.tenants WHERE slug = $1", slug)
    if move is None:
        raise MoveError(f"tenant: {slug} has no finished move")
    if move["source"] == current:
        raise MoveError(f"tenant: {slug} lives on {current} again; its schema there is not a source to drop")
    async with admin_transaction(move["source"]) as conn:
        existed = bool(await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", tenant_role(slug)))
        await drop_schema_and_roles(conn, slug)
    return {"tenant": slug, "cluster": move["source"], "dropped": existed}
