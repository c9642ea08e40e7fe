"""Accounts in the shared schema: creation and authentication."""

from __future__ import annotations

import uuid

import asyncpg

from core.auth.passwords import hash_password, verify_password
from core.auth.principal import Principal, Role


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
) -> uuid.UUID:
    """Insert an account (inside the caller's transaction). ``exist_ok`` returns the existing id."""
    existing = await conn.fetchval("SELECT id FROM odr.accounts WHERE username = $1", username)
    if existing is not None:
        if exist_ok:
            return existing
        raise AccountExists(f"username {username!r} is taken")
    return await conn.fetchval(
        """INSERT INTO odr.accounts (username, password_hash, role, tenant, node_code, enterprise_id, display_name)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        username,
        hash_password(password),
        Role(role).value,
        tenant,
        node_code,
        enterprise_id,
        display_name,
    )


async def authenticate(conn: asyncpg.Connection, username: str, password: str) -> asyncpg.Record | None:
    row = await conn.fetchrow(
        "SELECT id, username, password_hash, role, tenant, node_code, enterprise_id, display_name, active"
        " FROM odr.accounts WHERE username = $1",
        username,
    )
    if not verify_password(row["password_hash"] if row else None, password) or not row["active"]:
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
