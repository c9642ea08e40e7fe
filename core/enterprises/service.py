"""ODR units (enterprises): application, review, liaisons, status and the public directory.

Contract:
- Every command runs in ONE tenant transaction (:func:`~core.db.engine.tenant_transaction`); accounts
  in the shared schema are opened or closed in that same transaction through
  :func:`~core.db.engine.as_platform`, so an approval or a revocation is all or nothing.
- Plugin scopes are worked out from the cached jurisdiction tree and activations *before* the
  transaction opens (:func:`_scopes`), so hooks can be called inside it without nesting transactions.
- Access: the reviewing bureau is a ``bureau_officer`` / ``province_admin`` whose subtree covers the
  unit's node; outside it a unit or application does not exist (404). A specialist acts on their own
  unit only. Liaison names and phones are returned to those two only and are never logged.
- ``status_changed_by`` / ``approved_by`` record ``username@node`` (the person and the deciding bureau).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from typing import Any, Callable

import asyncpg
import msgspec

from core.api.errors import Forbidden, NotFound
from core.auth.accounts import create_account
from core.auth.passwords import hash_password
from core.auth.principal import POLICY_ROLES, Principal, Role
from core.db.engine import as_platform, tenant_transaction
from core.deadlines.counting import TZ, add_working_days
from core.deadlines.service import calendar_for
from core.enterprises.schemas import (
    CONDITIONS,
    DOCUMENT_KINDS,
    LIAISON_ROLES,
    MAX_DOCUMENT_BYTES,
    ApplicationDetail,
    ApplicationForm,
    ApplicationSummary,
    DirectoryClass,
    DirectoryMember,
    DirectoryUnit,
    Document,
    DocumentInfo,
    InitialCredential,
    Liaison,
    LiaisonChange,
    LiaisonChangeRequest,
    LiaisonFiled,
    LiaisonFiling,
    LiaisonInput,
    NewApplication,
    Review,
    ReviewOutcome,
    StatusDecision,
    Submitted,
    Unit,
    UnitDetail,
    UnitType,
)
from core.files import FileTooLarge, check_upload
from core.pluginhost.activations import effective_policy, make_scope
from core.pluginhost.host import PluginUnavailable
from core.runtime import Node, Platform
from core.timers.schedule import cancel, schedule
from odr_plugin_api import EnterpriseFacts, Scope

LIAISON_CHANGE_WORKING_DAYS = 5
ART15_BASIS = "全国12315互联网平台在线消费纠纷解决企业管理暂行办法 第十五条"
ROLE_LABEL = {"person_in_charge": "负责人 / person in charge", "staff": "联络员 / staff"}
STANDING_STATUSES = ("clear", "listed", "unknown")
_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\\"]")


class FieldError(ValueError):
    """A request problem tied to one field; the API answers ``status_code`` naming ``field``."""

    def __init__(self, field: str, message: str, status_code: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status_code = status_code


def _conflict(field: str, message: str) -> FieldError:
    return FieldError(field, message, 409)


# -- helpers -----------------------------------------------------------------------------------------
def _json(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def _unjson(raw: str | None) -> Any:
    return msgspec.json.decode(raw) if raw else None


def _actor(principal: Principal) -> str:
    return f"{principal.username}@{principal.node}" if principal.node else principal.username


async def _scopes(platform: Platform, tenant: str) -> tuple[dict[str, Node], Callable[[str], tuple[Scope, frozenset[str]]]]:
    """The tenant's nodes and a function giving a node's hook scope, usable inside a transaction."""
    nodes = await platform.nodes(tenant)
    activations = await platform.activations(tenant)

    def scope_at(node_code: str) -> tuple[Scope, frozenset[str]]:
        policy = effective_policy(platform.host, tenant, nodes[node_code].path, activations)
        return make_scope(platform.host, policy), policy.active

    return nodes, scope_at


def _subtree(nodes: dict[str, Node], node_code: str) -> list[str]:
    path = nodes[node_code].path
    return [c for c, n in nodes.items() if n.path[: len(path)] == path]


def require_reviewer(principal: Principal, nodes: dict[str, Node], node_code: str, what: str = "ODR unit") -> None:
    """The reviewing bureau of a node: bureau officer / province admin covering it (404 outside)."""
    node = nodes.get(node_code)
    if node is None or not principal.covers(node.path):
        raise NotFound(f"{what} not found in your jurisdiction")
    if principal.role not in POLICY_ROLES:
        raise Forbidden(f"role {principal.role.value} may not do this; the reviewing bureau decides")


def _require_unit_party(principal: Principal, nodes: dict[str, Node], node_code: str, enterprise_id: uuid.UUID) -> None:
    """The unit's own specialist, or its reviewing bureau."""
    if principal.role is Role.ENTERPRISE_SPECIALIST:
        if principal.enterprise_id != str(enterprise_id):
            raise NotFound("ODR unit not found")
        return
    require_reviewer(principal, nodes, node_code)


# -- application (Art. 6-8) ---------------------------------------------------------------------------
def check_document(kind: str, filename: str | None, content: bytes) -> Document:
    """Size (1 byte .. 5 MiB, else 413) and type (PDF/JPEG/PNG by content) of one uploaded document."""
    try:
        f = check_upload(kind, filename or f"{kind}", content, max_bytes=MAX_DOCUMENT_BYTES)
    except FileTooLarge as exc:
        raise FieldError(kind, str(exc).split(": ", 1)[-1], 413) from None
    except ValueError as exc:
        raise FieldError(kind, str(exc).split(": ", 1)[-1]) from None
    name = _UNSAFE_FILENAME.sub("_", f.filename).strip() or kind
    return Document(kind=kind, filename=name, content_type=f.content_type, size=f.size, sha256=f.sha256, content=f.content)


async def read_application(form: ApplicationForm) -> NewApplication:
    """Check the form beyond its types (Art. 6 conditions, documents, usernames); read the files."""
    name = form.name.strip()
    if len(name) < 2:
        raise FieldError("name", "at least 2 characters")
    for condition in CONDITIONS:
        if not getattr(form, condition):
            raise FieldError(condition, "Art. 6 requires this condition to be met before applying")
    if form.person_in_charge_username == form.staff_username:
        raise FieldError("staff_username", "must differ from person_in_charge_username")
    if form.host_unit_id is not None and form.unit_type is UnitType.HOST_UNIT:
        raise FieldError("host_unit_id", "a host unit cannot itself be a member of another host unit")
    liaisons = []
    for role in LIAISON_ROLES:
        person = getattr(form, f"{role}_name").strip()
        if not person:
            raise FieldError(f"{role}_name", "must not be blank")
        liaisons.append(
            LiaisonInput(role=role, name=person, phone=getattr(form, f"{role}_phone").strip(), username=getattr(form, f"{role}_username"))
        )
    documents = []
    for kind in DOCUMENT_KINDS:
        upload = getattr(form, kind)
        content = await upload.read(MAX_DOCUMENT_BYTES + 1)
        await upload.close()
        documents.append(check_document(kind, upload.filename, content))
    blank = lambda v: (v.strip() or None) if isinstance(v, str) else v  # noqa: E731
    return NewApplication(
        name=name,
        credit_code=form.credit_code,
        unit_type=form.unit_type,
        node_code=form.node_code,
        host_unit_id=form.host_unit_id,
        industry=blank(form.industry),
        employees=form.employees,
        annual_revenue_cny=form.annual_revenue_cny,
        business_scope=blank(form.business_scope),
        address=blank(form.address),
        conditions={c: bool(getattr(form, c)) for c in CONDITIONS},
        liaisons=tuple(liaisons),
        documents=tuple(documents),
    )


def check_reviewing_node(nodes: dict[str, Node], node_code: str) -> Node:
    """Applications go to a county-level (district) bureau (Art. 7-8)."""
    node = nodes.get(node_code)
    if node is None:
        raise FieldError("node_code", "no such jurisdiction in this province")
    if node.level != "district":
        raise FieldError("node_code", "must be a district (county-level) bureau, which reviews applications (Art. 8)")
    return node


async def submit_application(
    platform: Platform,
    tenant: str,
    application: NewApplication,
    *,
    route: str,
    submitted_by: str,
    recommended_by: str | None = None,
) -> Submitted:
    """Store an application, its documents and liaisons in one transaction (status ``applying``).

    A credit code whose unit is applying, active or suspended is refused (409); a rejected or revoked
    unit may apply again (its row is reused, its old liaisons are closed).
    """
    nodes = await platform.nodes(tenant)
    check_reviewing_node(nodes, application.node_code)
    try:
        async with tenant_transaction(tenant) as conn:
            if application.host_unit_id is not None:
                host = await conn.fetchrow(
                    "SELECT unit_type, status FROM enterprises WHERE id = $1", application.host_unit_id
                )
                if host is None or host["unit_type"] != "host_unit" or host["status"] != "active":
                    raise FieldError("host_unit_id", "must name an active host unit (e.g. a shopping mall) of this province")
            existing = await conn.fetchrow(
                "SELECT id, status FROM enterprises WHERE credit_code = $1 FOR UPDATE", application.credit_code
            )
            if existing is not None and existing["status"] in ("applying", "active", "suspended"):
                raise _conflict("credit_code", f"this company already has an ODR unit that is {existing['status']}")
            async with as_platform(conn):
                for liaison in application.liaisons:
                    holder = await conn.fetchrow("SELECT tenant, enterprise_id FROM odr.accounts WHERE username = $1", liaison.username)
                    # a revoked unit applying again may get its own former accounts back
                    own = existing is not None and holder is not None and (holder["tenant"], holder["enterprise_id"]) == (tenant, existing["id"])
                    if holder is not None and not own:
                        raise _conflict(f"{liaison.role}_username", "this username is taken; choose another")
            fields = (
                application.name,
                application.unit_type.value,
                application.host_unit_id,
                application.node_code,
                application.industry,
                application.employees,
                application.annual_revenue_cny,
                application.business_scope,
                application.address,
            )
            if existing is None:
                enterprise_id = await conn.fetchval(
                    """INSERT INTO enterprises (name, unit_type, host_unit_id, node_code, industry, employees,
                           annual_revenue_cny, business_scope, address, credit_code)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id""",
                    *fields,
                    application.credit_code,
                )
            else:
                enterprise_id = existing["id"]
                await conn.execute(
                    """UPDATE enterprises SET name = $1, unit_type = $2, host_unit_id = $3, node_code = $4, industry = $5,
                           employees = $6, annual_revenue_cny = $7, business_scope = $8, address = $9,
                           status = 'applying', classification = NULL, approved_at = NULL, approved_by = NULL,
                           status_changed_at = now(), status_changed_by = $11
                       WHERE id = $10""",
                    *fields,
                    enterprise_id,
                    submitted_by,
                )
                await conn.execute("UPDATE liaisons SET active = false WHERE enterprise_id = $1 AND active", enterprise_id)
            conditions = {
                "art6": application.conditions,
                "requested_usernames": {l.role: l.username for l in application.liaisons},
            }
            application_id = await conn.fetchval(
                """INSERT INTO enterprise_applications (enterprise_id, route, recommended_by, conditions, submitted_by)
                   VALUES ($1, $2, $3, $4::jsonb, $5) RETURNING id""",
                enterprise_id,
                route,
                recommended_by,
                _json(conditions),
                submitted_by,
            )
            await conn.executemany(
                """INSERT INTO enterprise_documents (application_id, kind, filename, content_type, size, sha256, content)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                [(application_id, d.kind, d.filename, d.content_type, d.size, d.sha256, d.content) for d in application.documents],
            )
            await conn.executemany(
                "INSERT INTO liaisons (enterprise_id, role, name, phone) VALUES ($1, $2, $3, $4)",
                [(enterprise_id, l.role, l.name, l.phone) for l in application.liaisons],
            )
    except asyncpg.UniqueViolationError:
        raise _conflict("credit_code", "this company already has an ODR unit (submitted concurrently)") from None
    return Submitted(application_id=application_id, enterprise_id=enterprise_id)


# -- reading -----------------------------------------------------------------------------------------
_UNIT_COLUMNS = """e.id, e.name, e.credit_code, e.unit_type, e.host_unit_id, e.node_code, e.industry, e.employees,
    e.annual_revenue_cny, e.business_scope, e.address, e.status, e.classification, e.breach_count, e.approved_at,
    e.approved_by, e.status_changed_at, e.status_changed_by, e.revocation_ground, e.revocation_detail, e.created_at"""

_APPLICATION_COLUMNS = """a.id, a.enterprise_id, a.route, a.recommended_by, a.conditions, a.status, a.review_method,
    a.reviewer, a.reviewed_at, a.rejection_reason, a.standing, a.submitted_by, a.submitted_at,
    e.name, e.credit_code, e.unit_type, e.host_unit_id, e.node_code, e.industry, e.employees,
    e.annual_revenue_cny, e.business_scope, e.address"""

_CHANGE_COLUMNS = """c.id, c.enterprise_id, e.name AS enterprise_name, e.node_code, c.role, c.changed_on, c.due_at,
    c.filed_at, c.status"""


def _money(value: Any) -> float | None:
    return None if value is None else float(value)


def unit_from_row(row: asyncpg.Record) -> Unit:
    changed_by = row["status_changed_by"]
    return Unit(
        **{
            **{k: row[k] for k in row.keys()},
            "annual_revenue_cny": _money(row["annual_revenue_cny"]),
            "classification": _unjson(row["classification"]),
            "deciding_bureau": changed_by.rsplit("@", 1)[1] if changed_by and "@" in changed_by else None,
        }
    )


def _liaison(row: asyncpg.Record) -> Liaison:
    return Liaison(
        id=row["id"], role=row["role"], name=row["name"], phone=row["phone"], has_account=row["account_id"] is not None,
        filed_at=row["filed_at"],
    )


def _change(row: asyncpg.Record, explanation: Any = None) -> LiaisonChange:
    return LiaisonChange(**{k: row[k] for k in row.keys() if k != "deadline_explanation"}, deadline_explanation=explanation)


async def _active_liaisons(conn: asyncpg.Connection, enterprise_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, role, name, phone, account_id, filed_at FROM liaisons WHERE enterprise_id = $1 AND active ORDER BY role",
        enterprise_id,
    )


async def list_applications(
    platform: Platform, tenant: str, principal: Principal, *, node: str, status: str | None
) -> list[ApplicationSummary]:
    """Applications lodged with the bureaus of ``node``'s subtree (reviewing bureaus only)."""
    nodes = await platform.nodes(tenant)
    require_reviewer(principal, nodes, node, "node")
    async with tenant_transaction(tenant) as conn:
        rows = await conn.fetch(
            """SELECT a.id, a.enterprise_id, e.name, e.credit_code, e.unit_type, e.node_code, a.route, a.status, a.submitted_at
               FROM enterprise_applications a JOIN enterprises e ON e.id = a.enterprise_id
               WHERE e.node_code = ANY($1) AND ($2::text IS NULL OR a.status = $2)
               ORDER BY a.submitted_at DESC LIMIT 500""",
            _subtree(nodes, node),
            status,
        )
    return [ApplicationSummary(**dict(r)) for r in rows]


async def _application_detail(conn: asyncpg.Connection, row: asyncpg.Record) -> ApplicationDetail:
    docs = await conn.fetch(
        "SELECT kind, filename, content_type, size, sha256, uploaded_at FROM enterprise_documents WHERE application_id = $1 ORDER BY kind",
        row["id"],
    )
    conditions = _unjson(row["conditions"]) or {}
    return ApplicationDetail(
        **{k: row[k] for k in row.keys() if k not in ("conditions", "standing", "annual_revenue_cny")},
        annual_revenue_cny=_money(row["annual_revenue_cny"]),
        conditions=conditions.get("art6", {}),
        requested_usernames=conditions.get("requested_usernames", {}),
        standing=_unjson(row["standing"]),
        documents=[DocumentInfo(**dict(d)) for d in docs],
        liaisons=[_liaison(r) for r in await _active_liaisons(conn, row["enterprise_id"])],
    )


async def get_application(platform: Platform, tenant: str, principal: Principal, application_id: uuid.UUID) -> ApplicationDetail:
    nodes = await platform.nodes(tenant)
    async with tenant_transaction(tenant) as conn:
        row = await conn.fetchrow(
            f"SELECT {_APPLICATION_COLUMNS} FROM enterprise_applications a JOIN enterprises e ON e.id = a.enterprise_id WHERE a.id = $1",
            application_id,
        )
        if row is None:
            raise NotFound("application not found")
        require_reviewer(principal, nodes, row["node_code"], "application")
        return await _application_detail(conn, row)


async def get_document(
    platform: Platform, tenant: str, principal: Principal, application_id: uuid.UUID, kind: str
) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) of one application document; reviewing bureaus only."""
    if kind not in DOCUMENT_KINDS:
        raise NotFound(f"no document kind {kind!r}; kinds: {', '.join(DOCUMENT_KINDS)}")
    nodes = await platform.nodes(tenant)
    async with tenant_transaction(tenant) as conn:
        row = await conn.fetchrow(
            """SELECT e.node_code, d.filename, d.content_type, d.content
               FROM enterprise_applications a JOIN enterprises e ON e.id = a.enterprise_id
               LEFT JOIN enterprise_documents d ON d.application_id = a.id AND d.kind = $2
               WHERE a.id = $1""",
            application_id,
            kind,
        )
    if row is None:
        raise NotFound("application not found")
    require_reviewer(principal, nodes, row["node_code"], "application")
    if row["content"] is None:
        raise NotFound(f"document {kind} not found")
    return row["filename"], row["content_type"], bytes(row["content"])


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


async def _open_account(
    conn: asyncpg.Connection, *, tenant: str, enterprise_id: uuid.UUID, unit_name: str, role: str, username: str
) -> tuple[uuid.UUID, str, str]:
    """Open (or, for this unit's own closed account of that name, reopen) a specialist account with a
    fresh one-time password; a username taken by someone else gets a short suffix. Call inside
    :func:`as_platform`."""
    password = secrets.token_urlsafe(12)
    candidate = username
    for _ in range(20):
        row = await conn.fetchrow("SELECT id, tenant, enterprise_id, role FROM odr.accounts WHERE username = $1", candidate)
        if row is None:
            account_id = await create_account(
                conn, username=candidate, password=password, role=Role.ENTERPRISE_SPECIALIST, tenant=tenant,
                enterprise_id=enterprise_id, display_name=f"{unit_name} {ROLE_LABEL[role]}"[:200],
            )
            return account_id, candidate, password
        if row["tenant"] == tenant and row["enterprise_id"] == enterprise_id and row["role"] == Role.ENTERPRISE_SPECIALIST.value:
            await conn.execute(
                "UPDATE odr.accounts SET password_hash = $2, active = true WHERE id = $1", row["id"], hash_password(password)
            )
            return row["id"], candidate, password
        candidate = f"{username}-{secrets.token_hex(2)}"
    raise _conflict(f"{role}_username", "could not find a free username")


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
        standing = check_standing(platform, scope, active, row["credit_code"])
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
            classification = classify(platform, scope, active, row)
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
            async with as_platform(conn):
                for liaison in liaisons:
                    username = requested.get(liaison["role"]) or f"odr-{str(enterprise_id)[:8]}-{liaison['role']}"
                    account_id, username, password = await _open_account(
                        conn, tenant=tenant, enterprise_id=enterprise_id, unit_name=row["name"], role=liaison["role"], username=username
                    )
                    opened.append((liaison["id"], account_id))
                    credentials.append(InitialCredential(role=liaison["role"], username=username, password=password))
            await conn.executemany("UPDATE liaisons SET account_id = $2 WHERE id = $1", opened)
        unit = await conn.fetchrow(f"SELECT {_UNIT_COLUMNS} FROM enterprises e WHERE e.id = $1", enterprise_id)
    return ReviewOutcome(
        application_id=application_id, decision=review.decision, standing=standing, unit=unit_from_row(unit),
        initial_credentials=credentials,
    )


# -- units -------------------------------------------------------------------------------------------
async def list_units(
    platform: Platform, tenant: str, principal: Principal, *, node: str, status: str | None, q: str | None
) -> list[Unit]:
    """ODR units of ``node``'s subtree, for any bureau role covering it (no personal data)."""
    nodes = await platform.nodes(tenant)
    n = nodes.get(node)
    if n is None or not principal.covers(n.path):
        raise NotFound(f"node {node!r} not found in your jurisdiction")
    async with tenant_transaction(tenant) as conn:
        rows = await conn.fetch(
            f"""SELECT {_UNIT_COLUMNS} FROM enterprises e
                WHERE e.node_code = ANY($1) AND ($2::text IS NULL OR e.status = $2)
                  AND ($3::text IS NULL OR e.name ILIKE $3 OR e.credit_code ILIKE $3)
                ORDER BY e.name LIMIT 500""",
            _subtree(nodes, node),
            status,
            _like(q),
        )
    return [unit_from_row(r) for r in rows]


async def get_unit(platform: Platform, tenant: str, principal: Principal, enterprise_id: uuid.UUID) -> UnitDetail:
    """A unit with its liaisons and open liaison changes: its reviewing bureau or its own specialists."""
    nodes = await platform.nodes(tenant)
    async with tenant_transaction(tenant) as conn:
        row = await conn.fetchrow(f"SELECT {_UNIT_COLUMNS} FROM enterprises e WHERE e.id = $1", enterprise_id)
        if row is None:
            raise NotFound("ODR unit not found")
        _require_unit_party(principal, nodes, row["node_code"], enterprise_id)
        liaisons = await _active_liaisons(conn, enterprise_id)
        changes = await conn.fetch(
            f"""SELECT {_CHANGE_COLUMNS} FROM liaison_changes c JOIN enterprises e ON e.id = c.enterprise_id
                WHERE c.enterprise_id = $1 AND c.status <> 'filed' ORDER BY c.due_at""",
            enterprise_id,
        )
    return UnitDetail(unit=unit_from_row(row), liaisons=[_liaison(r) for r in liaisons], open_liaison_changes=[_change(c) for c in changes])


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
            async with as_platform(conn):
                if await conn.fetchval("SELECT 1 FROM odr.accounts WHERE username = $1", filing.username):
                    raise _conflict("username", "this username is taken; choose another")
                if account_id is not None:
                    await conn.execute("UPDATE odr.accounts SET active = false WHERE id = $1", account_id)
                account_id, username, password = await _open_account(
                    conn, tenant=tenant, enterprise_id=enterprise_id, unit_name=change["enterprise_name"], role=change["role"],
                    username=filing.username,
                )
                if change["unit_status"] != "active":
                    await conn.execute("UPDATE odr.accounts SET active = false WHERE id = $1", account_id)
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
    allowed_from, target = _TRANSITIONS[action]
    if action != "reinstate" and decision is None:
        raise FieldError("ground", "an Art. 22 ground is required")
    nodes = await platform.nodes(tenant)
    async with tenant_transaction(tenant) as conn:
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
            async with as_platform(conn):
                await conn.execute("UPDATE odr.accounts SET active = true WHERE id = ANY($1::uuid[])", account_ids)
        else:
            async with as_platform(conn):
                await conn.execute(
                    "UPDATE odr.accounts SET active = false WHERE tenant = $1 AND enterprise_id = $2 AND role = 'enterprise_specialist'",
                    tenant,
                    enterprise_id,
                )
        if action == "revoke":
            for change_id in await conn.fetch(
                "SELECT id FROM liaison_changes WHERE enterprise_id = $1 AND status = 'open'", enterprise_id
            ):
                await cancel(conn, kinds=("liaison_breach",), liaison_change_id=change_id["id"])
        row = await conn.fetchrow(f"SELECT {_UNIT_COLUMNS} FROM enterprises e WHERE e.id = $1", enterprise_id)
    return unit_from_row(row)


# -- public directory (Art. 23) ----------------------------------------------------------------------
def _like(q: str | None) -> str | None:
    if q is None or not q.strip():
        return None
    escaped = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def directory(
    platform: Platform, tenant: str, *, node: str | None, q: str | None, cls: str | None, limit: int = 200
) -> list[DirectoryUnit]:
    """Active ODR units of ``node``'s subtree (default: the whole province), member merchants listed
    under their host unit. ``q`` matches a unit's (or a member's) name or credit code; ``cls`` the
    classification code. Only public facts: never a liaison or any other person."""
    await platform.tenant(tenant)
    nodes = await platform.nodes(tenant)
    if node is None:
        node = next(c for c, n in nodes.items() if n.parent_code is None)
    elif node not in nodes:
        raise NotFound(f"node {node!r} not found")
    like = _like(q)
    async with tenant_transaction(tenant) as conn:
        units = await conn.fetch(
            """SELECT e.id, e.name, e.credit_code, e.unit_type, e.node_code, e.classification FROM enterprises e
               WHERE e.status = 'active' AND e.host_unit_id IS NULL AND e.node_code = ANY($1)
                 AND ($2::text IS NULL OR e.name ILIKE $2 OR e.credit_code ILIKE $2 OR EXISTS (
                       SELECT 1 FROM enterprises m WHERE m.host_unit_id = e.id AND m.status = 'active'
                         AND (m.name ILIKE $2 OR m.credit_code ILIKE $2)))
                 AND ($3::text IS NULL OR e.classification->>'code' = $3)
               ORDER BY e.name, e.credit_code LIMIT $4""",
            _subtree(nodes, node),
            like,
            cls,
            limit,
        )
        members = await conn.fetch(
            """SELECT host_unit_id, name, credit_code, unit_type, node_code FROM enterprises
               WHERE status = 'active' AND host_unit_id = ANY($1::uuid[]) ORDER BY name, credit_code""",
            [u["id"] for u in units if u["unit_type"] == "host_unit"],
        )
    by_host: dict[uuid.UUID, list[DirectoryMember]] = {}
    for m in members:
        by_host.setdefault(m["host_unit_id"], []).append(
            DirectoryMember(name=m["name"], credit_code=m["credit_code"], unit_type=m["unit_type"], district=_node_name(nodes, m["node_code"]))
        )
    out = []
    for u in units:
        c = _unjson(u["classification"])
        out.append(
            DirectoryUnit(
                id=u["id"],
                name=u["name"],
                credit_code=u["credit_code"],
                unit_type=u["unit_type"],
                node_code=u["node_code"],
                district=_node_name(nodes, u["node_code"]),
                classification=DirectoryClass(scheme=c["scheme"], code=c["code"], label=c["label"]) if c else None,
                members=by_host.get(u["id"], []),
            )
        )
    return out


def _node_name(nodes: dict[str, Node], code: str) -> str:
    node = nodes.get(code)
    return node.name if node else code


# -- for the complaints code -------------------------------------------------------------------------
async def find_active_unit(
    conn: asyncpg.Connection,
    *,
    enterprise_id: uuid.UUID | str | None = None,
    credit_code: str | None = None,
    name: str | None = None,
) -> dict | None:
    """The active ODR unit that handles complaints about a company, inside the caller's tenant
    transaction, looked up by id, else credit code, else exact name (a name shared by several units
    finds none). A member merchant resolves to its host unit, which must be active too; ``member``
    then names the merchant. Returns ``{id, name, credit_code, node_code, status, host_unit_id,
    member}`` or None."""
    columns = "id, name, credit_code, node_code, status, host_unit_id"
    if enterprise_id is not None:
        try:
            key = enterprise_id if isinstance(enterprise_id, uuid.UUID) else uuid.UUID(str(enterprise_id))
        except ValueError:
            raise FieldError("enterprise_id", "not a valid id") from None
        row = await conn.fetchrow(f"SELECT {columns} FROM enterprises WHERE id = $1", key)
    elif credit_code:
        row = await conn.fetchrow(f"SELECT {columns} FROM enterprises WHERE credit_code = $1", credit_code.strip().upper())
    elif name and name.strip():
        rows = await conn.fetch(f"SELECT {columns} FROM enterprises WHERE name = $1 AND status = 'active' LIMIT 2", name.strip())
        row = rows[0] if len(rows) == 1 else None
    else:
        return None
    if row is None or row["status"] != "active":
        return None
    member = None
    if row["host_unit_id"] is not None:
        member = {"id": row["id"], "name": row["name"], "credit_code": row["credit_code"]}
        row = await conn.fetchrow(f"SELECT {columns} FROM enterprises WHERE id = $1", row["host_unit_id"])
        if row is None or row["status"] != "active":
            return None
    return {**dict(row), "member": member}
