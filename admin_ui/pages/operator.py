"""The platform operator's page: provinces (tenants), onboarding one from a manifest, and the installed
plugin packages. Everything goes through the API's operator handlers (``PlatformController``):
operators only, onboarding idempotent and all-or-nothing."""

from __future__ import annotations

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile

from admin_ui.forms import read_form
from admin_ui.pages.common import call_api
from admin_ui.render import page, require
from core.auth.principal import Role
from tenants.api import PlatformController
from tenants.manifest import parse_manifest

OPERATOR = {Role.OPERATOR}
MAX_MANIFEST_BYTES = 256 * 1024


async def _page(request: Request, *, status: int = 200, errors: dict | None = None, form: dict | None = None,
                result: object = None) -> Response:
    require(request, OPERATOR)
    tenants = await call_api(PlatformController.list_tenants, request)
    plugins = await call_api(PlatformController.list_plugins, request)
    clusters = await call_api(PlatformController.list_clusters, request)
    return page(request, "operator.html", status=status, tenants=tenants, plugins=plugins, clusters=clusters,
                cluster_options=[{"value": c.name, "label": c.name} for c in clusters], errors=errors or {},
                form=form or {}, result=result)


@get("/operator")
async def operator_home(request: Request) -> Response:
    return await _page(request)


@post("/operator/tenants")
async def onboard(request: Request) -> Response:
    require(request, OPERATOR)
    data = await read_form(request)
    text = str(data.get("manifest") or "")
    upload = data.get("manifest_file")
    if isinstance(upload, UploadFile):
        raw = await upload.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            return await _page(request, status=413, errors={"manifest_file": f"at most {MAX_MANIFEST_BYTES} bytes"})
        text = raw.decode("utf-8", errors="replace")
    cluster = str(data.get("cluster") or "primary")
    if not text.strip():
        return await _page(request, status=400, errors={"manifest": "required / 必填"})
    try:
        manifest = parse_manifest(text.encode())
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        return await _page(request, status=400, errors={"manifest": str(exc)}, form={"manifest": text})
    try:
        answer = await call_api(PlatformController.create_tenant, request, data=manifest, cluster=cluster)
    except ValueError as exc:
        field = "cluster" if str(exc).startswith("cluster:") else "manifest"
        return await _page(request, status=400, errors={field: str(exc)}, form={"manifest": text, "cluster": cluster})
    return await _page(request, status=answer.status_code, result=answer.content)


HANDLERS = [operator_home, onboard]
