"""The two PostgreSQL logins of the platform and what each may become.

Contract:
- The **runtime login** (``ODR_APP_ROLE``, ``odr_app`` in the embedded default) is the one every web and
  timer process pools. It is neither superuser nor CREATEROLE and is a member of each tenant's
  *runtime* role ``t_<slug>`` only (``WITH INHERIT FALSE, SET TRUE``): it can never ``SET ROLE`` to a
  tenant's *owner* role, so no request can drop, truncate, alter or re-grant a tenant's tables.
  :func:`check_runtime_login` refuses to start a pool on a login that could.
- The **administration login** (``ODR_ADMIN_ROLE``, ``odr_admin``) has CREATEROLE and CREATE on the
  database, inherits the runtime login's rights on the shared schema, and is a member of every tenant's
  owner and runtime roles. Only onboarding, ``odr migrate`` and offboarding use it
  (:mod:`core.db.admin`), each in its own short transaction.
- From a superuser URL (the embedded server, a throw-away test server) both logins are made here,
  idempotently, and earlier deployments are brought to this shape (the runtime login loses
  CREATEROLE; the administration login is given the tenant roles the runtime login created). With a
  non-superuser ``ODR_DATABASE_URL`` both logins are prepared by the database administrator
  (``deploy/README.md``) and the administration login comes from ``ODR_ADMIN_DATABASE_URL``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import msgspec

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
OWNER_PREFIX = "owner_"


class Logins(msgspec.Struct, frozen=True, kw_only=True):
    runtime: str
    """URL of the runtime login (pooled by every process)."""
    admin: str | None
    """URL of the administration login; None when it was not configured (onboarding and migrations
    then refuse, naming ``ODR_ADMIN_DATABASE_URL``)."""


def with_user(url: str, user: str) -> str:
    """``url`` logging in as ``user`` (no password: the embedded server trusts its local socket)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    hostpart = netloc.rsplit("@", 1)[-1] if "@" in netloc else netloc
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "user"]
    return urlunsplit((parts.scheme, f"{user}@{hostpart}", parts.path, urlencode(query), parts.fragment))


def grant_sql(role: str, member: str, *, inherit: bool, admin: bool = False, modern: bool) -> str:
    """``GRANT role TO member`` with SET allowed and INHERIT as asked (PostgreSQL 16+; older servers
    have no per-grant options: there the member's own INHERIT attribute decides)."""
    options = [f"INHERIT {'TRUE' if inherit else 'FALSE'}", "SET TRUE"] if modern else []
    if admin:
        options.insert(0, "ADMIN OPTION")
    return f"GRANT {role} TO {member}" + (f" WITH {', '.join(options)}" if options else "")


async def server_is_modern(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT current_setting('server_version_num')::int >= 160000"))


async def prepare_logins(url: str, *, app_role: str, admin_role: str, admin_url: str | None,
                         statement_cache: bool = True) -> Logins:
    """Return the URLs the platform logs in with (see the module's contract). ``statement_cache``
    false (``ODR_STATEMENT_CACHE``): no named prepared statements, as behind pgbouncer in transaction
    mode older than 1.21, where two processes starting at once would otherwise collide on the same
    statement name on one server connection."""
    conn = await asyncpg.connect(url, statement_cache_size=100 if statement_cache else 0)
    try:
        row = await conn.fetchrow("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not row["rolsuper"]:
            return Logins(runtime=url, admin=admin_url)
        for setting, name in (("ODR_APP_ROLE", app_role), ("ODR_ADMIN_ROLE", admin_role)):
            if not IDENTIFIER.match(name):
                raise SystemExit(f"{setting} must be a plain lower-case identifier")
        if app_role == admin_role:
            raise SystemExit("ODR_APP_ROLE and ODR_ADMIN_ROLE must differ")
        modern = await server_is_modern(conn)
        # Several web workers start at once: serialise (concurrent GRANTs on one catalog row fail with
        # "tuple concurrently updated"), and change only what is missing.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('odr-prepare-login'))")
            await conn.execute(
                f"""DO $$BEGIN
                    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{app_role}') THEN
                        CREATE ROLE {app_role} LOGIN NOINHERIT;
                    ELSIF (SELECT rolcreaterole FROM pg_roles WHERE rolname = '{app_role}') THEN
                        ALTER ROLE {app_role} NOCREATEROLE;
                    END IF;
                    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{admin_role}') THEN
                        CREATE ROLE {admin_role} LOGIN CREATEROLE INHERIT;
                    END IF;
                    IF NOT has_database_privilege('{app_role}', current_database(), 'CREATE') THEN
                        EXECUTE format('GRANT CREATE ON DATABASE %I TO {app_role}', current_database());
                    END IF;
                    IF NOT has_database_privilege('{admin_role}', current_database(), 'CREATE') THEN
                        EXECUTE format('GRANT CREATE ON DATABASE %I TO {admin_role}', current_database());
                    END IF;
                END$$;"""
            )
            if not await conn.fetchval("SELECT pg_has_role($1, $2, 'USAGE')", admin_role, app_role):
                await conn.execute(grant_sql(app_role, admin_role, inherit=True, modern=modern))
            # Tenant runtime roles made by the runtime login of earlier versions (it had CREATEROLE then):
            # the administration login takes them over, so it can split their ownership (tenant migration 0007).
            inherited = await conn.fetch(
                """SELECT r.rolname FROM pg_auth_members m
                   JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
                   WHERE u.rolname = $1 AND r.rolname LIKE 't\\_%'
                     AND NOT EXISTS (SELECT FROM pg_auth_members a JOIN pg_roles au ON au.oid = a.member
                                     WHERE a.roleid = r.oid AND au.rolname = $2 AND a.admin_option)""",
                app_role, admin_role,
            )
            for r in inherited:
                await conn.execute(grant_sql(r["rolname"], admin_role, inherit=True, admin=True, modern=modern))
        return Logins(runtime=with_user(url, app_role), admin=admin_url or with_user(url, admin_role))
    finally:
        await conn.close()


async def check_runtime_login(conn: asyncpg.Connection) -> str:
    """Refuse (``SystemExit``) a runtime login that could reach a tenant's owner role or make roles;
    return its name."""
    row = await conn.fetchrow(
        """SELECT current_user AS name, rolsuper, rolcreaterole,
                  (SELECT array_agg(r.rolname ORDER BY r.rolname) FROM pg_roles r
                    WHERE starts_with(r.rolname, $1) AND pg_has_role(current_user, r.oid, 'MEMBER')) AS owners
           FROM pg_roles WHERE rolname = current_user""",
        OWNER_PREFIX,
    )
    problems = []
    if row["rolsuper"]:
        problems.append("is a superuser")
    if row["rolcreaterole"]:
        problems.append("has CREATEROLE")
    if row["owners"]:
        problems.append(f"is a member of tenant owner roles ({', '.join(row['owners'][:3])}…)")
    if problems:
        raise SystemExit(
            f"the runtime login {row['name']} {' and '.join(problems)}: give the web and timer processes a login "
            "without these (ODR_DATABASE_URL) and the administration login in ODR_ADMIN_DATABASE_URL (deploy/README.md)"
        )
    return row["name"]
