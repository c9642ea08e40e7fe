"""Defence in depth in the database (issue 17): the role requests run as owns nothing.

Measured at the database, as the runtime login after ``SET ROLE`` to each tenant's runtime role:
for every relation of every tenant schema and each operation, what PostgreSQL allows equals the
declared table (``tenants/privileges.py``); DDL, TRUNCATE, GRANT and trigger control are refused
everywhere; no tenant reaches another's schema; the runtime login cannot become an owner. Migration
0007 (the owner / runtime split) is reverted and re-applied on a copy of a demo province seeded with
its demo history, keeping every row.
"""

from __future__ import annotations

import itertools

import asyncpg
import msgspec
import pytest

from core.db import clusters
from core.db.admin import admin_transaction, owner_role, owner_transaction
from core.db.engine import platform_transaction, tenant_role, tenant_transaction
from core.db.migrations import discover
from tenants.migrate import TENANT_MIGRATIONS, migrate_tenant, revert_tenant_migration
from tenants.privileges import APPEND_ONLY, RUNTIME_PRIVILEGES, check_declaration
from tenants.roles import runtime_grants_match, schema_owner
from tests.report_helpers import seeded_copy

OPERATIONS = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "DROP", "ALTER", "GRANT", "DISABLE TRIGGER")
DML = {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"}
ACL_REFUSALS = ("permission denied for", "must be owner of")
"""How PostgreSQL words a refusal by privileges or ownership (a trigger may refuse with the same code)."""


class Probe(msgspec.Struct, frozen=True):
    schema: str
    relation: str
    operation: str
    allowed: bool


def statement(relation: str, kind: str, operation: str, first_column: str) -> str:
    what = "VIEW" if kind == "v" else "TABLE"
    return {
        "SELECT": f"SELECT * FROM {relation} LIMIT 0",
        "INSERT": f"INSERT INTO {relation} DEFAULT VALUES",
        "UPDATE": f"UPDATE {relation} SET {first_column} = {first_column} WHERE false",
        "DELETE": f"DELETE FROM {relation} WHERE false",
        "TRUNCATE": f"TRUNCATE {relation}",
        "DROP": f"DROP {what} {relation}",
        "ALTER": f"ALTER {what} {relation} RENAME TO {relation.split('.')[-1]}_probe",
        "GRANT": f"GRANT SELECT ON {relation} TO PUBLIC",
        "DISABLE TRIGGER": f"ALTER TABLE {relation} DISABLE TRIGGER ALL",
    }[operation]


async def probe_tenant(conn: asyncpg.Connection, slug: str) -> list[Probe]:
    """Try every operation on every relation of ``slug``'s schema as its runtime role, each in a savepoint
    of the caller's transaction (rolled back). Where an attempt fails for another reason than privileges
    (a NOT NULL column, a view that takes no INSERT), the server's own check decides: ``has_table_privilege``
    for DML, ownership for the rest."""
    schema = tenant_role(slug)
    await conn.execute("SELECT set_config('role', $1, true), set_config('search_path', $1, true)", schema)
    relations = await conn.fetch(
        """SELECT c.relname, c.relkind, c.relowner::regrole::text AS owner,
                  (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                     AND NOT a.attisdropped ORDER BY a.attnum LIMIT 1) AS first_column
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY 1""", schema)
    found = []
    for rel in relations:
        qualified = f"{schema}.{rel['relname']}"
        for operation in OPERATIONS:
            sql = statement(qualified, rel["relkind"], operation, rel["first_column"])
            await conn.execute("SAVEPOINT probe")
            public_before = await conn.fetchval("SELECT has_table_privilege('public', $1, 'SELECT')", qualified)
            try:
                await conn.execute(sql)
                allowed = True
                if operation == "GRANT":  # a grant without grant option only warns: did it change anything?
                    allowed = not public_before and await conn.fetchval(
                        "SELECT has_table_privilege('public', $1, 'SELECT')", qualified)
            except asyncpg.PostgresError as error:
                if isinstance(error, asyncpg.InsufficientPrivilegeError) and str(error).startswith(ACL_REFUSALS):
                    allowed = False
                else:  # e.g. a NOT NULL column, a view taking no INSERT, the append-only trigger's own refusal
                    await conn.execute("ROLLBACK TO SAVEPOINT probe")
                    if operation in DML:
                        allowed = await conn.fetchval("SELECT has_table_privilege($1, $2)", qualified, operation)
                    else:
                        allowed = await conn.fetchval("SELECT pg_has_role(current_user, $1, 'USAGE')", rel["owner"])
            await conn.execute("ROLLBACK TO SAVEPOINT probe")
            found.append(Probe(schema, rel["relname"], operation, bool(allowed)))
    await conn.execute("SELECT set_config('role', 'none', true)")
    return found


def expected(probe: Probe) -> bool:
    return probe.operation in RUNTIME_PRIVILEGES.get(probe.relation, frozenset())


async def registered_slugs() -> list[str]:
    return list(await placements())


async def placements() -> dict[str, str]:
    """Every registered tenant and its cluster (tenants of other test modules may be on a second one)."""
    async with platform_transaction() as conn:
        return {r["slug"]: r["cluster"] for r in await conn.fetch("SELECT slug, cluster FROM odr.tenants ORDER BY slug")}


async def runtime_probe(slug: str) -> list[Probe]:
    """The matrix of ``slug`` on a pooled connection of the runtime login of its cluster, rolled back."""
    pool = await clusters.cluster_pool((await placements())[slug])
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            return await probe_tenant(conn, slug)
        finally:
            await tx.rollback()


async def test_the_declared_table_keeps_its_own_rules():
    assert check_declaration() == []
    widened = dict(RUNTIME_PRIVILEGES, complaint_events=frozenset({"SELECT", "INSERT", "DELETE"}),
                   timers=frozenset({"SELECT", "TRUNCATE"}))
    assert sorted(check_declaration(widened)) == [
        "complaint_events: append-only, but UPDATE or DELETE declared",
        "timers: TRUNCATE may not be granted to the runtime role",
    ]


async def test_what_the_runtime_role_may_do_equals_the_declared_table(demo):
    slugs = await registered_slugs()
    assert {"shanghai", "jiangsu", "fujian"} <= set(slugs)
    probes: list[Probe] = []
    for slug in slugs:
        probes += await runtime_probe(slug)
    wrong = [p for p in probes if p.allowed != expected(p)]
    assert wrong == []
    relations = {p.relation for p in probes}
    assert relations == set(RUNTIME_PRIVILEGES)  # every relation declared, every declaration real
    refused = [p for p in probes if not p.allowed]
    assert not any(p.allowed for p in probes if p.operation in {"TRUNCATE", "DROP", "ALTER", "GRANT", "DISABLE TRIGGER"})
    assert not any(p.allowed for p in probes if p.relation in APPEND_ONLY and p.operation in {"UPDATE", "DELETE"})
    print(f"\nprivilege matrix: {len(slugs)} tenants x {len(relations)} relations x {len(OPERATIONS)} operations = "
          f"{len(probes)} probes as the runtime role, {len(probes) - len(refused)} allowed and {len(refused)} refused, "
          "all as declared")


async def test_the_matrix_fails_when_a_grant_is_widened(demo):
    """The check is not blind: an extra grant (made here by the owner, in a transaction that is rolled
    back) shows up as a difference."""
    async with admin_transaction() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(f"SET LOCAL ROLE {owner_role('fujian')}")
            assert await runtime_grants_match(conn, "fujian")
            await conn.execute("GRANT DELETE, TRUNCATE ON t_fujian.complaint_events TO t_fujian")
            await conn.execute("RESET ROLE")
            assert not await runtime_grants_match(conn, "fujian")  # `odr migrate` would set them back
            probes = await probe_tenant(conn, "fujian")
        finally:
            await tx.rollback()
    wrong = sorted((p.relation, p.operation) for p in probes if p.allowed != expected(p))
    assert wrong == [("complaint_events", "DELETE"), ("complaint_events", "TRUNCATE")]


async def test_no_tenant_reaches_another_tenants_schema(demo):
    where = await placements()
    slugs = list(where)
    refused = 0
    for a, b in itertools.permutations(slugs, 2):
        pool = await clusters.cluster_pool(where[a])
        async with pool.acquire() as conn:
            for sql in (f"SELECT 1 FROM t_{b}.complaints LIMIT 0",
                        f"INSERT INTO t_{b}.notifications (recipient, kind) VALUES ('x', 'x')"):
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL ROLE t_{a}")
                    if where[a] == where[b]:
                        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for schema"):
                            await conn.execute(sql)
                    else:  # another cluster: the schema is not even there
                        with pytest.raises(asyncpg.UndefinedTableError, match="does not exist"):
                            await conn.execute(sql)
                refused += 1
    assert refused == 2 * len(slugs) * (len(slugs) - 1)
    print(f"\ncross-tenant: {refused} reads and writes over {len(slugs) * (len(slugs) - 1)} ordered pairs, all refused")


async def test_the_runtime_login_can_never_become_an_owner(demo):
    for slug, cluster in (await placements()).items():  # on each tenant's own cluster
        pool = await clusters.cluster_pool(cluster)
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT current_user AS u, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
            assert not row["rolsuper"] and not row["rolcreaterole"]
            owner = owner_role(slug)
            for sql in (f"SET LOCAL ROLE {owner}", f"GRANT {owner} TO {row['u']}",
                        f"DROP TABLE t_{slug}.complaint_events", f"TRUNCATE t_{slug}.complaint_events",
                        f"ALTER TABLE t_{slug}.complaint_events DISABLE TRIGGER ALL"):
                async with conn.transaction():
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await conn.execute(sql)
            # as the runtime role, which owns nothing either
            async with conn.transaction():
                await conn.execute(f"SET LOCAL ROLE t_{slug}")
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="must be owner"):
                    await conn.execute(f"DROP TABLE t_{slug}.complaint_events CASCADE")
    async with tenant_transaction("shanghai") as conn:
        assert await conn.fetchval("SELECT current_user") == "t_shanghai"
        assert await schema_owner(conn, "shanghai") == "owner_shanghai"


async def relation_counts(slug: str) -> dict[str, int]:
    async with owner_transaction(slug) as conn:
        names = [r["relname"] for r in await conn.fetch(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND relkind = 'r' ORDER BY 1", tenant_role(slug))]
        return {name: await conn.fetchval(f"SELECT count(*) FROM {name}") for name in names}


async def test_migration_0007_reverts_and_reapplies_on_a_seeded_copy(demo):
    slug = "rolecopy"
    async with seeded_copy(demo, "jiangsu", slug, accounts=[]) as summary:
        before = await relation_counts(slug)
        assert before["complaints"] > 0 and before["complaint_events"] > before["complaints"]
        m0007 = next(m for m in discover(TENANT_MIGRATIONS) if m.id == "0007")

        # Backwards: the earlier layout (the runtime role owns everything, no owner role).
        async with admin_transaction() as conn:
            await revert_tenant_migration(conn, slug, m0007)
            assert await schema_owner(conn, slug) == tenant_role(slug)
            assert not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", owner_role(slug))
            # The schema's ownership recorded after its functions' (as after any change of its owner): the
            # order in which REASSIGN OWNED alone refused ("permission denied for schema", 2 of 8 runs).
            await conn.execute(f"ALTER SCHEMA {tenant_role(slug)} OWNER TO CURRENT_USER;"
                               f" ALTER SCHEMA {tenant_role(slug)} OWNER TO {tenant_role(slug)}")
        async with tenant_transaction(slug) as conn:  # the old exposure, measured
            assert await conn.fetchval("SELECT has_table_privilege('complaint_facts', 'TRUNCATE')")

        # Forwards again, through `odr migrate`'s own path.
        result = await migrate_tenant(slug)
        assert result.ok and result.applied == ["0007"], result
        async with admin_transaction() as conn:
            assert await schema_owner(conn, slug) == owner_role(slug)
        assert await relation_counts(slug) == before
        probes = await runtime_probe(slug)
        assert [p for p in probes if p.allowed != expected(p)] == []
        print(f"\nmigration 0007 on a seeded copy ({summary.complaints} complaints, "
              f"{sum(before.values())} rows in {len(before)} tables): reverted and re-applied, every row kept, "
              f"{len(probes)} probes as declared")
