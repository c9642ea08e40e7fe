"""A tenant's two database roles.

- **owner** ``owner_<slug>`` (NOLOGIN) owns the schema ``t_<slug>`` and every object in it. Only the
  administration login is a member (:mod:`core.db.logins`); onboarding and ``odr migrate`` act as it.
- **runtime** ``t_<slug>`` (NOLOGIN) is the role ``tenant_transaction`` sets. It owns nothing and holds
  exactly the privileges of :data:`tenants.privileges.RUNTIME_PRIVILEGES` (USAGE on the schema, DML per
  relation, USAGE on the identity sequences); the runtime login is a member ``WITH INHERIT FALSE``.

Every function here runs inside the caller's administration-login transaction.
"""

from __future__ import annotations

import asyncpg

from core.db.admin import owner_role
from core.db.engine import tenant_role
from core.db.logins import grant_sql, server_is_modern
from tenants.privileges import RUNTIME_PRIVILEGES, check_declaration

DEFAULT_TABLE_PRIVILEGES = "SELECT, INSERT"
"""What the runtime role gets on a table its owner creates outside a migration run (default
privileges); a migration run then sets the declared privileges exactly."""


class UndeclaredRelation(RuntimeError):
    """A tenant relation has no entry in :data:`tenants.privileges.RUNTIME_PRIVILEGES`, or the table
    breaks its own rules."""


async def create_roles(conn: asyncpg.Connection, slug: str, *, runtime_login: str) -> None:
    """Create the owner and runtime roles of a new tenant; the administration login (current user)
    becomes a member of both, the runtime login of the runtime role only."""
    owner, runtime = owner_role(slug), tenant_role(slug)
    modern = await server_is_modern(conn)
    await conn.execute(f"CREATE ROLE {owner} NOLOGIN")
    await conn.execute(f"CREATE ROLE {runtime} NOLOGIN")
    for role in (owner, runtime):
        await conn.execute(grant_sql(role, "CURRENT_USER", inherit=True, modern=modern))
    await conn.execute(grant_sql(runtime, runtime_login, inherit=False, modern=modern))


async def schema_owner(conn: asyncpg.Connection, slug: str) -> str | None:
    return await conn.fetchval(
        "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", tenant_role(slug))


TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


SCHEMA_RELATIONS = """
    SELECT c.oid, c.relname, c.relkind::text AS relkind
    FROM pg_namespace n
    JOIN pg_depend d ON d.refclassid = 'pg_namespace'::regclass AND d.refobjid = n.oid
                    AND d.classid = 'pg_class'::regclass AND d.objsubid = 0
    JOIN pg_class c ON c.oid = d.objid AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    WHERE n.nspname = $1"""
"""The tables, views and sequences of schema ``$1``, found through the namespace's dependency entries
(pg_depend is indexed by the referenced object; pg_class has no index by schema, and a deployment of a
thousand tenants has a hundred thousand of its rows)."""


async def runtime_grants_match(conn: asyncpg.Connection, slug: str) -> bool:
    """Whether the runtime role's privileges already equal the declared ones (one catalog query):
    every relation declared and holding exactly its privileges, USAGE on the schema and on every
    sequence."""
    schema = runtime = tenant_role(slug)
    checks = ", ".join(f"CASE WHEN has_table_privilege($2, r.oid, '{p}') THEN '{p}' END" for p in TABLE_PRIVILEGES)
    rows = await conn.fetch(
        f"""SELECT r.relname, r.relkind, array_remove(ARRAY[{checks}], NULL) AS privileges,
                   r.relkind <> 'S' OR has_sequence_privilege($2, r.oid, 'USAGE') AS sequence_ok,
                   has_schema_privilege($2, $1, 'USAGE') AS schema_ok
            FROM ({SCHEMA_RELATIONS}) r""", schema, runtime)
    for row in rows:
        if not row["schema_ok"]:
            return False
        if row["relkind"] == "S":
            if not row["sequence_ok"]:
                return False
        elif set(row["privileges"]) != RUNTIME_PRIVILEGES.get(row["relname"]):
            return False
    return bool(rows)


async def apply_runtime_grants(conn: asyncpg.Connection, slug: str) -> int:
    """Make the runtime role's privileges in the tenant's schema exactly the declared ones; return the
    number of relations. Runs as the owner role (set by the caller)."""
    schema, runtime, owner = tenant_role(slug), tenant_role(slug), owner_role(slug)
    problems = check_declaration()
    if problems:
        raise UndeclaredRelation("tenants/privileges.py: " + "; ".join(problems))
    found = await conn.fetch(SCHEMA_RELATIONS + " ORDER BY c.relname", schema)
    relations = [r["relname"] for r in found if r["relkind"] != "S"]
    sequences = [r["relname"] for r in found if r["relkind"] == "S"]
    missing = [name for name in relations if name not in RUNTIME_PRIVILEGES]
    if missing:
        raise UndeclaredRelation(
            f"{', '.join(missing)} in {schema}: declare the runtime role's privileges in tenants/privileges.py")
    # One statement per relation (the ALL TABLES IN SCHEMA forms scan the whole of pg_class).
    statements = [f"GRANT USAGE ON SCHEMA {schema} TO {runtime}"]
    for name in relations:
        statements.append(f"REVOKE ALL ON {schema}.{name} FROM {runtime}, PUBLIC")
        privileges = RUNTIME_PRIVILEGES[name]
        if privileges:
            statements.append(f"GRANT {', '.join(sorted(privileges))} ON {schema}.{name} TO {runtime}")
    for name in sequences:
        statements.append(f"REVOKE ALL ON SEQUENCE {schema}.{name} FROM {runtime}, PUBLIC")
        statements.append(f"GRANT USAGE ON SEQUENCE {schema}.{name} TO {runtime}")
    statements += [
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT {DEFAULT_TABLE_PRIVILEGES} ON TABLES TO {runtime}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT USAGE ON SEQUENCES TO {runtime}",
    ]
    await conn.execute(";\n".join(statements))
    return len(relations)


async def split_ownership(conn: asyncpg.Connection, slug: str) -> bool:
    """Bring a tenant of the earlier layout (its runtime role owning schema and objects) to the owner /
    runtime split: create the owner role and hand it everything the runtime role owns. Returns whether
    anything changed. Runs as the administration login (role none)."""
    owner, runtime = owner_role(slug), tenant_role(slug)
    modern = await server_is_modern(conn)
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", owner):
        await conn.execute(f"CREATE ROLE {owner} NOLOGIN")
        await conn.execute(grant_sql(owner, "CURRENT_USER", inherit=True, modern=modern))
    if not await conn.fetchval("SELECT pg_has_role(current_user, $1, 'USAGE')", runtime):
        await conn.execute(grant_sql(runtime, "CURRENT_USER", inherit=True, modern=modern))
    if await schema_owner(conn, slug) == owner:
        return False
    # The schema first: REASSIGN OWNED visits objects in pg_shdepend's physical order, and handing over
    # a function or type checks that the new owner may CREATE in its schema, which it may only once it
    # owns the schema ("permission denied for schema t_…" whenever the schema's turn came later).
    await conn.execute(f"ALTER SCHEMA {runtime} OWNER TO {owner}")
    await conn.execute(f"REASSIGN OWNED BY {runtime} TO {owner}")
    return True


async def merge_ownership(conn: asyncpg.Connection, slug: str) -> None:
    """The reverse of :func:`split_ownership`: the runtime role owns everything again and the owner role
    is dropped. Runs as the administration login (role none)."""
    owner, runtime, schema = owner_role(slug), tenant_role(slug), tenant_role(slug)
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", owner):
        return
    await conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} REVOKE ALL ON TABLES FROM {runtime}")
    await conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} REVOKE ALL ON SEQUENCES FROM {runtime}")
    await conn.execute(f"ALTER SCHEMA {schema} OWNER TO {runtime}")  # first: see split_ownership
    await conn.execute(f"REASSIGN OWNED BY {owner} TO {runtime}")
    await conn.execute(f"DROP OWNED BY {owner}")
    await conn.execute(f"DROP ROLE {owner}")
