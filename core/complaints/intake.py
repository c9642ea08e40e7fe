"""Filing a complaint (``intake``): the consumer's own, or forwarded by a bureau (转办12315投诉), once per
idempotency key, in one tenant transaction with its event, its timers and the enterprise's
notification; grouped with others arriving together (:mod:`core.complaints.batching`) when
``ODR_INTAKE_BATCHING`` is on.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from core.api.errors import Forbidden
from core.auth.principal import BUREAU_ROLES, Principal, Role
from core.complaints import batching
from core.complaints import states as S
from core.complaints.access import view
from core.complaints.records import COMPLAINT_COLUMNS, ODR_NOTICE, find_unit, timer_args
from core.complaints.schemas import ComplaintIntake, IntakeResult
from core.db.engine import tenant_transaction
from core.deadlines.service import complaint_deadlines
from core.notifications.bus import Notice
from core.notifications.deliver import Outgoing
from core.runtime import Platform


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
        kinds, dues = timer_args(platform, deadlines)
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
