"""Coverage targets (Jiangsu: ODR units per county, at least 510 in the province by year end), set by a
province admin or a city bureau for nodes of its subtree, read by the coverage report.

Who: a ``province_admin``, or a ``bureau_officer`` whose own node is a city (a district bureau or an
office cannot set targets: 403). Where: a province, city or district node of the caller's subtree
(404 outside it; an office node: 400 naming ``node_code``). One target per node and year (a new one
replaces it; ``set_by`` records ``username@node``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from core.api.errors import Forbidden, NotFound
from core.auth.principal import Principal, Role
from core.runtime import Node

TARGET_LEVELS = ("province", "city", "district")


class TargetInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    node_code: Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_-]{1,32}$")]
    year: Annotated[int, msgspec.Meta(ge=2018, le=2100)]
    target_units: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]


class Target(msgspec.Struct, kw_only=True):
    node_code: str
    node_name: str
    level: str
    year: int
    target_units: int
    set_by: str
    set_at: dt.datetime


def check_setter(principal: Principal, nodes: dict[str, Node]) -> None:
    own = nodes.get(principal.node or "")
    if principal.role is Role.PROVINCE_ADMIN:
        return
    if principal.role is Role.BUREAU_OFFICER and own is not None and own.level in ("province", "city"):
        return
    raise Forbidden("coverage targets are set by the province admin or a city bureau")


def target_node(principal: Principal, nodes: dict[str, Node], code: str) -> Node:
    node = nodes.get(code)
    if node is None or not principal.covers(node.path):
        raise NotFound(f"node {code!r} not found in your jurisdiction")
    if node.level not in TARGET_LEVELS:
        raise msgspec.ValidationError(
            f"targets are set for a province, city or district node, not a {node.level} - at `$.node_code`")
    return node


def _actor(principal: Principal) -> str:
    return f"{principal.username}@{principal.node}" if principal.node else principal.username


async def save(conn, principal: Principal, node: Node, data: TargetInput) -> Target:
    row = await conn.fetchrow(
        """INSERT INTO coverage_targets (node_code, year, target_units, set_by, set_at) VALUES ($1, $2, $3, $4, now())
           ON CONFLICT (node_code, year) DO UPDATE SET target_units = EXCLUDED.target_units, set_by = EXCLUDED.set_by,
                                                       set_at = EXCLUDED.set_at
           RETURNING node_code, year, target_units, set_by, set_at""",
        node.code, data.year, data.target_units, _actor(principal),
    )
    return Target(node_name=node.name, level=node.level, **dict(row))


async def delete(conn, node: Node, year: int) -> bool:
    return await conn.fetchval("DELETE FROM coverage_targets WHERE node_code = $1 AND year = $2 RETURNING true",
                               node.code, year) is not None


async def list_targets(conn, nodes: dict[str, Node], node: Node, year: int | None) -> list[Target]:
    rows = await conn.fetch(
        """SELECT t.node_code, t.year, t.target_units, t.set_by, t.set_at
           FROM coverage_targets t JOIN jurisdictions j ON j.code = t.node_code
           WHERE (j.path = $1 OR j.path LIKE $1 || '/%') AND ($2::int IS NULL OR t.year = $2)
           ORDER BY t.year, j.path""",
        "/".join(node.path), year,
    )
    return [Target(node_name=nodes[r["node_code"]].name, level=nodes[r["node_code"]].level, **dict(r)) for r in rows]
