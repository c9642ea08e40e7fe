"""Views of ODR units: the bureaus' unit list and unit detail, and the public directory (Art. 23).

Contract:
- :func:`list_units`: units of a node's subtree, for any bureau role covering it; no personal data.
- :func:`get_unit`: a unit with its liaisons and open liaison changes, for its reviewing bureau or
  its own specialists only (liaison names and phones go to those two only).
- :func:`directory`: public; active units of a subtree with member merchants under their host unit,
  only public facts, never a liaison or any other person.
- Read-only: each call reads in one tenant transaction and changes nothing.
"""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

from core.api.errors import NotFound
from core.auth.principal import Principal
from core.db.engine import shared_fetch, tenant_transaction
from core.enterprises.common import (
    _CHANGE_COLUMNS,
    _UNIT_COLUMNS,
    _active_liaisons,
    _change,
    _liaison,
    _require_unit_party,
    _subtree,
    _unjson,
    unit_from_row,
)
from core.enterprises.schemas import DirectoryClass, DirectoryMember, DirectoryUnit, Unit, UnitDetail
from core.runtime import Node, Platform

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def public_provinces() -> list[dict]:
    """The active provinces (slug, name, name_en) by slug: the public pages' list of directories."""
    rows = await shared_fetch("SELECT slug, name, name_en FROM odr.tenants WHERE status = 'active' ORDER BY slug")
    return [dict(r) for r in rows]


# -- units -------------------------------------------------------------------------------------------
async def list_units(
    platform: Platform, tenant: str, principal: Principal, *, node: str, status: str | None, q: str | None
) -> list[Unit]:
    """ODR units of ``node``'s subtree, for any bureau role covering it (no personal data)."""
    nodes = await platform.nodes(tenant)
    n = nodes.get(node)
    if n is None or not principal.covers(n.path):
        raise NotFound(f"node {node!r} not found in your jurisdiction")
    async with tenant_transaction(tenant) as conn:
        rows = await conn.fetch(
            f"""SELECT {_UNIT_COLUMNS} FROM enterprises e
                WHERE e.node_code = ANY($1) AND ($2::text IS NULL OR e.status = $2)
                  AND ($3::text IS NULL OR e.name ILIKE $3 OR e.credit_code ILIKE $3)
                ORDER BY e.name LIMIT 500""",
            _subtree(nodes, node),
            status,
            _like(q),
        )
    return [unit_from_row(r) for r in rows]


async def get_unit(platform: Platform, tenant: str, principal: Principal, enterprise_id: uuid.UUID) -> UnitDetail:
    """A unit with its liaisons and open liaison changes: its reviewing bureau or its own specialists."""
    nodes = await platform.nodes(tenant)
    async with tenant_transaction(tenant) as conn:
        row = await conn.fetchrow(f"SELECT {_UNIT_COLUMNS} FROM enterprises e WHERE e.id = $1", enterprise_id)
        if row is None:
            raise NotFound("ODR unit not found")
        _require_unit_party(principal, nodes, row["node_code"], enterprise_id)
        liaisons = await _active_liaisons(conn, enterprise_id)
        changes = await conn.fetch(
            f"""SELECT {_CHANGE_COLUMNS} FROM liaison_changes c JOIN enterprises e ON e.id = c.enterprise_id
                WHERE c.enterprise_id = $1 AND c.status <> 'filed' ORDER BY c.due_at""",
            enterprise_id,
        )
    return UnitDetail(unit=unit_from_row(row), liaisons=[_liaison(r) for r in liaisons], open_liaison_changes=[_change(c) for c in changes])


# -- public directory (Art. 23) ----------------------------------------------------------------------
def _like(q: str | None) -> str | None:
    if q is None or not q.strip():
        return None
    escaped = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def directory(
    platform: Platform,
    tenant: str,
    *,
    node: str | None,
    q: str | None,
    cls: str | None,
    limit: int = 200,
    name: str | None = None,
    credit_code: str | None = None,
    offset: int = 0,
) -> tuple[list[DirectoryUnit], int]:
    """Active ODR units of ``node``'s subtree (default: the whole province), member merchants listed
    under their host unit, ordered by name; the page ``offset`` / ``limit`` and the number of units
    matching. Filters (all optional, combined with AND; a host unit matches when one of its active
    members does): ``q`` a substring of the name or credit code, ``name`` a substring of the name,
    ``credit_code`` a prefix of the credit code (case-insensitive), ``cls`` the classification code.
    Only public facts: never a liaison or any other person."""
    await platform.tenant(tenant)
    nodes = await platform.nodes(tenant)
    if node is None:
        node = next(c for c, n in nodes.items() if n.parent_code is None)
    elif node not in nodes:
        raise NotFound(f"node {node!r} not found")
    code_prefix = None
    if credit_code is not None and credit_code.strip():
        code_prefix = _like(credit_code.strip().upper())[1:]  # escaped, '%' at the end only
    where = """e.status = 'active' AND e.host_unit_id IS NULL AND e.node_code = ANY($1)
               AND ($2::text IS NULL OR e.name ILIKE $2 OR e.credit_code ILIKE $2 OR EXISTS (
                     SELECT 1 FROM enterprises m WHERE m.host_unit_id = e.id AND m.status = 'active'
                       AND (m.name ILIKE $2 OR m.credit_code ILIKE $2)))
               AND ($3::text IS NULL OR e.classification->>'code' = $3)
               AND ($4::text IS NULL OR e.name ILIKE $4 OR EXISTS (
                     SELECT 1 FROM enterprises m WHERE m.host_unit_id = e.id AND m.status = 'active' AND m.name ILIKE $4))
               AND ($5::text IS NULL OR e.credit_code LIKE $5 OR EXISTS (
                     SELECT 1 FROM enterprises m WHERE m.host_unit_id = e.id AND m.status = 'active'
                       AND m.credit_code LIKE $5))"""
    args = (_subtree(nodes, node), _like(q), cls, _like(name), code_prefix)
    async with tenant_transaction(tenant) as conn:
        units = await conn.fetch(
            f"""SELECT e.id, e.name, e.credit_code, e.unit_type, e.node_code, e.classification, e.approved_at
                FROM enterprises e WHERE {where}
                ORDER BY e.name, e.credit_code LIMIT $6 OFFSET $7""",
            *args, limit, offset,
        )
        if offset == 0 and len(units) < limit:
            total = len(units)
        else:
            total = await conn.fetchval(f"SELECT count(*) FROM enterprises e WHERE {where}", *args)
        members = await conn.fetch(
            """SELECT host_unit_id, name, credit_code, unit_type, node_code FROM enterprises
               WHERE status = 'active' AND host_unit_id = ANY($1::uuid[]) ORDER BY name, credit_code""",
            [u["id"] for u in units if u["unit_type"] == "host_unit"],
        )
    by_host: dict[uuid.UUID, list[DirectoryMember]] = {}
    for m in members:
        by_host.setdefault(m["host_unit_id"], []).append(
            DirectoryMember(name=m["name"], credit_code=m["credit_code"], unit_type=m["unit_type"], district=_node_name(nodes, m["node_code"]))
        )
    out = []
    for u in units:
        c = _unjson(u["classification"])
        out.append(
            DirectoryUnit(
                id=u["id"],
                name=u["name"],
                credit_code=u["credit_code"],
                unit_type=u["unit_type"],
                node_code=u["node_code"],
                district=_node_name(nodes, u["node_code"]),
                classification=DirectoryClass(scheme=c["scheme"], code=c["code"], label=c["label"]) if c else None,
                members=by_host.get(u["id"], []),
                approved_on=u["approved_at"].astimezone(SHANGHAI).date() if u["approved_at"] else None,
            )
        )
    return out, total


def _node_name(nodes: dict[str, Node], code: str) -> str:
    node = nodes.get(code)
    return node.name if node else code
