"""Status of ODR units (Art. 22): suspension, reinstatement and revocation, with the unit's
specialist accounts closed or reopened alongside.

Contract:
- Reviewing bureau only. Transitions: suspend active -> suspended, reinstate suspended -> active,
  revoke active/suspended -> revoked; anything else is a 409.
- Suspension and revocation need an Art. 22 ground and close the unit's specialist accounts;
  reinstatement reopens the accounts of its current liaisons; revocation cancels the unit's pending
  liaison-change timers. All in ONE tenant transaction (accounts via ``as_platform``).
"""

from __future__ import annotations

import uuid

from core.api.errors import NotFound
from core.auth.principal import Principal
from core.db.engine import as_platform, tenant_transaction
from core.enterprises.common import (
    _UNIT_COLUMNS,
    FieldError,
    _active_liaisons,
    _actor,
    _conflict,
    require_reviewer,
    unit_from_row,
)
from core.enterprises.schemas import StatusDecision, Unit
from core.runtime import Platform
from core.timers.schedule import cancel


# -- status (Art. 22) --------------------------------------------------------------------------------
_TRANSITIONS = {
    "suspend": (("active",), "suspended"),
    "reinstate": (("suspended",), "active"),
    "revoke": (("active", "suspended"), "revoked"),
}


async def change_status(
    platform: Platform,
    tenant: str,
    principal: Principal,
    enterprise_id: uuid.UUID,
    action: str,
    decision: StatusDecision | None = None,
) -> Unit:
    """Suspend, reinstate or revoke a unit (reviewing bureau only). Suspension and revocation need an
    Art. 22 ground and close the unit's specialist accounts; reinstatement reopens the accounts of
    its current liaisons. Revocation cancels its pending liaison-change timers."""
    nodes = await platform.nodes(tenant)
    async with tenant_transaction(tenant) as conn:
        await apply_status_change(conn, tenant, nodes, principal, enterprise_id, action, decision)
        row = await conn.fetchrow(f"SELECT {_UNIT_COLUMNS} FROM enterprises e WHERE e.id = $1", enterprise_id)
    return unit_from_row(row)


async def apply_status_change(
    conn,
    tenant: str,
    nodes: dict,
    principal: Principal,
    enterprise_id: uuid.UUID,
    action: str,
    decision: StatusDecision | None = None,
) -> None:
    """:func:`change_status` inside the caller's tenant transaction (e.g. with the decision on an Art. 22
    proposal, so both commit together)."""
    allowed_from, target = _TRANSITIONS[action]
    if action != "reinstate" and decision is None:
        raise FieldError("ground", "an Art. 22 ground is required")
    unit = await conn.fetchrow("SELECT status, node_code FROM enterprises WHERE id = $1 FOR UPDATE", enterprise_id)
    if unit is None:
        raise NotFound("ODR unit not found")
    require_reviewer(principal, nodes, unit["node_code"])
    if unit["status"] not in allowed_from:
        raise _conflict("status", f"cannot {action} a unit that is {unit['status']}")
    ground = decision.ground.value if decision is not None and action != "reinstate" else None
    detail = (decision.detail or "").strip() or None if decision is not None and action != "reinstate" else None
    await conn.execute(
        """UPDATE enterprises SET status = $2, status_changed_at = now(), status_changed_by = $3,
               revocation_ground = $4, revocation_detail = $5 WHERE id = $1""",
        enterprise_id,
        target,
        _actor(principal),
        ground,
        detail,
    )
    if action == "reinstate":
        account_ids = [r["account_id"] for r in await _active_liaisons(conn, enterprise_id) if r["account_id"]]
        async with as_platform(conn) as pconn:
            await pconn.execute("UPDATE odr.accounts SET active = true WHERE id = ANY($1::uuid[])", account_ids)
    else:
        async with as_platform(conn) as pconn:
            await pconn.execute(
                "UPDATE odr.accounts SET active = false WHERE tenant = $1 AND enterprise_id = $2 AND role = 'enterprise_specialist'",
                tenant,
                enterprise_id,
            )
    if action == "revoke":
        for change_id in await conn.fetch(
            "SELECT id FROM liaison_changes WHERE enterprise_id = $1 AND status = 'open'", enterprise_id
        ):
            await cancel(conn, kinds=("liaison_breach",), liaison_change_id=change_id["id"])
