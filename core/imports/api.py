"""Import endpoints: ``/api/tenants/{t}/imports`` — the tenant's column mapping, uploads of 12315 exports,
their preview, dry runs and imports (a run goes on in the background of the web process; its progress
and report are read back with ``GET .../imports/runs/{id}``).

Bad input is a 400 naming the field (``file``, ``format``, ``columns.<field>``, ``$.columns.amount`` of
a mapping); a file or run outside the caller's subtree is a 404; roles other than the provincial admin
and city bureaus get 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, JSONBody

from core.api.access import platform_of, tenant_member
from core.api.requests import CommandRequest
from core.auth.principal import Principal
from core.imports import service
from core.imports.mapping import ColumnMapping, mapping_from_dict, mapping_from_toml, mapping_to_toml
from core.imports.reading import MAX_BYTES

@dataclass
class UploadForm:
    """The upload's form: ``file``, the export."""

    file: UploadFile | None = None


class MappingText(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A mapping as TOML text (what the console edits)."""

    toml: Annotated[str, msgspec.Meta(max_length=100_000)]


async def start(request: Request, platform, tenant: str, principal: Principal, file_id: str, *, dry_run: bool,
                wait: bool) -> service.ImportReport:
    return await service.launch_run(platform, tenant, principal, file_id, dry_run=dry_run, wait=wait,
                                    bus=getattr(request.app.state, "notify_bus", None))


class ImportController(Controller):
    path = "/api/tenants/{tenant:str}/imports"
    tags = ["imports"]
    request_class = CommandRequest

    @get("/mapping")
    async def get_mapping(self, request: Request[Principal, Any, Any], tenant: FromPath[str]) -> ColumnMapping:
        """The tenant's column mapping for complaint imports (the national layout unless one was saved)."""
        platform, principal = await tenant_member(request, tenant)
        return await service.tenant_mapping(platform, tenant, principal)

    @put("/mapping")
    async def put_mapping(self, request: Request[Principal, Any, Any], tenant: FromPath[str],
                          data: JSONBody[dict[str, Any]]) -> ColumnMapping:
        """Save the tenant's column mapping: a ``ColumnMapping`` as JSON (merged over the national
        default), or ``{"toml": "..."}``. 400 naming the field when malformed."""
        platform, principal = await tenant_member(request, tenant)
        if set(data) == {"toml"}:
            mapping = mapping_from_toml(msgspec.convert(data, MappingText).toml)
        else:
            mapping = mapping_from_dict(data)
        return await service.set_tenant_mapping(platform, tenant, principal, mapping)

    @get("/mapping.toml", media_type="application/toml")
    async def get_mapping_toml(self, request: Request[Principal, Any, Any], tenant: FromPath[str]) -> str:
        """The tenant's column mapping as TOML (a starting point for ``odr import --mapping``)."""
        platform, principal = await tenant_member(request, tenant)
        return mapping_to_toml(await service.tenant_mapping(platform, tenant, principal))

    @post("/", request_max_body_size=MAX_BYTES + 1024 * 1024, status_code=201)
    async def upload(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str],
        data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> service.ImportFile:
        """Upload a 12315 case export (``multipart/form-data``, field ``file``: ``.csv`` in UTF-8 or GB 18030,
        or ``.xlsx``; at most ``ODR_IMPORT_MAX_UPLOAD_MB``). Read whole in a separate process before it
        is kept for its preview, dry run and import: a limit exceeded (size, decompressed size, rows,
        columns, cell length, shared strings, time) is a 413 naming ``file``, the limit and its value;
        the province's share of expensive work taken: 503 with Retry-After."""
        platform, principal = await tenant_member(request, tenant)
        service.require_importer(principal, await platform.nodes(tenant))
        upload = data.file
        if not isinstance(upload, UploadFile):
            raise ValueError("file: a file upload is required")
        return await service.store_file(tenant, principal, platform, upload.filename or "", await upload.read())

    @get("/{file_id:str}/preview")
    async def preview(self, request: Request[Principal, Any, Any], tenant: FromPath[str], file_id: FromPath[str],
                      rows: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10) -> service.Preview:
        """The first ``rows`` rows with the tenant's mapping applied: the header each field is read from,
        the fields without a column, each row's values (consumers' data masked; at most 200 characters
        of a cell) and its problems. Read in a separate process (413 naming the limit exceeded)."""
        platform, principal = await tenant_member(request, tenant)
        return await service.load_preview(tenant, principal, platform, file_id, rows=rows)

    @post("/{file_id:str}/dry-run", status_code=202)
    async def dry_run(self, request: Request[Principal, Any, Any], tenant: FromPath[str], file_id: FromPath[str],
                      wait: FromQuery[bool] = False) -> Response[service.ImportReport]:
        """Check every row (writes nothing): every refused row with line, field and problem, and how many
        rows would be created or are already present. 202 with the running report (poll
        ``GET .../imports/runs/{id}``); ``wait=true``: 200 with the final one."""
        platform, principal = await tenant_member(request, tenant)
        report = await start(request, platform, tenant, principal, file_id, dry_run=True, wait=wait)
        return Response(report, status_code=200 if wait else 202)

    @post("/{file_id:str}/run", status_code=202)
    async def run(self, request: Request[Principal, Any, Any], tenant: FromPath[str], file_id: FromPath[str],
                  wait: FromQuery[bool] = False) -> Response[service.ImportReport]:
        """Import the file: one transaction per batch of 500 rows, bad rows refused with line and field,
        idempotent on the registration number (counts: created, already present, refused). 202 with the
        running report (poll ``GET .../imports/runs/{id}`` for progress); ``wait=true``: 200 with the
        final one."""
        platform, principal = await tenant_member(request, tenant)
        report = await start(request, platform, tenant, principal, file_id, dry_run=False, wait=wait)
        return Response(report, status_code=200 if wait else 202)

    @post("/runs/{run_id:str}/resume", status_code=202)
    async def resume(self, request: Request[Principal, Any, Any], tenant: FromPath[str], run_id: FromPath[str],
                     wait: FromQuery[bool] = False) -> Response[service.ImportReport]:
        """Resume an ``interrupted`` run (its process died: no batch committed for
        ``ODR_IMPORT_STALE_SECONDS``) or a ``failed`` one, from its last committed batch with the mapping
        it started with; rows are counted and filed once. 202 with the running report (``wait=true``: 200
        with the final one); 409 when the run is done or still alive; 400 naming ``file`` when the file's
        content was removed by the retention."""
        platform, principal = await tenant_member(request, tenant)
        report = await service.resume_run(platform, tenant, principal, run_id, wait=wait,
                                          bus=getattr(request.app.state, "notify_bus", None))
        return Response(report, status_code=200 if wait else 202)

    @get("/runs/{run_id:str}")
    async def get_run(self, request: Request[Principal, Any, Any], tenant: FromPath[str],
                      run_id: FromPath[str]) -> service.ImportReport:
        """A run's progress (rows processed of the total, counts) and, once done, its refused rows; status
        ``running``, ``done``, ``failed``, or ``interrupted`` (still running but no batch committed for
        ``ODR_IMPORT_STALE_SECONDS``: its process died; ``resumable``)."""
        platform, principal = await tenant_member(request, tenant)
        return await service.get_run(tenant, principal, platform, run_id)
