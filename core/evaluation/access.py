"""Who may do what with evaluations (fail closed: another tenant's caller gets 404)."""

from __future__ import annotations

import uuid

from core.api.errors import Forbidden, NotFound
from core.auth.principal import BUREAU_ROLES, Principal, Role


def require_province_admin(principal: Principal, tenant: str) -> None:
    if principal.tenant != tenant:
        raise NotFound("tenant not found")
    if principal.role is not Role.PROVINCE_ADMIN:
        raise Forbidden("the provincial bureau defines periods, runs and publishes evaluations (Art. 20)")


def require_bureau(principal: Principal, tenant: str) -> None:
    if principal.tenant != tenant:
        raise NotFound("tenant not found")
    if principal.role not in BUREAU_ROLES:
        raise Forbidden(f"role {principal.role.value} may not see evaluations; published results are public")


def parse_id(field: str, value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        raise NotFound(f"{field} not found") from None
