"""Review of ODR-unit applications (Art. 9): the standing check, classification, approval and rejection.

Contract:
- :func:`review_application` is the reviewing bureau's decision, in ONE tenant transaction: the
  standing-check plugin is asked first (a ``listed`` company cannot be approved, 409); a rejection
  must state its reason. Approval classifies the unit, makes it ``active`` and opens (or reopens) its
  specialist accounts in the shared schema in the same transaction; their one-time passwords are
  returned once.
- :func:`check_standing` and :func:`classify` only ask the active plugins (no database); a missing or
  malformed standing answer counts as ``unknown``, no classification scheme gives None.
"""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from core.api.errors import NotFound
from core.auth.principal import Principal
from core.db.engine import as_platform, tenant_transaction
from core.enterprises.common import (
    _APPLICATION_COLUMNS,
    _UNIT_COLUMNS,
    FieldError,
    _active_liaisons,
    _actor,
    _conflict,
    _json,
    _money,
    _open_account,
    _scopes,
    _unjson,
    require_reviewer,
    unit_from_row,
)
from core.enterprises.schemas import InitialCredential, Review, ReviewOutcome
from core.pluginhost.host import PluginUnavailable
from core.runtime import Platform
from odr_plugin_api import EnterpriseFacts, Scope

STANDING_STATUSES = ("clear", "listed", "unknown")


# -- review (Art. 9) ---------------------------------------------------------------------------------
def check_standing(platform: Platform, scope: Scope, active: frozenset[str], credit_code: str) -> dict:
    """The active standing-check plugin's answer, normalised; a malformed answer counts as unknown."""
    try:
        answer, plugin = platform.host.call_first(
            "odr_check_enterprise_standing", active=active, scope=scope, credit_code=credit_code
        )
    except PluginUnavailable as exc:
        return {"status": "unknown", "detail": f"no standing-check plugin could answer ({exc}); check manually", "source": None, "plugin": None}
    if not isinstance(answer, dict) or answer.get("status") not in STANDING_STATUSES:
        return {"status": "unknown", "detail": "the standing-check plugin gave a malformed answer; check manually", "source": plugin, "plugin": plugin}
    return {"status": answer["status"], "detail": str(answer.get("detail", "")), "source": str(answer.get("source", plugin)), "plugin": plugin}


def classify(platform: Platform, scope: Scope, active: frozenset[str], row: asyncpg.Record) -> dict | None:
    """The active classification scheme's answer, or None when no scheme is active (or all failed)."""
    facts = EnterpriseFacts(
        unit_type=row["unit_type"],
        industry=row["industry"],
        employees=row["employees"],
        annual_revenue_cny=_money(row["annual_revenue_cny"]),
        business_scope=row["business_scope"],
    )
    try:
        result, plugin = platform.host.call_first("odr_classify_enterprise", active=active, scope=scope, facts=facts)
    except PluginUnavailable:
        return None
    return {**msgspec.to_builtins(result), "plugin": plugin}


async def review_application(
    platform: Platform, tenant: str, principal: Principal, application_id: uuid.UUID, review: Review
) -> ReviewOutcome:
    """Approve or reject (Art. 9) after the standing check; approval opens the specialist accounts."""
    reason = (review.reason or "").strip()
    if review.decision == "reject" and not reason:
        raise FieldError("reason", "a rejection must state its reason (Art. 9)")
    nodes, scope_at = await _scopes(platform, tenant)
    async with tenant_transaction(tenant) as conn:
        row = await conn.fetchrow(
            f"""SELECT {_APPLICATION_COLUMNS} FROM enterprise_applications a JOIN enterprises e ON e.id = a.enterprise_id
                WHERE a.id = $1 FOR UPDATE OF a, e""",
            application_id,
        )
        if row is None:
            raise NotFound("application not found")
        require_reviewer(principal, nodes, row["node_code"], "application")
        if row["status"] != "submitted":
            raise _conflict("status", f"the application was already {row['status']}")
        scope, active = scope_at(row["node_code"])
        standing = await platform.host.off_loop(active, check_standing, platform, scope, active, row["credit_code"])
        if review.decision == "approve" and standing["status"] == "listed":
            raise _conflict(
                "decision",
                f"the standing check lists this company ({standing['detail']}); it cannot be approved (Art. 9)",
            )
        actor = _actor(principal)
        enterprise_id = row["enterprise_id"]
        await conn.execute(
            """UPDATE enterprise_applications SET status = $2, review_method = $3, reviewer = $4, reviewed_at = now(),
                   rejection_reason = $5, standing = $6::jsonb WHERE id = $1""",
            application_id,
            "approved" if review.decision == "approve" else "rejected",
            review.method,
            actor,
            reason or None,
            _json(standing),
        )
        credentials: list[InitialCredential] = []
        if review.decision == "reject":
            await conn.execute(
                "UPDATE enterprises SET status = 'rejected', status_changed_at = now(), status_changed_by = $2 WHERE id = $1",
                enterprise_id,
                actor,
            )
        else:
            classification = await platform.host.off_loop(active, classify, platform, scope, active, row)
            await conn.execute(
                """UPDATE enterprises SET status = 'active', approved_at = now(), approved_by = $2, classification = $3::jsonb,
                       status_changed_at = now(), status_changed_by = $2, revocation_ground = NULL, revocation_detail = NULL
                   WHERE id = $1""",
                enterprise_id,
                actor,
                _json(classification),
            )
            requested = (_unjson(row["conditions"]) or {}).get("requested_usernames", {})
            liaisons = await _active_liaisons(conn, enterprise_id)
            opened = []
            async with as_platform(conn) as pconn:
                for liaison in liaisons:
                    username = requested.get(liaison["role"]) or f"odr-{str(enterprise_id)[:8]}-{liaison['role']}"
                    account_id, username, password = await _open_account(
                        pconn, tenant=tenant, enterprise_id=enterprise_id, unit_name=row["name"], role=liaison["role"], username=username
                    )
                    opened.append((liaison["id"], account_id))
                    credentials.append(InitialCredential(role=liaison["role"], username=username, password=password))
            await conn.executemany("UPDATE liaisons SET account_id = $2 WHERE id = $1", opened)
        unit = await conn.fetchrow(f"SELECT {_UNIT_COLUMNS} FROM enterprises e WHERE e.id = $1", enterprise_id)
    return ReviewOutcome(
        application_id=application_id, decision=review.decision, standing=standing, unit=unit_from_row(unit),
        initial_credentials=credentials,
    )
