"""Accounts in the shared schema: creation, authentication, and who an account is by name."""

from __future__ import annotations

import uuid
from typing import Iterable

import asyncpg

from core.auth.passwords import hash_password, verify_password
from core.auth.principal import Principal, Role
from core.db.engine import platform_transaction, shared_fetch


class AccountExists(ValueError):
    pass


async def create_account(
    conn: asyncpg.Connection,
    *,
    username: str,
    password: str,
    role: Role,
    tenant: str | None = None,
    node_code: str | None = None,
    enterprise_id: uuid.UUID | None = None,
    display_name: str = "",
    exist_ok: bool = False,
    password_hash: str | None = None,
) -> uuid.UUID:
    """Insert an account (inside the caller's transaction). ``exist_ok`` returns the existing id.
    ``password_hash`` (from :func:`hash_password`, computed before the transaction began so that no
    connection is held while hashing) replaces ``password``."""
    existing = await conn.fetchval("SELECT id FROM odr.accounts WHERE username = $1", username)
    if existing is not None:
        if exist_ok:
            return existing
        raise AccountExists(f"username {username!r} is taken")
    return await conn.fetchval(
        """INSERT INTO odr.accounts (username, password_hash, role, tenant, node_code, enterprise_id, display_name)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        username,
        password_hash or await hash_password(password, tenant=tenant),
        Role(role).value,
        tenant,
        node_code,
        enterprise_id,
        display_name,
    )


async def authenticate(username: str, password: str) -> asyncpg.Record | None:
    """The active account ``username`` when ``password`` is its password, else None. The row is read in
    a short transaction of its own; the password is checked afterwards on the password pool (in the
    account's province's share), holding no database connection."""
    async with platform_transaction() as conn:
        row = await conn.fetchrow(
            "SELECT id, username, password_hash, role, tenant, node_code, enterprise_id, display_name, active"
            " FROM odr.accounts WHERE username = $1",
            username,
        )
    if row is None:
        await verify_password(None, password)  # as long as a wrong password: no hint that the name is free
        return None
    if not await verify_password(row["password_hash"], password, tenant=row["tenant"]) or not row["active"]:
        return None
    return row


def principal_from_row(row: asyncpg.Record, node_path: tuple[str, ...]) -> Principal:
    return Principal(
        id=str(row["id"]),
        username=row["username"],
        role=Role(row["role"]),
        tenant=row["tenant"],
        node_path=node_path,
        enterprise_id=str(row["enterprise_id"]) if row["enterprise_id"] else None,
        display_name=row["display_name"],
    )


async def display_names(ids: Iterable[str | None]) -> dict[str, str]:
    """Account id -> ``display name (username)`` (the username alone without a display name), read in one
    statement; values that are no account id (e.g. ``demo``) are left out."""
    wanted = set()
    for value in ids:
        try:
            wanted.add(str(uuid.UUID(str(value))))
        except ValueError:
            continue
    if not wanted:
        return {}
    rows = await shared_fetch("SELECT id::text AS id, username, display_name FROM odr.accounts WHERE id = ANY($1::uuid[])",
                              sorted(wanted))
    return {r["id"]: f"{r['display_name']} ({r['username']})" if r["display_name"] else r["username"] for r in rows}
