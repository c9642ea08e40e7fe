"""Exit proposals (Art. 22): raised by an evaluation (Art. 22(3), see
:func:`core.evaluation.service.run_evaluation`), from a complaint or from a spot check; decided by the
reviewing bureau (revoke, in the same transaction as the unit's status, accounts and timers; or dismiss),
always with a note."""

from __future__ import annotations

import uuid

from core.api.errors import Conflict, Forbidden, NotFound
from core.auth.principal import Principal, Role
from core.evaluation.access import parse_id, require_bureau
from core.db.engine import tenant_transaction
from core.enterprises.common import FieldError
from core.enterprises.schemas import RevocationGround, StatusDecision
from core.enterprises.status import apply_status_change
from core.evaluation import schemas as S
from core.runtime import Platform


_PROPOSAL_COLUMNS = """x.id, x.enterprise_id, e.name AS enterprise_name, e.node_code, x.ground, x.source,
    x.evaluation_id, x.complaint_id, x.detail, x.raised_by, x.raised_at, x.status, x.decided_by, x.decided_node,
    x.decided_at, x.decision_note"""


def _proposal(row) -> S.Proposal:
    values = dict(row)
    for k in ("id", "enterprise_id", "evaluation_id", "complaint_id"):
        values[k] = str(values[k]) if values[k] is not None else None
    return S.Proposal(**values)


async def list_proposals(platform: Platform, tenant: str, principal: Principal, status: str | None) -> list[S.Proposal]:
    """Proposals about units in the caller's subtree, newest first."""
    require_bureau(principal, tenant)
    await platform.tenant(tenant)
    async with tenant_transaction(tenant) as conn:
        rows = await conn.fetch(
            f"""SELECT {_PROPOSAL_COLUMNS} FROM revocation_proposals x JOIN enterprises e ON e.id = x.enterprise_id
                JOIN jurisdictions j ON j.code = e.node_code
                WHERE (j.path = $1 OR j.path LIKE $1 || '/%') AND ($2::text IS NULL OR x.status = $2)
                ORDER BY x.raised_at DESC LIMIT 1000""", "/".join(principal.node_path), status)
    return [_proposal(r) for r in rows]


async def raise_proposal(platform: Platform, tenant: str, principal: Principal, body: S.ProposalCreate) -> S.Proposal:
    """An Art. 22 ground raised from a complaint or a spot check by a bureau covering the unit."""
    require_bureau(principal, tenant)
    nodes = await platform.nodes(tenant)
    try:
        enterprise_id = uuid.UUID(body.enterprise_id)
    except ValueError:
        raise FieldError("enterprise_id", "not a valid id") from None
    if body.source == "complaint" and not body.complaint_id:
        raise FieldError("complaint_id", "required when the ground is raised from a complaint")
    async with tenant_transaction(tenant) as conn:
        unit = await conn.fetchrow("SELECT node_code, status FROM enterprises WHERE id = $1", enterprise_id)
        node = nodes.get(unit["node_code"]) if unit else None
        if node is None or not principal.covers(node.path):
            raise FieldError("enterprise_id", "no ODR unit with this id in your jurisdiction", 404)
        if unit["status"] not in ("active", "suspended"):
            raise FieldError("enterprise_id", f"the unit is {unit['status']}", 409)
        complaint_id = None
        if body.complaint_id:
            try:
                complaint_id = uuid.UUID(body.complaint_id)
            except ValueError:
                raise FieldError("complaint_id", "not a valid id") from None
            if not await conn.fetchval("SELECT 1 FROM complaints WHERE id = $1 AND enterprise_id = $2",
                                       complaint_id, enterprise_id):
                raise FieldError("complaint_id", "no complaint with this id about this unit", 404)
        pid = await conn.fetchval(
            """INSERT INTO revocation_proposals (enterprise_id, ground, source, complaint_id, detail, raised_by)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
            enterprise_id, body.ground.value, body.source, complaint_id, body.detail.strip(), principal.id)
        return _proposal(await conn.fetchrow(
            f"SELECT {_PROPOSAL_COLUMNS} FROM revocation_proposals x JOIN enterprises e ON e.id = x.enterprise_id WHERE x.id = $1",
            pid))


async def decide_proposal(platform: Platform, tenant: str, principal: Principal, proposal_id: str,
                          body: S.ProposalDecision) -> S.Proposal:
    """The reviewing bureau revokes (Art. 22, the proposal's ground) or dismisses; one transaction."""
    pid = parse_id("proposal", proposal_id)
    if principal.tenant != tenant:
        raise NotFound("tenant not found")
    nodes = await platform.nodes(tenant)
    async with tenant_transaction(tenant) as conn:
        row = await conn.fetchrow(
            f"""SELECT {_PROPOSAL_COLUMNS} FROM revocation_proposals x JOIN enterprises e ON e.id = x.enterprise_id
                WHERE x.id = $1 FOR UPDATE OF x""", pid)
        node = nodes.get(row["node_code"]) if row else None
        if node is None or not principal.covers(node.path):
            raise NotFound("proposal not found in your jurisdiction")
        if row["status"] != "proposed":
            raise Conflict(f"the proposal was already decided ({row['status']})", [])
        if body.decision == "revoke":
            await apply_status_change(
                conn, tenant, nodes, principal, row["enterprise_id"], "revoke",
                StatusDecision(ground=RevocationGround(row["ground"]), detail=f"{row['detail']} — {body.note.strip()}"[:4000]),
            )
        elif principal.role not in (Role.PROVINCE_ADMIN, Role.BUREAU_OFFICER):
            raise Forbidden(f"role {principal.role.value} may not do this; the reviewing bureau decides")
        await conn.execute(
            """UPDATE revocation_proposals SET status = $2, decided_by = $3, decided_node = $4, decided_at = now(),
                   decision_note = $5 WHERE id = $1""",
            pid, "revoked" if body.decision == "revoke" else "dismissed", principal.id, principal.node,
            body.note.strip())
        return _proposal(await conn.fetchrow(
            f"SELECT {_PROPOSAL_COLUMNS} FROM revocation_proposals x JOIN enterprises e ON e.id = x.enterprise_id WHERE x.id = $1",
            pid))
