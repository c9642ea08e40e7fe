"""Liaisons of ODR units (Art. 15): recording a liaison change, filing the new liaison, and the
bureaus' list of liaison-change obligations.

Contract:
- A change makes the new liaison due in 5 working days on the unit's node calendar (the change day
  not counted) and schedules a ``liaison_breach`` timer for that moment, in the same transaction.
- Filing closes the obligation (late filings too), cancels its timer and replaces the active liaison
  of that role; with a ``username`` the predecessor's account is closed and a new one opened in the
  same transaction (its one-time password returned once; kept closed unless the unit is active).
- The unit's own specialist or its reviewing bureau acts; the obligation list carries no personal data.
"""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

from core.api.errors import NotFound
from core.auth.principal import Principal
from core.db.engine import as_platform, tenant_transaction
from core.deadlines.counting import TZ, add_working_days
from core.deadlines.service import calendar_for
from core.enterprises.common import (
    _CHANGE_COLUMNS,
    FieldError,
    _change,
    _conflict,
    _json,
    _liaison,
    _open_account,
    _require_unit_party,
    _scopes,
    _subtree,
    _unjson,
)
from core.enterprises.schemas import InitialCredential, LiaisonChange, LiaisonChangeRequest, LiaisonFiled, LiaisonFiling
from core.runtime import Platform
from core.timers.schedule import cancel, schedule

LIAISON_CHANGE_WORKING_DAYS = 5
ART15_BASIS = "全国12315互联网平台在线消费纠纷解决企业管理暂行办法 第十五条"


# -- liaisons (Art. 15) ------------------------------------------------------------------------------
async def open_liaison_change(
    platform: Platform, tenant: str, principal: Principal, enterprise_id: uuid.UUID, request: LiaisonChangeRequest
) -> LiaisonChange:
    """Record that a liaison changed: the new one is due in 5 working days on the unit's node calendar
    (the change day not counted), and a ``liaison_breach`` timer is scheduled for that moment."""
    today = dt.datetime.now(TZ).date()
    changed_on = request.changed_on or today
    if changed_on > today:
        raise FieldError("changed_on", "must not be in the future")
    nodes, scope_at = await _scopes(platform, tenant)
    async with tenant_transaction(tenant) as conn:
        unit = await conn.fetchrow("SELECT id, name, node_code, status FROM enterprises WHERE id = $1 FOR UPDATE", enterprise_id)
        if unit is None:
            raise NotFound("ODR unit not found")
        _require_unit_party(principal, nodes, unit["node_code"], enterprise_id)
        if unit["status"] not in ("active", "suspended"):
            raise _conflict("status", f"the unit is {unit['status']}; liaison changes apply to approved units")
        if await conn.fetchval(
            "SELECT 1 FROM liaison_changes WHERE enterprise_id = $1 AND role = $2 AND status <> 'filed'", enterprise_id, request.role
        ):
            raise _conflict("role", "a change of this liaison is already open; file the new liaison first")
        scope, active = scope_at(unit["node_code"])
        explanation = add_working_days(
            dt.datetime.combine(changed_on, dt.time(0), TZ), LIAISON_CHANGE_WORKING_DAYS, calendar_for(platform, scope, active)
        )
        explanation = msgspec.structs.replace(
            explanation, milestone="liaison_change", policy="art15_liaison_change", policy_version="2018", legal_basis=ART15_BASIS
        )
        explained = msgspec.to_builtins(explanation)
        row = await conn.fetchrow(
            """WITH c AS (INSERT INTO liaison_changes (enterprise_id, role, changed_on, due_at, deadline_explanation)
                          VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING *)
               SELECT c.id, c.enterprise_id, $6::text AS enterprise_name, $7::text AS node_code, c.role, c.changed_on,
                      c.due_at, c.filed_at, c.status FROM c""",
            enterprise_id,
            request.role,
            changed_on,
            explanation.due,
            _json(explained),
            unit["name"],
            unit["node_code"],
        )
        await schedule(conn, kind="liaison_breach", due_at=explanation.due, liaison_change_id=row["id"])
    return _change(row, explained)


async def file_liaison(
    platform: Platform, tenant: str, principal: Principal, enterprise_id: uuid.UUID, change_id: uuid.UUID, filing: LiaisonFiling
) -> LiaisonFiled:
    """File the new liaison: closes the obligation (late filings too), cancels its timer, replaces the
    active liaison of that role. With ``username`` the predecessor's account is closed and a new one
    opened (its one-time password returned once)."""
    nodes = await platform.nodes(tenant)
    async with tenant_transaction(tenant) as conn:
        change = await conn.fetchrow(
            f"""SELECT {_CHANGE_COLUMNS}, e.status AS unit_status, c.deadline_explanation
                FROM liaison_changes c JOIN enterprises e ON e.id = c.enterprise_id
                WHERE c.id = $1 AND c.enterprise_id = $2 FOR UPDATE OF c""",
            change_id,
            enterprise_id,
        )
        if change is None:
            raise NotFound("liaison change not found")
        _require_unit_party(principal, nodes, change["node_code"], enterprise_id)
        if change["status"] == "filed":
            raise _conflict("status", "the new liaison was already filed")
        old = await conn.fetchrow(
            "SELECT id, account_id FROM liaisons WHERE enterprise_id = $1 AND role = $2 AND active FOR UPDATE",
            enterprise_id,
            change["role"],
        )
        if old is not None:
            await conn.execute("UPDATE liaisons SET active = false WHERE id = $1", old["id"])
        account_id = old["account_id"] if old is not None else None
        credentials: list[InitialCredential] = []
        if filing.username is not None:
            async with as_platform(conn) as pconn:
                if await pconn.fetchval("SELECT 1 FROM odr.accounts WHERE username = $1", filing.username):
                    raise _conflict("username", "this username is taken; choose another")
                if account_id is not None:
                    await pconn.execute("UPDATE odr.accounts SET active = false WHERE id = $1", account_id)
                account_id, username, password = await _open_account(
                    pconn, tenant=tenant, enterprise_id=enterprise_id, unit_name=change["enterprise_name"], role=change["role"],
                    username=filing.username,
                )
                if change["unit_status"] != "active":
                    await pconn.execute("UPDATE odr.accounts SET active = false WHERE id = $1", account_id)
            credentials.append(InitialCredential(role=change["role"], username=username, password=password))
        liaison = await conn.fetchrow(
            """INSERT INTO liaisons (enterprise_id, role, name, phone, account_id) VALUES ($1, $2, $3, $4, $5)
               RETURNING id, role, name, phone, account_id, filed_at""",
            enterprise_id,
            change["role"],
            filing.name.strip(),
            filing.phone.strip(),
            account_id,
        )
        updated = await conn.fetchrow(
            f"""UPDATE liaison_changes c SET status = 'filed', filed_at = now() FROM enterprises e
                WHERE c.id = $1 AND e.id = c.enterprise_id RETURNING {_CHANGE_COLUMNS}""",
            change_id,
        )
        await cancel(conn, kinds=("liaison_breach",), liaison_change_id=change_id)
    return LiaisonFiled(
        change=_change(updated, _unjson(change["deadline_explanation"])), liaison=_liaison(liaison), initial_credentials=credentials
    )


async def list_liaison_changes(
    platform: Platform, tenant: str, principal: Principal, *, node: str, status: str | None
) -> list[LiaisonChange]:
    """Liaison-change obligations of the units in ``node``'s subtree; default: not yet filed (open or
    overdue), soonest due first. No personal data."""
    nodes = await platform.nodes(tenant)
    n = nodes.get(node)
    if n is None or not principal.covers(n.path):
        raise NotFound(f"node {node!r} not found in your jurisdiction")
    statuses = [status] if status else ["open", "overdue"]
    async with tenant_transaction(tenant) as conn:
        rows = await conn.fetch(
            f"""SELECT {_CHANGE_COLUMNS}, c.deadline_explanation FROM liaison_changes c JOIN enterprises e ON e.id = c.enterprise_id
                WHERE e.node_code = ANY($1) AND c.status = ANY($2) AND e.status IN ('active', 'suspended')
                ORDER BY c.due_at LIMIT 500""",
            _subtree(nodes, node),
            statuses,
        )
    return [_change(r, _unjson(r["deadline_explanation"])) for r in rows]
