"""ODR-unit applications (Art. 6-8): intake, document checks, and the reviewing bureau's reading of
applications and their documents.

Contract:
- :func:`read_application` checks a form beyond its types (Art. 6 conditions, liaisons, usernames)
  and reads its documents; :func:`check_document` bounds one document's size (1 byte .. 5 MiB, else
  413) and type (PDF/JPEG/PNG by content). Problems are :class:`~core.enterprises.common.FieldError`.
- Applications go to a county-level (district) bureau (:func:`check_reviewing_node`).
- :func:`submit_application` stores the application, its documents and liaisons in ONE tenant
  transaction (status ``applying``); a credit code whose unit is applying, active or suspended is
  refused (409), a rejected or revoked unit may apply again (its row is reused).
- Listing and reading applications and documents is for the reviewing bureau only (404 outside).
"""

from __future__ import annotations

import uuid

import asyncpg

from core.api.errors import NotFound
from core.auth.principal import Principal
from core.db.engine import as_platform, tenant_transaction
from core.enterprises.common import (
    _APPLICATION_COLUMNS,
    FieldError,
    _active_liaisons,
    _conflict,
    _json,
    _liaison,
    _money,
    _subtree,
    _unjson,
    require_reviewer,
)
from core.enterprises.schemas import (
    CONDITIONS,
    DOCUMENT_KINDS,
    LIAISON_ROLES,
    MAX_DOCUMENT_BYTES,
    ApplicationDetail,
    ApplicationForm,
    ApplicationSummary,
    Document,
    DocumentInfo,
    LiaisonInput,
    NewApplication,
    Submitted,
    UnitType,
)
from core.files import FileTooLarge, check_upload
from core.runtime import Node, Platform


# -- application (Art. 6-8) --------------------------------------------------------------------------
def check_document(kind: str, filename: str | None, content: bytes) -> Document:
    """Size (1 byte .. 5 MiB, else 413) and type (PDF/JPEG/PNG by content) of one uploaded document."""
    try:
        f = check_upload(kind, filename or f"{kind}", content, max_bytes=MAX_DOCUMENT_BYTES)
    except FileTooLarge as exc:
        raise FieldError(kind, str(exc).split(": ", 1)[-1], 413) from None
    except ValueError as exc:
        raise FieldError(kind, str(exc).split(": ", 1)[-1]) from None
    return Document(kind=kind, filename=f.filename, content_type=f.content_type, size=f.size, sha256=f.sha256, content=f.content)


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
            async with as_platform(conn) as pconn:
                for liaison in application.liaisons:
                    holder = await pconn.fetchrow("SELECT tenant, enterprise_id FROM odr.accounts WHERE username = $1", liaison.username)
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


# -- reading applications ----------------------------------------------------------------------------
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
