"""The actions on a complaint (``act``): dispatch, accept, return, contact, negotiate, feedback, close,
withdraw, rate and the supervision actions, each checked against the principal's role, the
complaint's state and the access rules, applied in one tenant transaction with its event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from core.api.errors import Conflict, Forbidden
from core.auth.principal import Principal
from core.complaints import states as S
from core.complaints.access import _may, allowed_actions, view
from core.complaints.records import COMPLAINT_COLUMNS, find_unit, load_complaint, record_event, record_notice
from core.complaints.schemas import ComplaintView, FeedbackBody
from core.db.engine import tenant_transaction
from core.deadlines.service import complaint_deadlines
from core.notifications.deliver import Outgoing
from core.runtime import Platform
from core.timers.schedule import ALL_COMPLAINT_KINDS, CONTACT_KINDS, schedule_complaint_clocks
from core.timers.schedule import cancel as cancel_timers


async def act(
    platform: Platform, tenant: str, principal: Principal, complaint_id: str, name: str, body: Any,
    outbox: list[Outgoing] | None = None,
) -> ComplaintView:
    """Take action ``name``; one transaction with its event. Notifications go to ``outbox``."""
    action = S.ACTIONS.get(name)
    async with tenant_transaction(tenant) as conn:
        row = await load_complaint(conn, principal, complaint_id, lock=True)
        allowed = allowed_actions(principal, row)
        if action is None:
            raise KeyError(f"action {name!r} does not exist; allowed now: {', '.join(allowed) or 'none'}")
        if principal.role not in action.roles:
            raise Forbidden(f"role {principal.role.value} may not {name}")
        if row["state"] not in action.sources:
            raise Conflict(f"cannot {name} a complaint that is {row['state']}", allowed)
        why_not = _may(principal, row, name)
        if why_not:
            raise Conflict(f"cannot {name}: {why_not}", allowed)
        before = {"state": row["state"]}
        changes, note = await _apply(platform, tenant, conn, principal, row, name, body, outbox)
        target = action.target or row["state"]
        sets = {**changes, "state": target}
        cols = list(sets)
        assignments = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(cols))
        new = await conn.fetchrow(
            f"UPDATE complaints SET {assignments}, updated_at = now(), version = version + 1 WHERE id = $1 RETURNING {COMPLAINT_COLUMNS}",
            row["id"],
            *[sets[c] for c in cols],
        )
        after = {"state": target, **{k: v for k, v in _public_changes(changes).items()}}
        await record_event(conn, row["id"], name, principal, principal.node or new["node_code"], before, after, note)
    return view(principal, new)


def _public_changes(changes: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in changes.items():
        if k == "deadlines":
            out["deadlines_provisional"] = bool(msgspec.json.decode(v).get("provisional"))
            continue
        if k == "feedback":
            continue
        out[k] = v.isoformat() if isinstance(v, dt.datetime) else v
    return out


async def _apply(platform, tenant, conn, principal, row, name, body, outbox) -> tuple[dict[str, Any], str | None]:
    """The action's own effects; returns the complaint columns to change and the event note."""
    cid = row["id"]
    if name == "dispatch":
        nodes = await platform.nodes(tenant)
        office = nodes.get(body.office)
        row_path = tuple(row["node_path"].split("/"))
        if office is None or office.level != "office" or not principal.covers(office.path) or office.path[: len(row_path)] != row_path:
            raise ValueError(f"office: {body.office!r} is not an office (所) under this complaint's node in your jurisdiction")
        return {"node_code": office.code, "node_path": "/".join(office.path)}, body.note
    if name == "accept":
        extra: dict[str, Any] = {}
        if body.enterprise_id:
            unit = await find_unit(conn, enterprise_id=body.enterprise_id, credit_code=None)
            if unit is None:
                raise ValueError("enterprise_id: no active ODR unit with this id")
            extra = {"enterprise_id": unit["id"], "odr_unit": True}
        elif row["enterprise_id"] is None:
            raise Conflict("cannot accept: the company is not an ODR unit; return it with a reason", ["return"])
        else:
            unit = await find_unit(conn, enterprise_id=str(row["enterprise_id"]), credit_code=None)
            if unit is None:
                raise Conflict("cannot accept: the company is no longer an active ODR unit", ["return"])
        d = await complaint_deadlines(platform, tenant, row["node_code"], dt.datetime.now(dt.timezone.utc))
        await schedule_complaint_clocks(
            conn, cid, d.contact.due, d.close.due, dt.timedelta(hours=platform.settings.warning_before_hours)
        )
        await record_notice(conn, outbox, tenant=tenant, row=row, recipient=f"enterprise:{unit['id']}", kind="new_case")
        return {
            **extra,
            "entered_odr_at": dt.datetime.now(dt.timezone.utc),
            "contact_due": d.contact.due,
            "close_due": d.close.due,
            "deadline_policy": d.policy,
            "deadline_policy_version": d.policy_version,
            "deadlines": msgspec.json.encode(d).decode(),
        }, body.note
    if name in ("return", "leave_odr"):
        await cancel_timers(conn, kinds=ALL_COMPLAINT_KINDS, complaint_id=cid)
        return {}, body.reason
    if name == "contact":
        await cancel_timers(conn, kinds=CONTACT_KINDS, complaint_id=cid)
        return {"contacted_at": dt.datetime.now(dt.timezone.utc)}, body.note
    if name == "negotiate":
        return {}, body.note
    if name == "feedback":
        fb: FeedbackBody = body
        await cancel_timers(conn, kinds=ALL_COMPLAINT_KINDS, complaint_id=cid)
        if row["consumer_account_id"] is not None:
            await record_notice(conn, outbox, tenant=tenant, row=row, recipient=f"account:{row['consumer_account_id']}", kind="feedback_submitted")
        return {
            "feedback": msgspec.json.encode(fb).decode(),
            "settled": fb.settled,
            "amount_recovered": fb.amount_recovered,
            **({"contacted_at": dt.datetime.now(dt.timezone.utc)} if row["contacted_at"] is None else {}),
        }, None
    if name == "close":
        if row["consumer_account_id"] is not None:
            await record_notice(conn, outbox, tenant=tenant, row=row, recipient=f"account:{row['consumer_account_id']}", kind="case_closed")
        return {"closed_at": dt.datetime.now(dt.timezone.utc)}, body.note
    if name == "withdraw":
        await cancel_timers(conn, kinds=ALL_COMPLAINT_KINDS, complaint_id=cid)
        return {}, body.note
    if name == "rate":
        return {"rating": body.satisfaction, "rating_comment": body.comment}, None
    if name == "spot_check" and body.feedback_untrue is not None:
        if row["feedback"] is None:
            raise Conflict("feedback_untrue: the complaint has no feedback yet to find untrue or true; spot-check without"
                           " a finding", allowed_actions(principal, row))
        if body.feedback_untrue and row["enterprise_id"] is not None:  # the unit learns of a finding against it
            await record_notice(conn, outbox, tenant=tenant, row=row, recipient=f"enterprise:{row['enterprise_id']}",
                          kind="feedback_found_untrue")
        return {"feedback_untrue": body.feedback_untrue}, body.note
    return {}, body.note  # supervision actions: the event is the record
