"""Who may see a complaint, who handles it (and so sees the consumer's contact details unmasked),
which actions a principal may take, and the view a principal gets.

- a consumer sees their own complaints; an enterprise specialist their enterprise's complaints once
  forwarded into ODR; a bureau role the complaints whose node lies in its subtree;
- the consumer, the enterprise's specialist while the case is in ODR, and the bureau node where the
  case sits handle it; everyone else sees name, phone and address masked.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import msgspec

from core.auth.principal import BUREAU_ROLES, Principal, Role
from core.complaints import states as S
from core.complaints.masking import mask_address, mask_name, mask_phone
from core.complaints.schemas import ComplaintView, ConsumerContact
from core.deadlines.counting import TZ


def _path(principal: Principal) -> str:
    return "/".join(principal.node_path)


def visible(principal: Principal, row: asyncpg.Record) -> bool:
    if principal.role is Role.CONSUMER:
        return row["consumer_account_id"] is not None and str(row["consumer_account_id"]) == principal.id
    if principal.role is Role.ENTERPRISE_SPECIALIST:
        return (
            row["enterprise_id"] is not None
            and str(row["enterprise_id"]) == principal.enterprise_id
            and row["entered_odr_at"] is not None
        )
    if principal.role in BUREAU_ROLES:
        return principal.covers(tuple(row["node_path"].split("/")))
    return False


def handles(principal: Principal, row: asyncpg.Record) -> bool:
    """Whether ``principal`` handles the case now (and so may see the consumer's contact details)."""
    if principal.role is Role.CONSUMER:
        return visible(principal, row)
    if principal.role is Role.ENTERPRISE_SPECIALIST:
        return visible(principal, row) and row["state"] in S.IN_ODR
    if principal.role in BUREAU_ROLES:
        return principal.node == row["node_code"]
    return False


def visibility_sql(principal: Principal, first_param: int) -> tuple[str, list[Any]]:
    """WHERE clause (and its parameters) selecting the complaints ``principal`` may see."""
    n = first_param
    if principal.role is Role.CONSUMER:
        return f"consumer_account_id = ${n}", [uuid.UUID(principal.id)]
    if principal.role is Role.ENTERPRISE_SPECIALIST and principal.enterprise_id:
        return f"enterprise_id = ${n} AND entered_odr_at IS NOT NULL", [uuid.UUID(principal.enterprise_id)]
    if principal.role in BUREAU_ROLES and principal.node_path:
        return f"(node_path = ${n} OR node_path LIKE ${n} || '/%')", [_path(principal)]
    return "false", []


_CANDIDATES: dict[tuple[Role, str], tuple[str, ...]] = {
    (role, state): tuple(a.name for a in S.ACTIONS.values() if state in a.sources and role in a.roles)
    for role in Role
    for state in S.STATES
}
"""The actions a role may take in a state, in ``ACTIONS`` order (who exactly may is :func:`_may`'s)."""


def allowed_actions(principal: Principal, row: asyncpg.Record) -> list[str]:
    candidates = _CANDIDATES.get((principal.role, row["state"]), ())
    return [name for name in candidates if _may(principal, row, name) is None]


def _may(principal: Principal, row: asyncpg.Record, action: str) -> str | None:
    """None when ``principal`` may take ``action`` on this complaint (state aside); else why not."""
    role = principal.role
    if role is Role.CONSUMER:
        if str(row["consumer_account_id"]) != principal.id:
            return "only the consumer who filed it"
        if action == "rate" and row["rating"] is not None:
            return "already rated"
        return None
    if role is Role.ENTERPRISE_SPECIALIST:
        return None if str(row["enterprise_id"]) == principal.enterprise_id else "only the enterprise concerned"
    if role in BUREAU_ROLES:
        if not principal.covers(tuple(row["node_path"].split("/"))):
            return "outside your jurisdiction"
        if action == "close" and row["settled"] is False:
            return "not settled: the case leaves ODR instead (leave_odr)"
        return None
    return "not allowed"


def local(moment: dt.datetime | None) -> dt.datetime | None:
    """``moment`` in Asia/Shanghai (``+08:00``), as the deadline explanation gives due moments."""
    return moment.astimezone(TZ) if moment is not None else None


def view(principal: Principal, row: asyncpg.Record) -> ComplaintView:
    show = handles(principal, row)
    contact = ConsumerContact(
        name=row["consumer_name"] if show else mask_name(row["consumer_name"]),
        phone=row["consumer_phone"] if show else mask_phone(row["consumer_phone"]),
        address=row["consumer_address"] if show else mask_address(row["consumer_address"]),
        masked=not show,
    )
    return ComplaintView(
        id=str(row["id"]),
        number=row["number"],
        state=row["state"],
        source=row["source"],
        company_name=row["company_name"],
        enterprise_id=str(row["enterprise_id"]) if row["enterprise_id"] else None,
        odr_unit=row["odr_unit"],
        node_code=row["node_code"],
        category=row["category"],
        subject=row["subject"],
        description=row["description"],
        amount_claimed=float(row["amount_claimed"]) if row["amount_claimed"] is not None else None,
        consumer=contact,
        entered_odr_at=local(row["entered_odr_at"]),
        contact_due=local(row["contact_due"]),
        close_due=local(row["close_due"]),
        deadline_policy=row["deadline_policy"],
        deadline_policy_version=row["deadline_policy_version"],
        deadlines_provisional=bool(row["deadlines_provisional"]),
        contacted_at=row["contacted_at"],
        feedback=msgspec.json.decode(row["feedback"]) if row["feedback"] else None,
        settled=row["settled"],
        amount_recovered=float(row["amount_recovered"]) if row["amount_recovered"] is not None else None,
        closed_at=row["closed_at"],
        rating=row["rating"],
        rating_comment=row["rating_comment"],
        breaches=list(row["breaches"]),
        feedback_untrue=row["feedback_untrue"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        allowed_actions=allowed_actions(principal, row),
    )


