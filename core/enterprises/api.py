"""ODR-unit endpoints: applications (public and recommended), review, documents, units, liaisons,
status decisions, and the public directory (Art. 23)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, JSONBody, QueryParameter

from core.api.access import bureau_node, platform_of, tenant_member
from core.api.errors import Forbidden, problem
from core.auth.principal import POLICY_ROLES, Principal
from core.enterprises import service
from core.enterprises.schemas import (
    MAX_DOCUMENT_BYTES,
    ApplicationDetail,
    ApplicationForm,
    ApplicationSummary,
    DirectoryUnit,
    PublicNode,
    LiaisonChange,
    LiaisonChangeRequest,
    LiaisonFiled,
    LiaisonFiling,
    Review,
    ReviewOutcome,
    StatusDecision,
    Submitted,
    Unit,
    UnitDetail,
)
from core.enterprises.service import FieldError
from core.files import download_headers

# four documents of at most 5 MiB each, plus the form fields
MAX_APPLICATION_BYTES = 4 * MAX_DOCUMENT_BYTES + 1024 * 1024
MultipartApplication = Annotated[ApplicationForm, Body(media_type=RequestEncodingType.MULTI_PART)]


def field_problem(request: Request, exc: FieldError) -> Response:
    return problem(exc.status_code, str(exc), field=exc.field)


def _node_or_own(principal: Principal, node: str | None) -> str:
    code = node or principal.node
    if code is None:
        raise Forbidden("bureau roles only")
    return code


class PublicEnterpriseController(Controller):
    """No authentication: self-application (Art. 8) and the published directory (Art. 23)."""

    path = "/public/{tenant:str}"
    tags = ["ODR units (public)"]
    exception_handlers = {FieldError: field_problem}

    @post("/odr-applications", request_max_body_size=MAX_APPLICATION_BYTES, status_code=201)
    async def apply(self, request: Request, tenant: FromPath[str], data: MultipartApplication) -> Submitted:
        """Apply for ODR status yourself (Art. 7-8), to the district bureau named by ``node_code``.

        ``multipart/form-data``: the unit's facts, the five Art. 6 conditions (each must be true), the
        two liaisons (person in charge and staff: name, phone, desired username of the specialist
        account opened on approval) and the four documents ``application_letter``, ``commitment``,
        ``business_licence``, ``consumer_protection_statement`` (PDF/JPEG/PNG by content, at most 5 MiB
        each: 413 otherwise). Every problem names its field; nothing is stored unless all is well.
        409 when the credit code already has an applying, active or suspended unit."""
        platform = platform_of(request)
        await platform.tenant(tenant)
        application = await service.read_application(data)
        return await service.submit_application(platform, tenant, application, route="self", submitted_by="public")

    @get("/odr-units")
    async def directory(
        self,
        request: Request,
        tenant: FromPath[str],
        node: Annotated[str | None, QueryParameter(name="node", max_length=40, description="jurisdiction code: the district (or city, office) whose subtree to list")] = None,
        q: Annotated[str | None, QueryParameter(name="q", max_length=100, description="part of a name or credit code")] = None,
        name: Annotated[str | None, QueryParameter(name="name", max_length=100, description="part of the unit's (or a member merchant's) name")] = None,
        credit_code: Annotated[str | None, QueryParameter(name="credit_code", max_length=18, pattern=r"^[0-9A-Za-z]+$", description="the credit code or its beginning")] = None,
        unit_class: Annotated[str | None, QueryParameter(name="class", max_length=40, description="classification code, e.g. A")] = None,
        limit: Annotated[int, QueryParameter(name="limit", ge=1, le=500)] = 200,
        offset: Annotated[int, QueryParameter(name="offset", ge=0, le=1_000_000)] = 0,
    ) -> Response[list[DirectoryUnit]]:
        """The published list of active ODR units (Art. 23) in ``node``'s subtree (default: the whole
        province; the codes are in ``/public/{tenant}/jurisdictions``), ordered by name, searchable by
        ``name`` (substring), ``credit_code`` (prefix), ``q`` (either) and classification code
        (``class``). Member merchants of a host unit (e.g. a mall) are listed under it. Paginated with
        ``offset`` / ``limit``; the header ``X-Total-Count`` gives the number of matching units. No
        personal data."""
        units, total = await service.directory(platform_of(request), tenant, node=node, q=q, cls=unit_class, limit=limit,
                                               name=name, credit_code=credit_code, offset=offset)
        return Response(units, headers={"X-Total-Count": str(total), "Access-Control-Expose-Headers": "X-Total-Count"})

    @get("/jurisdictions")
    async def jurisdictions(self, request: Request, tenant: FromPath[str]) -> list[PublicNode]:
        """The province's jurisdiction tree (codes, names, levels), root first then in path order, for
        the directory's district filter."""
        platform = platform_of(request)
        await platform.tenant(tenant)
        nodes = await platform.nodes(tenant)
        return [PublicNode(code=n.code, parent_code=n.parent_code, level=n.level, name=n.name, name_en=n.name_en)
                for n in sorted(nodes.values(), key=lambda n: n.path)]


class EnterpriseController(Controller):
    """The bureau's and the unit's own side. Liaison names and phones are shown only to the reviewing
    bureau (bureau officer / province admin covering the unit) and the unit's specialists."""

    path = "/api/tenants/{tenant:str}"
    tags = ["ODR units"]
    exception_handlers = {FieldError: field_problem}

    # -- applications ----------------------------------------------------------------------------
    @post("/odr-applications", request_max_body_size=MAX_APPLICATION_BYTES, status_code=201)
    async def recommend(self, request: Request[Principal, Any, Any], tenant: FromPath[str], data: MultipartApplication) -> Submitted:
        """Lodge an application recommended by the bureau (Art. 7): same form as the public one; the
        caller (bureau officer or province admin) must cover ``node_code``."""
        platform, principal, node = await bureau_node(request, tenant, data.node_code, POLICY_ROLES)
        service.check_reviewing_node(await platform.nodes(tenant), node.code)
        application = await service.read_application(data)
        return await service.submit_application(
            platform, tenant, application, route="recommended", submitted_by=principal.username,
            recommended_by=principal.node,
        )

    @get("/odr-applications")
    async def applications(
        self,
        request: Request[Principal, Any, Any],
        tenant: FromPath[str],
        node: Annotated[str | None, QueryParameter(name="node")] = None,
        status: Annotated[Literal["submitted", "approved", "rejected"] | None, QueryParameter(name="status")] = None,
    ) -> list[ApplicationSummary]:
        """Applications lodged in ``node``'s subtree (default: the caller's node), newest first;
        reviewing bureaus only."""
        platform, principal = await tenant_member(request, tenant)
        return await service.list_applications(platform, tenant, principal, node=_node_or_own(principal, node), status=status)

    @get("/odr-applications/{application_id:uuid}")
    async def application(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], application_id: FromPath[uuid.UUID]
    ) -> ApplicationDetail:
        """One application with its conditions, liaisons, documents' metadata and review; reviewing
        bureau only (404 elsewhere)."""
        platform, principal = await tenant_member(request, tenant)
        return await service.get_application(platform, tenant, principal, application_id)

    @get("/odr-applications/{application_id:uuid}/documents/{kind:str}", media_type="application/octet-stream")
    async def document(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], application_id: FromPath[uuid.UUID], kind: FromPath[str]
    ) -> Response[bytes]:
        """Download one document (``application_letter``, ``commitment``, ``business_licence``,
        ``consumer_protection_statement``); reviewing bureau only."""
        platform, principal = await tenant_member(request, tenant)
        filename, content_type, content = await service.get_document(platform, tenant, principal, application_id, kind)
        return Response(
            content,
            media_type=content_type,
            headers=download_headers(filename),
        )

    @post("/odr-applications/{application_id:uuid}/review", status_code=200)
    async def review(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], application_id: FromPath[uuid.UUID], data: JSONBody[Review]
    ) -> ReviewOutcome:
        """Decide an application (Art. 9): ``method`` written / site_inspection / comprehensive. The
        active standing-check plugin is asked first and its answer stored (a ``listed`` company cannot
        be approved: 409). Approval activates the unit, classifies it (active classification plugin,
        else null) and opens its specialists' accounts, whose initial passwords are returned in this
        answer only. Rejection needs ``reason``."""
        platform, principal = await tenant_member(request, tenant)
        return await service.review_application(platform, tenant, principal, application_id, data)

    # -- units -----------------------------------------------------------------------------------
    @get("/odr-units")
    async def units(
        self,
        request: Request[Principal, Any, Any],
        tenant: FromPath[str],
        node: Annotated[str | None, QueryParameter(name="node")] = None,
        status: Annotated[
            Literal["applying", "active", "suspended", "revoked", "rejected"] | None, QueryParameter(name="status")
        ] = None,
        q: Annotated[str | None, QueryParameter(name="q", max_length=100)] = None,
    ) -> list[Unit]:
        """ODR units in ``node``'s subtree (default: the caller's node), any status; bureau roles."""
        platform, principal = await tenant_member(request, tenant)
        return await service.list_units(platform, tenant, principal, node=_node_or_own(principal, node), status=status, q=q)

    @get("/odr-units/{enterprise_id:uuid}")
    async def unit(self, request: Request[Principal, Any, Any], tenant: FromPath[str], enterprise_id: FromPath[uuid.UUID]) -> UnitDetail:
        """One unit with its current liaisons (names, phones) and unfiled liaison changes: the
        reviewing bureau or the unit's own specialists."""
        platform, principal = await tenant_member(request, tenant)
        return await service.get_unit(platform, tenant, principal, enterprise_id)

    @post("/odr-units/{enterprise_id:uuid}/liaison-changes", status_code=201)
    async def liaison_change(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], enterprise_id: FromPath[uuid.UUID], data: JSONBody[LiaisonChangeRequest]
    ) -> LiaisonChange:
        """Report a liaison change (Art. 15), by the unit's specialist or its reviewing bureau: the new
        liaison is due within 5 working days of ``changed_on`` on the unit's node calendar (explained in
        ``deadline_explanation``); a breach is recorded if it is not filed by then."""
        platform, principal = await tenant_member(request, tenant)
        return await service.open_liaison_change(platform, tenant, principal, enterprise_id, data)

    @post("/odr-units/{enterprise_id:uuid}/liaison-changes/{change_id:uuid}/filing", status_code=200)
    async def file_liaison(
        self,
        request: Request[Principal, Any, Any],
        tenant: FromPath[str],
        enterprise_id: FromPath[uuid.UUID],
        change_id: FromPath[uuid.UUID],
        data: JSONBody[LiaisonFiling],
    ) -> LiaisonFiled:
        """File the new liaison (name, phone; optional ``username`` for a new specialist account): closes
        the obligation, cancels its timer and replaces the active liaison of that role."""
        platform, principal = await tenant_member(request, tenant)
        return await service.file_liaison(platform, tenant, principal, enterprise_id, change_id, data)

    @get("/liaison-changes")
    async def liaison_changes(
        self,
        request: Request[Principal, Any, Any],
        tenant: FromPath[str],
        node: Annotated[str | None, QueryParameter(name="node")] = None,
        status: Annotated[Literal["open", "overdue", "filed"] | None, QueryParameter(name="status")] = None,
    ) -> list[LiaisonChange]:
        """Liaison-change obligations of the units in ``node``'s subtree (default: the caller's node);
        by default the unfiled ones (open and overdue), soonest due first. Bureau roles."""
        platform, principal = await tenant_member(request, tenant)
        return await service.list_liaison_changes(platform, tenant, principal, node=_node_or_own(principal, node), status=status)

    # -- status (Art. 22) ------------------------------------------------------------------------
    @post("/odr-units/{enterprise_id:uuid}/suspension", status_code=200)
    async def suspend(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], enterprise_id: FromPath[uuid.UUID], data: JSONBody[StatusDecision | None] = None
    ) -> Unit:
        """Suspend an active unit on an Art. 22 ``ground`` (reviewing bureau); its specialist accounts
        are closed until reinstatement."""
        platform, principal = await tenant_member(request, tenant)
        return await service.change_status(platform, tenant, principal, enterprise_id, "suspend", data)

    @post("/odr-units/{enterprise_id:uuid}/reinstatement", status_code=200)
    async def reinstate(self, request: Request[Principal, Any, Any], tenant: FromPath[str], enterprise_id: FromPath[uuid.UUID]) -> Unit:
        """Reinstate a suspended unit (reviewing bureau); its current liaisons' accounts reopen."""
        platform, principal = await tenant_member(request, tenant)
        return await service.change_status(platform, tenant, principal, enterprise_id, "reinstate")

    @post("/odr-units/{enterprise_id:uuid}/revocation", status_code=200)
    async def revoke(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], enterprise_id: FromPath[uuid.UUID], data: JSONBody[StatusDecision | None] = None
    ) -> Unit:
        """Revoke ODR status (Art. 22) on one of its grounds: deliberate_delay_or_refusal,
        untrue_feedback, low_settlement_rate, abnormal_or_blacklisted, serious_violation,
        other_failure. Closes the unit's specialist accounts; records the deciding bureau."""
        platform, principal = await tenant_member(request, tenant)
        return await service.change_status(platform, tenant, principal, enterprise_id, "revoke", data)
