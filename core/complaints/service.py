"""Complaint commands and queries. Each command is one tenant transaction; each change writes an
append-only event in the same transaction.

Who may see a complaint (others get 404), who sees the consumer's contact details unmasked, and
which actions a principal may take are decided in :mod:`core.complaints.access`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import msgspec

from core.api.errors import Conflict, Forbidden
from core.auth.principal import BUREAU_ROLES, Principal, Role
from core.complaints import batching
from core.complaints import states as S
from core.complaints.access import _may, allowed_actions, view, visibility_sql, visible
from core.complaints.schemas import (
    ComplaintIntake,
    ComplaintView,
    EventView,
    FeedbackBody,
    IntakeResult,
)
from core.db.engine import tenant_transaction
from core.deadlines.service import ComplaintDeadlines, complaint_deadlines
from core.notifications.bus import Notice
from core.notifications.deliver import Outgoing
from core.notifications.deliver import record as record_notification
from core.runtime import Platform
from core.timers.schedule import (
    ALL_COMPLAINT_KINDS,
    CONTACT_KINDS,
    complaint_clocks,
    schedule_complaint_clocks,
)
from core.timers.schedule import cancel as cancel_timers

ODR_NOTICE = (
    "该企业是全国12315平台在线消费纠纷解决（ODR）企业，可直接与其协商解决。"
    " / This company is an ODR enterprise on the national 12315 platform: you may settle with it directly."
)
COMPLAINT_COLUMNS = """id, number, state, source, consumer_account_id, consumer_name, consumer_phone, consumer_address,
    enterprise_id, company_name, odr_unit, node_code, node_path, category, subject, description, amount_claimed,
    entered_odr_at, contact_due, close_due, deadline_policy, deadline_policy_version, contacted_at, feedback,
    settled, amount_recovered, closed_at, rating, rating_comment, breaches, feedback_untrue, created_at, updated_at,
    coalesce((deadlines->>'provisional')::boolean, false) AS deadlines_provisional"""
"""``deadlines_provisional`` is read from the stored explanation (``ComplaintDeadlines.provisional``)."""


# -- shared pieces ---------------------------------------------------------------------------------
async def find_unit(conn: asyncpg.Connection, *, enterprise_id: str | None, credit_code: str | None) -> asyncpg.Record | None:
    """The active ODR unit named by id or credit code; a member merchant resolves to its host unit.

    Not :func:`core.enterprises.common.find_active_unit`: that one also requires the member merchant
    itself to be active (here only the host's status counts) and normalises the credit code."""
    if enterprise_id:
        try:
            key = uuid.UUID(enterprise_id)
        except ValueError:
            raise ValueError("enterprise_id: not a valid id") from None
        row = await conn.fetchrow(
            "SELECT id, name, node_code, status, host_unit_id FROM enterprises WHERE id = $1", key
        )
    elif credit_code:
        row = await conn.fetchrow(
            "SELECT id, name, node_code, status, host_unit_id FROM enterprises WHERE credit_code = $1", credit_code
        )
    else:
        return None
    if row is not None and row["host_unit_id"] is not None:
        row = await conn.fetchrow(
            "SELECT id, name, node_code, status, host_unit_id FROM enterprises WHERE id = $1", row["host_unit_id"]
        )
    return row if row is not None and row["status"] == "active" else None


def _timer_args(platform: Platform, d: ComplaintDeadlines) -> tuple[list[str], list[dt.datetime]]:
    """The complaint's four clocks (kinds, due moments) for the intake statement's timers."""
    return complaint_clocks(d.contact.due, d.close.due, dt.timedelta(hours=platform.settings.warning_before_hours))


async def _event(conn, complaint_id, kind: str, principal: Principal, node_code: str | None, before=None, after=None, note=None) -> None:
    await conn.execute(
        """INSERT INTO complaint_events (complaint_id, kind, actor_id, actor_role, node_code, before, after, note)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        complaint_id,
        kind,
        principal.id,
        principal.role.value,
        node_code,
        msgspec.json.encode(before).decode() if before is not None else None,
        msgspec.json.encode(after).decode() if after is not None else None,
        note,
    )


async def _notify(conn, outbox: list[Outgoing] | None, *, tenant: str, row, recipient: str, kind: str) -> None:
    """Record a notification in this transaction; it is pushed after commit by whoever holds ``outbox``."""
    out = await record_notification(
        conn,
        tenant=tenant,
        kind=kind,
        recipients=[recipient],
        payload={"complaint_number": row["number"], "state": row["state"]},
        node_code=row["node_code"],
        complaint_id=row["id"],
    )
    if outbox is not None:
        outbox.append(out)


# -- intake ----------------------------------------------------------------------------------------
_UNIT_CACHE: dict[tuple[str, str], tuple[uuid.UUID, str]] = {}


async def _resolve_unit(conn, tenant: str, data: ComplaintIntake, *, fresh: bool) -> tuple[uuid.UUID, str] | None:
    """(id, node_code) of the named active ODR unit; cached per process. The intake statement
    re-checks it (active, same node) atomically, so a stale entry never files a complaint wrongly."""
    name = data.enterprise_id or data.credit_code
    if not name:
        return None
    key = (tenant, name)
    if not fresh and key in _UNIT_CACHE:
        return _UNIT_CACHE[key]
    row = await find_unit(conn, enterprise_id=data.enterprise_id, credit_code=data.credit_code)
    if row is None:
        _UNIT_CACHE.pop(key, None)
        if data.enterprise_id:
            raise KeyError("enterprise_id: no active ODR unit with this id")
        return None
    if len(_UNIT_CACHE) > 50_000:
        _UNIT_CACHE.clear()
    _UNIT_CACHE[key] = (row["id"], row["node_code"])
    return _UNIT_CACHE[key]


def _cached_unit(tenant: str, data: ComplaintIntake) -> tuple[bool, tuple[uuid.UUID, str] | None]:
    """(known, unit) from the process cache alone: known is False when a database lookup is needed."""
    name = data.enterprise_id or data.credit_code
    if not name:
        return True, None
    unit = _UNIT_CACHE.get((tenant, name))
    return unit is not None, unit


FILED_COLUMNS = "id, number, entered_odr_at, created_at, updated_at"
"""What the database gives a complaint it files; the rest of the stored row is what the intake wrote."""


def _filed(row: batching.IntakeRow, rec) -> dict[str, Any]:
    """The complaint just filed from ``row``, as a row of ``COMPLAINT_COLUMNS`` (and its notification,
    ``notice_*``), without reading it back: ``row`` plus the columns the database generated (``rec``,
    at least ``FILED_COLUMNS``). Due moments in UTC, as the database returns them; the columns the
    intake leaves out are NULL, ``breaches`` empty (their defaults). Tests compare it with the
    complaint read back."""
    utc = dt.timezone.utc
    return {
        "id": rec["id"],
        "number": rec["number"],
        "state": row.state,
        "source": row.source,
        "consumer_account_id": row.consumer_account_id,
        "consumer_name": row.consumer_name,
        "consumer_phone": row.consumer_phone,
        "consumer_address": row.consumer_address,
        "enterprise_id": row.enterprise_id,
        "company_name": row.company_name,
        "odr_unit": row.odr_unit,
        "node_code": row.node_code,
        "node_path": row.node_path,
        "category": row.category,
        "subject": row.subject,
        "description": row.description,
        "amount_claimed": row.amount_claimed,
        "entered_odr_at": rec["entered_odr_at"],
        "contact_due": row.contact_due.astimezone(utc) if row.contact_due is not None else None,
        "close_due": row.close_due.astimezone(utc) if row.close_due is not None else None,
        "deadline_policy": row.policy,
        "deadline_policy_version": row.policy_version,
        "deadlines_provisional": bool(row.explanation is not None and row.explanation.provisional),
        "contacted_at": None,
        "feedback": None,
        "settled": None,
        "amount_recovered": None,
        "closed_at": None,
        "rating": None,
        "rating_comment": None,
        "breaches": [],
        "feedback_untrue": None,
        "created_at": rec["created_at"],
        "updated_at": rec["updated_at"],
        "notice_id": rec["notice_id"],
        "notice_recipient": rec["notice_recipient"],
        "notice_at": rec["notice_at"],
    }


def _outgoing(tenant: str, row) -> Outgoing:
    payload = {"complaint_number": row["number"], "state": row["state"]}
    return Outgoing(
        tenant=tenant, node_code=row["node_code"], kind="new_case", recipients=[row["notice_recipient"]],
        payload=payload,
        notices=[Notice(id=row["notice_id"], tenant=tenant, recipient=row["notice_recipient"], kind="new_case",
                        complaint_id=str(row["id"]), payload=payload, created_at=row["notice_at"])],
    )


async def intake(
    platform: Platform, tenant: str, principal: Principal, data: ComplaintIntake, outbox: list[Outgoing] | None = None
) -> IntakeResult:
    """File a complaint. A retried submission with the same idempotency key returns the first one.
    Notifications recorded for it are appended to ``outbox`` for delivery after commit.

    Common path: the ODR unit is known to this process, and the intake joins the tenant's next group
    commit (:mod:`core.complaints.batching`); otherwise, or when the batch cannot decide, it is filed in
    its own transaction."""
    if principal.role is Role.CONSUMER:
        source = "consumer"
    elif principal.role in BUREAU_ROLES:
        source = "bureau_forwarded"
    else:
        raise Forbidden("consumers file complaints; bureau staff forward them")
    key = f"{principal.id}:{data.idempotency_key}" if data.idempotency_key else None
    nodes = await platform.nodes(tenant)
    if platform.settings.intake_batching:
        known, unit = _cached_unit(tenant, data)
        if known:
            row = await _intake_row(platform, tenant, principal, data, nodes, unit, source, key)
            b = batching.batcher(FILED_COLUMNS, platform.settings, existing_columns=COMPLAINT_COLUMNS)
            outcome = await b.submit(tenant, row)
            if outcome is not None:
                kind, rec = outcome
                if kind == "created":
                    return _created(tenant, principal, row, rec, unit, outbox)
                return IntakeResult(complaint=view(principal, rec), created=False, odr_notice=ODR_NOTICE if rec["odr_unit"] else None)
    async with tenant_transaction(tenant) as conn:
        for fresh in (False, True):
            unit = await _resolve_unit(conn, tenant, data, fresh=fresh)
            row = await _intake_row(platform, tenant, principal, data, nodes, unit, source, key)
            rec = await _insert(conn, row)
            if rec is not None:
                return _created(tenant, principal, row, rec, unit, outbox)
            if key is not None:
                existing = await conn.fetchrow(f"SELECT {COMPLAINT_COLUMNS} FROM complaints WHERE idempotency_key = $1", key)
                if existing is not None:
                    return IntakeResult(complaint=view(principal, existing), created=False,
                                        odr_notice=ODR_NOTICE if existing["odr_unit"] else None)
            # the cached unit changed (revoked, moved): look it up again
        raise RuntimeError("intake: the ODR unit changed twice during one request")


def _created(tenant: str, principal: Principal, row: batching.IntakeRow, rec, unit, outbox: list[Outgoing] | None) -> IntakeResult:
    filed = _filed(row, rec)
    if filed["notice_id"] is not None and outbox is not None:
        outbox.append(_outgoing(tenant, filed))
    return IntakeResult(complaint=view(principal, filed), created=True, odr_notice=ODR_NOTICE if unit else None)


async def _intake_row(platform, tenant, principal, data, nodes, unit, source, key) -> batching.IntakeRow:
    """Validate an intake and compute everything it writes (refusals are raised here, before any write)."""
    node_code = data.node_code or (unit[1] if unit else None)
    if node_code is None:
        raise ValueError("node_code: required when the company is not an active ODR unit")
    node = nodes.get(node_code)
    if node is None:
        raise ValueError(f"node_code: {node_code!r} is not a node of this province")
    if source == "bureau_forwarded" and not principal.covers(node.path):
        raise KeyError(f"node_code: {node_code!r} not found in your jurisdiction")
    if data.route == "odr" and unit is None:
        raise ValueError("route: the company is not an active ODR unit; choose route 'bureau'")
    direct = data.route == "odr"
    kinds: list[str] = []
    dues: list[dt.datetime] = []
    deadlines = None
    if direct:
        deadlines = await complaint_deadlines(platform, tenant, node_code, dt.datetime.now(dt.timezone.utc))
        kinds, dues = _timer_args(platform, deadlines)
    return batching.IntakeRow(
        key=key,
        source=source,
        consumer_account_id=uuid.UUID(principal.id) if source == "consumer" else None,
        consumer_name=data.consumer_name,
        consumer_phone=data.consumer_phone,
        consumer_address=data.consumer_address,
        enterprise_id=unit[0] if unit else None,
        company_name=data.company_name,
        odr_unit=unit is not None,
        node_code=node_code,
        node_path="/".join(node.path),
        category=data.category,
        subject=data.subject,
        description=data.description,
        amount_claimed=data.amount_claimed,
        state=S.WITH_ENTERPRISE if direct else S.REGISTERED,
        contact_due=deadlines.contact.due if deadlines else None,
        close_due=deadlines.close.due if deadlines else None,
        policy=deadlines.policy if deadlines else None,
        policy_version=deadlines.policy_version if deadlines else None,
        explanation=deadlines,
        actor_id=principal.id,
        actor_role=principal.role.value,
        route=data.route,
        timer_kinds=kinds,
        timer_dues=dues,
        unit_node=unit[1] if unit else None,
    )


async def _insert(conn, row: batching.IntakeRow) -> asyncpg.Record | None:
    """File one intake in the caller's transaction (the statement of a group commit, with one row):
    its ``FILED_COLUMNS`` and notification, or None when not filed (key seen, or unit changed)."""
    row.id = batching.new_id()
    rows = await conn.fetch(batching.intake_sql(FILED_COLUMNS), batching.encode_rows([row]))
    return rows[0] if rows else None


# -- queries ---------------------------------------------------------------------------------------
async def get(platform: Platform, tenant: str, principal: Principal, complaint_id: str) -> ComplaintView:
    async with tenant_transaction(tenant) as conn:
        row = await _load(conn, principal, complaint_id)
    return view(principal, row)


async def _load(conn, principal: Principal, complaint_id: str, *, lock: bool = False) -> asyncpg.Record:
    try:
        key = uuid.UUID(complaint_id)
    except ValueError:
        raise KeyError("complaint not found") from None
    row = await conn.fetchrow(
        f"SELECT {COMPLAINT_COLUMNS} FROM complaints WHERE id = $1" + (" FOR UPDATE" if lock else ""), key
    )
    if row is None or not visible(principal, row):
        raise KeyError("complaint not found")
    return row


async def search(
    platform: Platform, tenant: str, principal: Principal, *, state: str | None, limit: int, offset: int
) -> list[ComplaintView]:
    where, params = visibility_sql(principal, 1)
    sql = f"SELECT {COMPLAINT_COLUMNS} FROM complaints WHERE {where}"
    if state:
        if state not in S.STATES:
            raise ValueError(f"state: one of {', '.join(S.STATES)}")
        params.append(state)
        sql += f" AND state = ${len(params)}"
    sql += f" ORDER BY created_at DESC LIMIT {int(limit)} OFFSET {int(offset)}"
    async with tenant_transaction(tenant) as conn:
        rows = await conn.fetch(sql, *params)
    return [view(principal, r) for r in rows]


async def timeline(platform: Platform, tenant: str, principal: Principal, complaint_id: str) -> list[EventView]:
    async with tenant_transaction(tenant) as conn:
        row = await _load(conn, principal, complaint_id)
        events = await conn.fetch(
            "SELECT id, kind, actor_id, actor_role, node_code, at, before, after, note FROM complaint_events"
            " WHERE complaint_id = $1 ORDER BY id",
            row["id"],
        )
    return [
        EventView(**{**dict(e), "before": msgspec.json.decode(e["before"]) if e["before"] else None,
                     "after": msgspec.json.decode(e["after"]) if e["after"] else None})
        for e in events
    ]


async def deadlines(platform: Platform, tenant: str, principal: Principal, complaint_id: str) -> dict | None:
    async with tenant_transaction(tenant) as conn:
        row = await _load(conn, principal, complaint_id)
        raw = await conn.fetchval("SELECT deadlines FROM complaints WHERE id = $1", row["id"])
    return msgspec.json.decode(raw) if raw else None


# -- actions ---------------------------------------------------------------------------------------
async def act(
    platform: Platform, tenant: str, principal: Principal, complaint_id: str, name: str, body: Any,
    outbox: list[Outgoing] | None = None,
) -> ComplaintView:
    """Take action ``name``; one transaction with its event. Notifications go to ``outbox``."""
    action = S.ACTIONS.get(name)
    async with tenant_transaction(tenant) as conn:
        row = await _load(conn, principal, complaint_id, lock=True)
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
        await _event(conn, row["id"], name, principal, principal.node or new["node_code"], before, after, note)
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
        await _notify(conn, outbox, tenant=tenant, row=row, recipient=f"enterprise:{unit['id']}", kind="new_case")
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
            await _notify(conn, outbox, tenant=tenant, row=row, recipient=f"account:{row['consumer_account_id']}", kind="feedback_submitted")
        return {
            "feedback": msgspec.json.encode(fb).decode(),
            "settled": fb.settled,
            "amount_recovered": fb.amount_recovered,
            **({"contacted_at": dt.datetime.now(dt.timezone.utc)} if row["contacted_at"] is None else {}),
        }, None
    if name == "close":
        if row["consumer_account_id"] is not None:
            await _notify(conn, outbox, tenant=tenant, row=row, recipient=f"account:{row['consumer_account_id']}", kind="case_closed")
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
            await _notify(conn, outbox, tenant=tenant, row=row, recipient=f"enterprise:{row['enterprise_id']}",
                          kind="feedback_found_untrue")
        return {"feedback_untrue": body.feedback_untrue}, body.note
    return {}, body.note  # supervision actions: the event is the record
