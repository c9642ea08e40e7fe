"""The cluster registry's operations (``odr cluster add / list``, the operator's page).

Contract: :func:`add_cluster` registers a named PostgreSQL cluster after checking that its logins can
be prepared and its runtime login is a safe one (the same rules as the primary's,
:mod:`core.db.logins`); adding a name again with the same URLs changes nothing, with other URLs is
refused (a cluster holding tenants is moved with ``odr tenant move``, never re-pointed).
:func:`list_clusters` shows every cluster with its tenants. URLs are shown without passwords.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

from core.db import clusters
from core.db.admin import admin_transaction
from core.db.engine import platform_transaction
from core.db.logins import check_runtime_login, prepare_logins


class ClusterError(ValueError):
    """Bad input for the cluster registry (the message names the field)."""


class ClusterRow(msgspec.Struct, kw_only=True):
    name: str
    role: str
    url: str | None
    replica_urls: list[str]
    tenants: list[str]


def without_password(url: str | None) -> str | None:
    """``url`` with any password removed (for display)."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit((parts.scheme, f"{user}:***@{netloc[1]}", parts.path, parts.query, parts.fragment))


async def _check_reachable(url: str, admin_url: str | None, *, app_role: str, admin_role: str) -> None:
    try:
        logins = await prepare_logins(url, app_role=app_role, admin_role=admin_role, admin_url=admin_url)
        conn = await asyncpg.connect(logins.runtime)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        raise ClusterError(f"url: cannot connect ({type(exc).__name__}: {exc})") from None
    try:
        await check_runtime_login(conn)
    finally:
        await conn.close()


async def add_cluster(name: str, url: str, *, admin_url: str | None = None, replica_urls: list[str] | None = None,
                      app_role: str, admin_role: str) -> bool:
    """Register cluster ``name`` (see the module's contract); True when it was added."""
    if not clusters.NAME_RE.match(name or ""):
        raise ClusterError("name: lower-case letters, digits and underscore, 2-30 characters, starting with a letter")
    if not url or not url.startswith(("postgresql://", "postgres://")):
        raise ClusterError("url: a postgresql:// URL")
    replicas = list(replica_urls or [])
    for r in replicas:
        if not r.startswith(("postgresql://", "postgres://")):
            raise ClusterError("replica_urls: postgresql:// URLs")
    async with platform_transaction() as conn:
        existing = await conn.fetchrow("SELECT role, url, admin_url, replica_urls FROM odr.clusters WHERE name = $1", name)
    if existing is not None:
        if (existing["url"], existing["admin_url"]) == (url, admin_url):
            if list(existing["replica_urls"]) != replicas:
                async with admin_transaction() as conn:
                    await conn.execute("UPDATE odr.clusters SET replica_urls = $2 WHERE name = $1", name, replicas)
                return True
            return False
        raise ClusterError(f"name: cluster {name!r} exists with other URLs")
    await _check_reachable(url, admin_url, app_role=app_role, admin_role=admin_role)
    async with admin_transaction() as conn:
        await conn.execute(
            "INSERT INTO odr.clusters (name, role, url, admin_url, replica_urls) VALUES ($1, 'tenants', $2, $3, $4)",
            name, url, admin_url, replicas)
    return True


async def set_replicas(name: str, replica_urls: list[str]) -> None:
    """Replace cluster ``name``'s read-replica URLs (the primary's too); every process reads the new
    list within ``PLACEMENT_TTL`` seconds."""
    for r in replica_urls:
        if not r.startswith(("postgresql://", "postgres://")):
            raise ClusterError("replica_urls: postgresql:// URLs")
    async with admin_transaction() as conn:
        if not await conn.fetchval("UPDATE odr.clusters SET replica_urls = $2 WHERE name = $1 RETURNING 1", name, replica_urls):
            raise ClusterError(f"name: no cluster named {name!r}")
    clusters.STATE.replica_urls.pop(name, None)


async def list_clusters() -> list[ClusterRow]:
    async with platform_transaction() as conn:
        rows = await conn.fetch(
            """SELECT c.name, c.role, c.url, c.replica_urls,
                      coalesce(array_agg(t.slug ORDER BY t.slug) FILTER (WHERE t.slug IS NOT NULL), '{}') AS tenants
               FROM odr.clusters c LEFT JOIN odr.tenants t ON t.cluster = c.name
               GROUP BY c.name ORDER BY c.role <> 'primary', c.name""")
    return [ClusterRow(name=r["name"], role=r["role"], url=without_password(r["url"]),
                       replica_urls=[without_password(u) for u in r["replica_urls"]], tenants=list(r["tenants"]))
            for r in rows]
