"""Tenant resolution and access checks shared by the controllers (fail closed)."""

from __future__ import annotations

from typing import Any

from litestar import Request

from core.api.errors import Forbidden
from core.auth.principal import BUREAU_ROLES, Principal, Role
from core.db.engine import TenantNotFound
from core.runtime import Node, Platform


def platform_of(request: Request) -> Platform:
    return request.app.state.platform


async def tenant_member(request: Request[Principal, Any, Any], tenant: str) -> tuple[Platform, Principal]:
    """The caller must belong to ``tenant``, which must exist and be active; otherwise 404 (no hint
    whether the tenant exists)."""
    principal = request.user
    platform = platform_of(request)
    if principal.tenant != tenant:
        raise TenantNotFound(tenant)
    await platform.tenant(tenant)
    return platform, principal


async def bureau_node(
    request: Request[Principal, Any, Any], tenant: str, node_code: str, roles: frozenset[Role] = BUREAU_ROLES
) -> tuple[Platform, Principal, Node]:
    """A bureau principal acting on a node of its own subtree; 404 for nodes outside it."""
    platform, principal = await tenant_member(request, tenant)
    if principal.role not in roles:
        raise Forbidden(f"role {principal.role.value} may not do this")
    node = (await platform.nodes(tenant)).get(node_code)
    if node is None or not principal.covers(node.path):
        raise KeyError(f"node {node_code!r} not found in your jurisdiction")
    return platform, principal, node


def require_operator(request: Request[Principal, Any, Any]) -> Principal:
    if request.user.role is not Role.OPERATOR:
        raise Forbidden("platform operators only")
    return request.user
