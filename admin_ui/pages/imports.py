"""Importing a 12315 case export in the console: upload, preview with the mapping, dry run, import with
a progress bar; the tenant's column mapping (TOML).

Contract:
- For the provincial admin and city bureaus (:func:`core.imports.service.require_importer`; anyone
  else gets 403). Everything goes through :mod:`core.imports.service`, as the API does.
- ``GET /ui/bureau/imports``: the upload form and the mapping editor. ``POST`` of a file (multipart,
  CSRF field) stores it and redirects (303) to its page; a refused file (format, empty, unreadable)
  re-renders the form (400) with the message next to the file field.
- ``GET /ui/bureau/imports/files/{id}``: the first rows with the mapping applied (consumers' data
  masked), the columns found and missing, and the buttons: dry run and import. A file lacking a
  required column says so and offers no button.
- ``POST .../dry-run`` and ``.../run`` start a run in the background and redirect (303) to its page,
  ``GET /ui/bureau/imports/runs/{id}``: a progress bar (rows processed of the total, counts) that
  refreshes itself every second with htmx while the run goes on (a plain reload link without
  JavaScript), then the report: created, already present, refused, and every refused row's line,
  field and problem. A run whose process died shows as interrupted (as does a failed one, with its
  error) with a "resume" button: ``POST .../runs/{id}/resume`` goes on from its last committed batch.
- ``POST /ui/bureau/imports/mapping``: save the mapping from its TOML text; a malformed one is shown
  again (400) with the message naming the field.
"""

from __future__ import annotations

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath

from admin_ui import i18n
from admin_ui.forms import read_form
from admin_ui.pages.common import platform_of
from admin_ui.render import page, redirect, require
from core.auth.principal import POLICY_ROLES
from core.imports import service
from core.imports.mapping import Columns, mapping_from_toml, mapping_to_toml
from core.imports.reading import MAX_BYTES, FileRefused, LimitExceeded

FIELDS = Columns.__struct_fields__


async def _start_page(request: Request, *, status: int = 200, errors: dict | None = None,
                      mapping_text: str | None = None) -> Response:
    principal = require(request, POLICY_ROLES)
    platform = platform_of(request)
    mapping = await service.tenant_mapping(platform, principal.tenant or "", principal)
    return page(request, "imports.html", status=status, errors=errors or {},
                mapping_text=mapping_text if mapping_text is not None else mapping_to_toml(mapping),
                max_mib=f"{platform.settings.import_max_upload_mb:g}")


def limit_message(request: Request, exc: LimitExceeded) -> str:
    """The limit an import file exceeded, in the page's language."""
    lang = i18n.language_of(request.query_params, request.cookies)
    what = i18n.t(f"import.limit.{exc.limit}", lang, n=exc.value.split(" ")[0])
    return i18n.t("import.limit", lang, what=what, found=exc.found, limit=exc.limit, value=exc.value)


@get("/bureau/imports")
async def imports_page(request: Request) -> Response:
    return await _start_page(request)


@post("/bureau/imports", request_max_body_size=MAX_BYTES + 1024 * 1024)
async def upload(request: Request) -> Response:
    principal = require(request, POLICY_ROLES)
    form = await read_form(request)
    file = form.get("file")
    if not isinstance(file, UploadFile):
        return await _start_page(request, status=400, errors={"file": "import.file_required"})
    try:
        stored = await service.store_file(principal.tenant or "", principal, platform_of(request), file.filename or "",
                                          await file.read())
    except LimitExceeded as exc:
        return await _start_page(request, status=413, errors={"file": limit_message(request, exc)})
    except FileRefused as exc:
        return await _start_page(request, status=400, errors={"file": str(exc)})
    return redirect(f"/ui/bureau/imports/files/{stored.id}")


@post("/bureau/imports/mapping")
async def save_mapping(request: Request) -> Response:
    principal = require(request, POLICY_ROLES)
    form = await read_form(request)
    text = str(form.get("mapping") or "")
    try:
        mapping = mapping_from_toml(text)
        await service.set_tenant_mapping(platform_of(request), principal.tenant or "", principal, mapping)
    except (ValueError, msgspec.ValidationError) as exc:
        return await _start_page(request, status=400, errors={"mapping": str(exc)}, mapping_text=text)
    return redirect("/ui/bureau/imports", done="import.mapping_saved")


@get("/bureau/imports/files/{file_id:str}")
async def file_page(request: Request, file_id: FromPath[str]) -> Response:
    principal = require(request, POLICY_ROLES)
    platform = platform_of(request)
    tenant = principal.tenant or ""
    preview = await service.load_preview(tenant, principal, platform, file_id)
    runs = await service.file_runs(tenant, preview.file.id, stale_seconds=platform.settings.import_stale_seconds)
    shown = [name for name in FIELDS if name in preview.columns]
    return page(request, "import_file.html", preview=preview, shown=shown, runs=runs)


async def _launch(request: Request, file_id: str, *, dry_run: bool) -> Response:
    principal = require(request, POLICY_ROLES)
    report = await service.launch_run(platform_of(request), principal.tenant or "", principal, file_id, dry_run=dry_run,
                                      bus=getattr(request.app.state, "notify_bus", None))
    return redirect(f"/ui/bureau/imports/runs/{report.id}")


@post("/bureau/imports/files/{file_id:str}/dry-run")
async def dry_run(request: Request, file_id: FromPath[str]) -> Response:
    return await _launch(request, file_id, dry_run=True)


@post("/bureau/imports/files/{file_id:str}/run")
async def run(request: Request, file_id: FromPath[str]) -> Response:
    return await _launch(request, file_id, dry_run=False)


@post("/bureau/imports/runs/{run_id:str}/resume")
async def resume(request: Request, run_id: FromPath[str]) -> Response:
    """Resume an interrupted or failed run from its last committed batch (then its page)."""
    principal = require(request, POLICY_ROLES)
    await read_form(request)
    report = await service.resume_run(platform_of(request), principal.tenant or "", principal, run_id,
                                      bus=getattr(request.app.state, "notify_bus", None))
    return redirect(f"/ui/bureau/imports/runs/{report.id}")


@get("/bureau/imports/runs/{run_id:str}")
async def run_page(request: Request, run_id: FromPath[str]) -> Response:
    """The run's page; with ``?fragment=1`` (htmx) only its progress section."""
    principal = require(request, POLICY_ROLES)
    report = await service.get_run(principal.tenant or "", principal, platform_of(request), run_id)
    template = "import_run_progress.html" if request.query_params.get("fragment") else "import_run.html"
    return page(request, template, run=report)


HANDLERS = [imports_page, upload, save_mapping, file_page, dry_run, run, run_page, resume]
