"""Shared pieces of the ODR-unit (enterprise) modules: errors, access checks, row -> Struct
helpers, specialist accounts, and :func:`find_active_unit` for the complaints code.

Contract:
- :class:`FieldError` is the one request error of the package; the API answers its ``status_code``
  naming its ``field`` (409 for conflicts, via :func:`_conflict`).
- Access: the reviewing bureau is a ``bureau_officer`` / ``province_admin`` whose subtree covers the
  unit's node (:func:`require_reviewer`); outside it a unit or application does not exist (404). A
  specialist acts on their own unit only (:func:`_require_unit_party`).
- :func:`_scopes` works plugin scopes out from the cached jurisdiction tree and activations *before*
  a transaction opens, so hooks can be called inside it without nesting transactions.
- Helpers taking a connection run inside the caller's tenant transaction and never open one;
  :func:`_open_account` must be called inside :func:`~core.db.engine.as_platform`.
- ``status_changed_by`` / ``approved_by`` record ``username@node`` (:func:`_actor`).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, Callable

import asyncpg
import msgspec

from core.api.errors import Forbidden, NotFound
from core.auth.accounts import create_account
from core.auth.passwords import hash_password
from core.auth.principal import POLICY_ROLES, Principal, Role
from core.enterprises.schemas import Liaison, LiaisonChange, Unit
from core.pluginhost.activations import effective_policy, make_scope
from core.runtime import Node, Platform
from odr_plugin_api import Scope

ROLE_LABEL = {"person_in_charge": "负责人 / person in charge", "staff": "联络员 / staff"}


class FieldError(ValueError):
    """A request problem tied to one field; the API answers ``status_code`` naming ``field``."""

    def __init__(self, field: str, message: str, status_code: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status_code = status_code


def _conflict(field: str, message: str) -> FieldError:
    return FieldError(field, message, 409)


# -- helpers -----------------------------------------------------------------------------------------
def _json(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def _unjson(raw: str | None) -> Any:
    return msgspec.json.decode(raw) if raw else None


def _actor(principal: Principal) -> str:
    return f"{principal.username}@{principal.node}" if principal.node else principal.username


async def _scopes(platform: Platform, tenant: str) -> tuple[dict[str, Node], Callable[[str], tuple[Scope, frozenset[str]]]]:
    """The tenant's nodes and a function giving a node's hook scope, usable inside a transaction."""
    nodes = await platform.nodes(tenant)
    activations = await platform.activations(tenant)

    def scope_at(node_code: str) -> tuple[Scope, frozenset[str]]:
        policy = effective_policy(platform.host, tenant, nodes[node_code].path, activations)
        return make_scope(platform.host, policy), policy.active

    return nodes, scope_at


def _subtree(nodes: dict[str, Node], node_code: str) -> list[str]:
    path = nodes[node_code].path
    return [c for c, n in nodes.items() if n.path[: len(path)] == path]


def require_reviewer(principal: Principal, nodes: dict[str, Node], node_code: str, what: str = "ODR unit") -> None:
    """The reviewing bureau of a node: bureau officer / province admin covering it (404 outside)."""
    node = nodes.get(node_code)
    if node is None or not principal.covers(node.path):
        raise NotFound(f"{what} not found in your jurisdiction")
    if principal.role not in POLICY_ROLES:
        raise Forbidden(f"role {principal.role.value} may not do this; the reviewing bureau decides")


def _require_unit_party(principal: Principal, nodes: dict[str, Node], node_code: str, enterprise_id: uuid.UUID) -> None:
    """The unit's own specialist, or its reviewing bureau."""
    if principal.role is Role.ENTERPRISE_SPECIALIST:
        if principal.enterprise_id != str(enterprise_id):
            raise NotFound("ODR unit not found")
        return
    require_reviewer(principal, nodes, node_code)


# -- rows --------------------------------------------------------------------------------------------
_UNIT_COLUMNS = """e.id, e.name, e.credit_code, e.unit_type, e.host_unit_id, e.node_code, e.industry, e.employees,
    e.annual_revenue_cny, e.business_scope, e.address, e.status, e.classification, e.breach_count, e.approved_at,
    e.approved_by, e.status_changed_at, e.status_changed_by, e.revocation_ground, e.revocation_detail, e.created_at"""

_APPLICATION_COLUMNS = """a.id, a.enterprise_id, a.route, a.recommended_by, a.conditions, a.status, a.review_method,
    a.reviewer, a.reviewed_at, a.rejection_reason, a.standing, a.submitted_by, a.submitted_at,
    e.name, e.credit_code, e.unit_type, e.host_unit_id, e.node_code, e.industry, e.employees,
    e.annual_revenue_cny, e.business_scope, e.address"""

_CHANGE_COLUMNS = """c.id, c.enterprise_id, e.name AS enterprise_name, e.node_code, c.role, c.changed_on, c.due_at,
    c.filed_at, c.status"""


def _money(value: Any) -> float | None:
    return None if value is None else float(value)


def unit_from_row(row: asyncpg.Record) -> Unit:
    changed_by = row["status_changed_by"]
    return Unit(
        **{
            **{k: row[k] for k in row.keys()},
            "annual_revenue_cny": _money(row["annual_revenue_cny"]),
            "classification": _unjson(row["classification"]),
            "deciding_bureau": changed_by.rsplit("@", 1)[1] if changed_by and "@" in changed_by else None,
        }
    )


def _liaison(row: asyncpg.Record) -> Liaison:
    return Liaison(
        id=row["id"], role=row["role"], name=row["name"], phone=row["phone"], has_account=row["account_id"] is not None,
        filed_at=row["filed_at"],
    )


def _change(row: asyncpg.Record, explanation: Any = None) -> LiaisonChange:
    return LiaisonChange(**{k: row[k] for k in row.keys() if k != "deadline_explanation"}, deadline_explanation=explanation)


async def _active_liaisons(conn: asyncpg.Connection, enterprise_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, role, name, phone, account_id, filed_at FROM liaisons WHERE enterprise_id = $1 AND active ORDER BY role",
        enterprise_id,
    )


# -- accounts ----------------------------------------------------------------------------------------
async def _open_account(
    conn: asyncpg.Connection, *, tenant: str, enterprise_id: uuid.UUID, unit_name: str, role: str, username: str
) -> tuple[uuid.UUID, str, str]:
    """Open (or, for this unit's own closed account of that name, reopen) a specialist account with a
    fresh one-time password; a username taken by someone else gets a short suffix. Call inside
    :func:`as_platform`."""
    password = secrets.token_urlsafe(12)
    candidate = username
    for _ in range(20):
        row = await conn.fetchrow("SELECT id, tenant, enterprise_id, role FROM odr.accounts WHERE username = $1", candidate)
        if row is None:
            account_id = await create_account(
                conn, username=candidate, password=password, role=Role.ENTERPRISE_SPECIALIST, tenant=tenant,
                enterprise_id=enterprise_id, display_name=f"{unit_name} {ROLE_LABEL[role]}"[:200],
            )
            return account_id, candidate, password
        if row["tenant"] == tenant and row["enterprise_id"] == enterprise_id and row["role"] == Role.ENTERPRISE_SPECIALIST.value:
            await conn.execute(
                "UPDATE odr.accounts SET password_hash = $2, active = true WHERE id = $1", row["id"], await hash_password(password, tenant=tenant)
            )
            return row["id"], candidate, password
        candidate = f"{username}-{secrets.token_hex(2)}"
    raise _conflict(f"{role}_username", "could not find a free username")


# -- for the complaints code -------------------------------------------------------------------------
async def find_active_unit(
    conn: asyncpg.Connection,
    *,
    enterprise_id: uuid.UUID | str | None = None,
    credit_code: str | None = None,
    name: str | None = None,
) -> dict | None:
    """The active ODR unit that handles complaints about a company, inside the caller's tenant
    transaction, looked up by id, else credit code, else exact name (a name shared by several units
    finds none). A member merchant resolves to its host unit, which must be active too; ``member``
    then names the merchant. Returns ``{id, name, credit_code, node_code, status, host_unit_id,
    member}`` or None."""
    columns = "id, name, credit_code, node_code, status, host_unit_id"
    if enterprise_id is not None:
        try:
            key = enterprise_id if isinstance(enterprise_id, uuid.UUID) else uuid.UUID(str(enterprise_id))
        except ValueError:
            raise FieldError("enterprise_id", "not a valid id") from None
        row = await conn.fetchrow(f"SELECT {columns} FROM enterprises WHERE id = $1", key)
    elif credit_code:
        row = await conn.fetchrow(f"SELECT {columns} FROM enterprises WHERE credit_code = $1", credit_code.strip().upper())
    elif name and name.strip():
        rows = await conn.fetch(f"SELECT {columns} FROM enterprises WHERE name = $1 AND status = 'active' LIMIT 2", name.strip())
        row = rows[0] if len(rows) == 1 else None
    else:
        return None
    if row is None or row["status"] != "active":
        return None
    member = None
    if row["host_unit_id"] is not None:
        member = {"id": row["id"], "name": row["name"], "credit_code": row["credit_code"]}
        row = await conn.fetchrow(f"SELECT {columns} FROM enterprises WHERE id = $1", row["host_unit_id"])
        if row is None or row["status"] != "active":
            return None
    return {**dict(row), "member": member}
