"""Complaint endpoints: intake, queries, actions of the state machine, timeline, messages, attachments;
consumer sign-up and the public ODR-unit check shown at intake (Art. 23)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, JSONBody, QueryParameter

from core.api.access import platform_of, tenant_member
from core.api.errors import Forbidden
from core.api.requests import CommandRequest
from core.auth.accounts import AccountExists, create_account
from core.auth.passwords import hash_password
from core.auth.principal import Principal, Role
from core.complaints import records, service
from core.complaints.schemas import (
    ACTION_BODIES,
    ComplaintIntake,
    ComplaintView,
    ConsumerSignup,
    EventView,
    IntakeResult,
    MessageBody,
    MessageView,
)
from core.db.engine import platform_transaction, tenant_transaction
from core.files import check_upload, download_headers
from core.notifications.deliver import deliver


async def _deliver(request: Request, outbox: list) -> None:
    """Push notifications recorded by a committed command (never raises)."""
    for out in outbox:
        await deliver(platform_of(request), getattr(request.app.state, "notify_bus", None), out)


class ComplaintController(Controller):
    path = "/api/tenants/{tenant:str}/complaints"
    tags = ["complaints"]
    request_class = CommandRequest

    @post("/")
    async def file(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], data: JSONBody[ComplaintIntake]
    ) -> Response[IntakeResult]:
        """File a complaint (consumer) or forward one from 12315 (bureau). 201 when created; 200 with
        the first complaint when the idempotency key was seen before. Tells when the company is an ODR
        unit (``odr_notice``)."""
        platform, principal = await tenant_member(request, tenant)
        outbox: list = []
        result = await service.intake(platform, tenant, principal, data, outbox)
        await _deliver(request, outbox)
        return Response(result, status_code=201 if result.created else 200)

    @get("/")
    async def list_(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str],
        state_filter: Annotated[str | None, QueryParameter(name="state")] = None,
        limit: Annotated[int, QueryParameter(name="limit", ge=1, le=500)] = 100,
        offset: Annotated[int, QueryParameter(name="offset", ge=0, le=1_000_000)] = 0,
    ) -> list[ComplaintView]:
        """The complaints the caller may see (consumer: own; specialist: their enterprise's; bureau: subtree)."""
        platform, principal = await tenant_member(request, tenant)
        return await service.search(platform, tenant, principal, state=state_filter, limit=limit, offset=offset)

    @get("/{complaint_id:str}")
    async def show(self, request: Request[Principal, Any, Any], tenant: FromPath[str], complaint_id: FromPath[str]) -> ComplaintView:
        """One complaint; the consumer's contact details are masked unless the caller handles the case."""
        platform, principal = await tenant_member(request, tenant)
        return await service.get(platform, tenant, principal, complaint_id)

    @post("/{complaint_id:str}/actions/{action:str}", status_code=200)
    async def act(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], complaint_id: FromPath[str], action: FromPath[str]
    ) -> ComplaintView:
        """Take an action: dispatch, accept, return, contact, negotiate, feedback, close, leave_odr,
        withdraw, rate, urge, spot_check, return_visit, interview. An action not allowed in the current
        state answers 409 with the allowed ones."""
        platform, principal = await tenant_member(request, tenant)
        body_type = ACTION_BODIES.get(action)
        if body_type is None:
            raise KeyError(f"action {action!r} does not exist; actions: {', '.join(ACTION_BODIES)}")
        raw = await request.body()
        body = msgspec.json.decode(raw or b"{}", type=body_type)
        outbox: list = []
        view = await service.act(platform, tenant, principal, complaint_id, action, body, outbox)
        await _deliver(request, outbox)
        return view

    @get("/{complaint_id:str}/timeline")
    async def timeline(self, request: Request[Principal, Any, Any], tenant: FromPath[str], complaint_id: FromPath[str]) -> list[EventView]:
        """Every recorded step, oldest first (append-only events)."""
        platform, principal = await tenant_member(request, tenant)
        return await service.timeline(platform, tenant, principal, complaint_id)

    @get("/{complaint_id:str}/deadlines")
    async def deadlines(self, request: Request[Principal, Any, Any], tenant: FromPath[str], complaint_id: FromPath[str]) -> dict | None:
        """How the complaint's due moments were derived (policy, clock, skipped days, due)."""
        platform, principal = await tenant_member(request, tenant)
        return await service.deadlines(platform, tenant, principal, complaint_id)

    @get("/{complaint_id:str}/messages")
    async def messages(self, request: Request[Principal, Any, Any], tenant: FromPath[str], complaint_id: FromPath[str]) -> list[MessageView]:
        """Messages between consumer, enterprise and bureau, with their attachments' metadata."""
        platform, principal = await tenant_member(request, tenant)
        async with tenant_transaction(tenant) as conn:
            row = await records.load_complaint(conn, principal, complaint_id)
            msgs = await conn.fetch(
                "SELECT id, author_role, author_id, body, at FROM complaint_messages WHERE complaint_id = $1 ORDER BY at, id",
                row["id"],
            )
            files = await conn.fetch(
                "SELECT id, message_id, filename, content_type, size FROM complaint_attachments WHERE complaint_id = $1",
                row["id"],
            )
        by_msg: dict[Any, list] = {}
        for f in files:
            by_msg.setdefault(f["message_id"], []).append(
                {"id": str(f["id"]), "filename": f["filename"], "content_type": f["content_type"], "size": f["size"]}
            )
        return [
            MessageView(id=str(m["id"]), author_role=m["author_role"], author_id=m["author_id"], body=m["body"], at=m["at"],
                        attachments=by_msg.get(m["id"], []))
            for m in msgs
        ]

    @post("/{complaint_id:str}/messages")
    async def post_message(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], complaint_id: FromPath[str],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> MessageView:
        """Post a message (multipart: ``body`` text and optional ``file`` — PDF/JPEG/PNG, ≤ 5 MiB)."""
        platform, principal = await tenant_member(request, tenant)
        text = data.get("body")
        if not isinstance(text, str):
            raise ValueError("body: a message text is required")
        msgspec.convert({"body": text}, MessageBody)
        upload = data.get("file")
        stored = None
        if upload is not None:
            if not isinstance(upload, UploadFile):
                raise ValueError("file: must be a file upload")
            stored = check_upload("file", upload.filename, await upload.read())
        async with tenant_transaction(tenant) as conn:
            row = await records.load_complaint(conn, principal, complaint_id)
            if row["state"] in ("closed", "returned", "withdrawn", "left_odr") and principal.role is not Role.CONSUMER and principal.role is Role.ENTERPRISE_SPECIALIST:
                raise Forbidden("the case is no longer with the enterprise")
            msg = await conn.fetchrow(
                "INSERT INTO complaint_messages (complaint_id, author_id, author_role, body) VALUES ($1,$2,$3,$4) RETURNING id, at",
                row["id"], principal.id, principal.role.value, text,
            )
            attachments = []
            if stored is not None:
                fid = await conn.fetchval(
                    """INSERT INTO complaint_attachments (complaint_id, message_id, filename, content_type, size, sha256, content, uploaded_by)
                       VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id""",
                    row["id"], msg["id"], stored.filename, stored.content_type, stored.size, stored.sha256, stored.content, principal.id,
                )
                attachments.append({"id": str(fid), "filename": stored.filename, "content_type": stored.content_type, "size": stored.size})
            await records.record_event(conn, row["id"], "message", principal, principal.node, note=None,
                                 after={"message": str(msg["id"]), "attachments": len(attachments)})
        return MessageView(id=str(msg["id"]), author_role=principal.role.value, author_id=principal.id, body=text, at=msg["at"],
                           attachments=attachments)

    @get("/{complaint_id:str}/attachments/{attachment_id:str}")
    async def attachment(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], complaint_id: FromPath[str], attachment_id: FromPath[str]
    ) -> Response[bytes]:
        """Download an attachment of a complaint the caller may see."""
        platform, principal = await tenant_member(request, tenant)
        async with tenant_transaction(tenant) as conn:
            row = await records.load_complaint(conn, principal, complaint_id)
            try:
                f = await conn.fetchrow(
                    "SELECT filename, content_type, content FROM complaint_attachments WHERE id = $1::uuid AND complaint_id = $2",
                    attachment_id, row["id"],
                )
            except Exception:
                f = None
        if f is None:
            raise KeyError("attachment not found")
        return Response(bytes(f["content"]), media_type=f["content_type"], headers=download_headers(f["filename"]))


class PublicConsumerController(Controller):
    path = "/public/{tenant:str}"
    tags = ["public"]

    @post("/consumers", status_code=201)
    async def sign_up(self, request: Request, tenant: FromPath[str], data: JSONBody[ConsumerSignup]) -> dict:
        """Create a consumer account in this province (to file and follow complaints)."""
        platform = platform_of(request)
        await platform.tenant(tenant)
        hashed = await hash_password(data.password, tenant=tenant)  # on the password pool, before any connection is held
        try:
            async with platform_transaction() as conn:
                account = await create_account(conn, username=data.username, password=data.password, role=Role.CONSUMER,
                                               tenant=tenant, display_name=data.display_name, password_hash=hashed)
        except AccountExists:
            return Response({"status_code": 409, "detail": "username: already taken", "field": "username"}, status_code=409)
        return {"id": str(account), "username": data.username}

    @get("/odr-check")
    async def odr_check(self, request: Request, tenant: FromPath[str], credit_code: FromQuery[str | None] = None,
                        name: FromQuery[str | None] = None) -> dict:
        """Whether a company is an active ODR unit here (shown to the consumer at intake, Art. 23)."""
        platform = platform_of(request)
        await platform.tenant(tenant)
        if not credit_code and not name:
            raise ValueError("credit_code: give a credit code or a name")
        async with tenant_transaction(tenant) as conn:
            if credit_code:
                row = await service.find_unit(conn, enterprise_id=None, credit_code=credit_code)
            else:
                row = await conn.fetchrow(
                    "SELECT id, name, node_code, status, host_unit_id FROM enterprises WHERE name = $1 AND status = 'active'", name
                )
        if row is None:
            return {"odr_unit": False}
        return {"odr_unit": True, "enterprise_id": str(row["id"]), "name": row["name"], "node_code": row["node_code"],
                "notice": service.ODR_NOTICE}
