"""Who is acting: a principal carried in the JWT, and the roles of the platform."""

from __future__ import annotations

import enum

import msgspec


class Role(str, enum.Enum):
    OPERATOR = "operator"
    PROVINCE_ADMIN = "province_admin"
    BUREAU_OFFICER = "bureau_officer"
    OFFICE_HEAD = "office_head"
    ENTERPRISE_SPECIALIST = "enterprise_specialist"
    CONSUMER = "consumer"


BUREAU_ROLES = frozenset({Role.PROVINCE_ADMIN, Role.BUREAU_OFFICER, Role.OFFICE_HEAD})
POLICY_ROLES = frozenset({Role.PROVINCE_ADMIN, Role.BUREAU_OFFICER})


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated account. ``node_path`` (root first) is set for bureau roles: they act within
    that node's subtree. ``enterprise_id`` binds a specialist; a consumer sees only their own cases."""

    id: str
    username: str
    role: Role
    tenant: str | None = None
    node_path: tuple[str, ...] = ()
    enterprise_id: str | None = None
    display_name: str = ""

    @property
    def node(self) -> str | None:
        return self.node_path[-1] if self.node_path else None

    def covers(self, node_path: tuple[str, ...] | list[str]) -> bool:
        """True when ``node_path`` lies in this principal's subtree (bureau roles only)."""
        if self.role not in BUREAU_ROLES or not self.node_path:
            return False
        return tuple(node_path[: len(self.node_path)]) == self.node_path
