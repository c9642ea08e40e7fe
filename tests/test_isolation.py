"""Isolation is enforced by PostgreSQL: roles and transaction-local settings, through one pool."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from core.db.engine import ENGINE, platform_transaction, tenant_transaction
from tenants.onboarding import offboard, onboard
from tests.helpers import small_manifest


async def test_tenant_role_is_denied_on_another_tenants_tables(demo):
    async with tenant_transaction("shanghai") as conn:
        assert await conn.fetchval("SELECT count(*) FROM jurisdictions") == 6
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.fetch("SELECT * FROM t_jiangsu.jurisdictions")


async def test_application_role_reaches_no_tenant_data_without_switching(demo):
    async with platform_transaction() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.fetch("SELECT * FROM t_shanghai.jurisdictions")


async def test_switching_to_a_role_the_application_does_not_hold_is_refused(demo):
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with platform_transaction() as conn:
            await conn.execute("SELECT set_config('role', 'postgres', true)")


async def test_unknown_tenant_slug_is_refused_before_sql():
    with pytest.raises(ValueError, match="invalid tenant slug"):
        async with tenant_transaction("x; DROP SCHEMA odr"):
            pass


class Injected(Exception):
    pass


async def test_interleaved_requests_with_errors_leave_rows_in_their_schema_and_nothing_leaks(platform):
    slugs = [f"iso{i:02d}" for i in range(20)]
    for slug in slugs:
        await onboard(small_manifest(slug), host=platform.host)
    rng = random.Random(12315)
    committed = {slug: 0 for slug in slugs}
    app_user = await ENGINE._run_in_pool("SELECT current_user AS u")
    app_user = app_user[0]["u"]
    leaks: list[str] = []

    async def request(i: int) -> None:
        slug = rng.choice(slugs)
        kind = rng.random()
        try:
            async with tenant_transaction(slug) as conn:
                await conn.execute("INSERT INTO notifications (recipient, kind) VALUES ($1, $2)", slug, f"r{i}")
                if kind < 0.10:
                    raise Injected()  # application error after a write: rolled back
                if kind < 0.15:
                    await conn.execute("SELECT * FROM no_such_table")  # database error: rolled back
                await asyncio.sleep(0)
            committed[slug] += 1
        except (Injected, asyncpg.UndefinedTableError):
            pass
        # The next use of a pooled connection outside any tenant transaction sees nothing of the tenant.
        if i % 10 == 0:
            row = (await ENGINE._run_in_pool("SELECT current_user AS u, current_setting('search_path') AS p"))[0]
            if row["u"] != app_user or "t_" in row["p"]:
                leaks.append(f"{row['u']} {row['p']}")

    await asyncio.gather(*(request(i) for i in range(2000)))
    assert leaks == []
    total = 0
    for slug in slugs:
        async with tenant_transaction(slug) as conn:
            rows = await conn.fetch("SELECT recipient FROM notifications WHERE kind LIKE 'r%'")
        assert {r["recipient"] for r in rows} <= {slug}
        assert len(rows) == committed[slug]
        total += len(rows)
    assert 1500 < total < 2000  # the injected failures really rolled back
    # Every pooled connection is back to the application role and default search_path.
    conns = [await ENGINE.pool.acquire() for _ in range(ENGINE.pool.get_size())]
    try:
        for c in conns:
            row = await c.fetchrow("SELECT current_user AS u, current_setting('search_path') AS p")
            assert row["u"] == app_user and "t_" not in row["p"]
    finally:
        for c in conns:
            await ENGINE.pool.release(c)
    for slug in slugs:
        await offboard(slug)


async def test_several_workers_preparing_the_login_role_at_once(pg_url):
    """Web workers start together: creating and granting the login role must not race
    ("tuple concurrently updated" on the database's ACL)."""
    from core.db.logins import prepare_logins

    logins = await asyncio.gather(*(prepare_logins(pg_url, app_role="odr_app_race", admin_role="odr_admin_race",
                                                   admin_url=None) for _ in range(6)))
    assert len(set(logins)) == 1
    assert "odr_app_race@" in logins[0].runtime and "odr_admin_race@" in logins[0].admin
    conn = await asyncpg.connect(pg_url)
    try:
        for role in ("odr_app_race", "odr_admin_race"):
            assert await conn.fetchval("SELECT has_database_privilege($1, current_database(), 'CREATE')", role)
        assert not await conn.fetchval("SELECT rolcreaterole FROM pg_roles WHERE rolname = 'odr_app_race'")
        assert await conn.fetchval("SELECT rolcreaterole FROM pg_roles WHERE rolname = 'odr_admin_race'")
        await conn.execute(
            "DO $$BEGIN EXECUTE format('REVOKE CREATE ON DATABASE %I FROM odr_app_race, odr_admin_race',"
            " current_database()); END$$; DROP ROLE odr_admin_race; DROP ROLE odr_app_race"
        )
    finally:
        await conn.close()


async def test_a_commit_that_fails_gives_its_connection_back_to_the_pool(platform, pg_url):
    """A COMMIT can fail (a deferred trigger or constraint, a serialization failure, a connection lost
    at that moment). Each such transaction must still give its pooled connection back: more of them
    than the pool holds, and the pool serves the next transaction at once (before the fix, piccolo's
    transaction kept the connection, and the process hung once the pool was used up)."""
    await onboard(small_manifest("isocommit"), host=platform.host)
    conn = await asyncpg.connect(pg_url)  # the superuser installs the failing trigger
    try:
        await conn.execute("""
            CREATE FUNCTION t_isocommit.fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $f$
            BEGIN
                PERFORM set_config('search_path', 'public', false);  -- a session setting, rolled back with it
                RAISE EXCEPTION 'injected failure at commit' USING ERRCODE = 'serialization_failure';
            END $f$;
            CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT ON t_isocommit.notifications
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.kind = 'fail-at-commit')
                EXECUTE FUNCTION t_isocommit.fail_at_commit();""")
    finally:
        await conn.close()
    try:
        for _ in range(ENGINE.pool.get_max_size() + 2):
            with pytest.raises(asyncpg.SerializationError, match="injected failure at commit"):
                async with asyncio.timeout(10):
                    async with tenant_transaction("isocommit") as tx:
                        await tx.execute("INSERT INTO notifications (recipient, kind) VALUES ('x', 'fail-at-commit')")
            assert ENGINE.current_transaction.get() is None
        async with asyncio.timeout(10):
            async with tenant_transaction("isocommit") as tx:
                await tx.execute("INSERT INTO notifications (recipient, kind) VALUES ('x', 'kept')")
                assert await tx.fetchval("SELECT count(*) FROM notifications WHERE kind = 'fail-at-commit'") == 0
            row = (await ENGINE._run_in_pool("SELECT current_user AS u, current_setting('search_path') AS p"))[0]
            assert "t_" not in row["p"] and row["p"] != "public"
    finally:
        await offboard("isocommit")
