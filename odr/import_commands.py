"""``odr import complaints --tenant T FILE.xlsx|FILE.csv [--mapping FILE.toml] [--dry-run]`` and
``odr import resume --tenant T RUN_ID``.

Contract: imports (or, with ``--dry-run``, only checks) the export with the mapping given, else the
tenant's stored mapping, else the national layout (:mod:`core.imports`). A progress line on stderr
(rows done, rate); the report as JSON on stdout (counts, every refused row's line, field and
problem). An import (not a dry run) is recorded like the console's: the file is kept and the run,
with its mapping, is recorded (``import run <id>`` on stderr before the first batch), its heartbeat
moved by each batch; a killed process leaves it ``interrupted`` after ``ODR_IMPORT_STALE_SECONDS``,
and ``odr import resume`` (or the console, or the API) goes on from its last committed batch.
Exit codes: 0 when every row was imported or already present, 1 when rows were refused (or the run
failed, its error on stderr), 2 on bad input (unknown tenant or run, unreadable file or mapping, a
required column missing, a run that is not interrupted: the message names the argument or field).
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

from core.runtime import Platform
from odr.running import print_json, run_with_platform


def _progress(dry_run: bool):
    started = time.monotonic()

    def progress(report) -> None:
        rate = report.processed / max(time.monotonic() - started, 1e-9)
        total = f"/{report.total}" if report.total else ""
        sys.stderr.write(f"\r{'checked' if dry_run else 'imported'} {report.processed}{total} rows "
                         f"({report.created} {'to create' if dry_run else 'created'}, {report.present} already present, "
                         f"{report.refused} refused) {rate:,.0f} rows/s ")
        sys.stderr.flush()

    return progress


def _after_commit(platform: Platform):
    from core.notifications.deliver import deliver

    async def after_commit(outbox: list) -> None:
        for out in outbox:
            await deliver(platform, None, out)

    return after_commit


async def _finish(tenant: str, run_id: uuid.UUID, report) -> int:
    from core.db.engine import tenant_transaction

    if report is None:  # failed (recorded on the run) or taken over by a resume elsewhere
        async with tenant_transaction(tenant) as conn:
            error = await conn.fetchval("SELECT coalesce(error, 'resumed by another process') FROM import_runs"
                                        " WHERE id = $1", run_id)
        print(f"\nimport run {run_id}: {error}", file=sys.stderr)
        return 1
    sys.stderr.write("\n")
    print_json(report)
    return 1 if report.refused else 0


def import_complaints(tenant: str, path: str, mapping_path: str | None, dry_run: bool, batch_size: int = 500) -> int:
    import msgspec

    from core.db.engine import TenantNotFound, tenant_transaction
    from core.imports.mapping import load_mapping, mapping_from_toml
    from core.imports.reading import FileRefused, ImportLimits, read_table
    from core.imports.rows import column_index
    from core.imports.service import cli_principal, import_complaints as run, run_file, start_run, store_file
    from core.settings import Settings

    file = Path(path)
    try:
        content = file.read_bytes()
    except OSError as exc:
        print(f"FILE: cannot read {path!r} ({exc.strerror})", file=sys.stderr)
        return 2
    mapping = None
    if mapping_path is not None:
        try:
            mapping = mapping_from_toml(Path(mapping_path).read_text(encoding="utf-8"))
        except OSError as exc:
            print(f"--mapping: cannot read {mapping_path!r} ({exc.strerror})", file=sys.stderr)
            return 2
        except (ValueError, msgspec.ValidationError) as exc:
            print(f"--mapping: {exc}", file=sys.stderr)
            return 2
    try:
        table = read_table(file.name, content, ImportLimits.of(Settings.from_env()))  # the rows: in a child
    except FileRefused as exc:
        print(f"FILE: {exc}", file=sys.stderr)
        return 2

    async def go(platform: Platform) -> int:
        nonlocal mapping
        try:
            nodes = await platform.nodes(tenant)
        except TenantNotFound:
            print(f"--tenant: no active tenant {tenant!r}", file=sys.stderr)
            return 2
        if mapping is None:
            async with tenant_transaction(tenant) as conn:
                mapping = await load_mapping(conn)
        principal = cli_principal(tenant, nodes)
        try:
            column_index(table.header, mapping)
            if dry_run:  # writes nothing, records nothing
                report = await run(platform, tenant, principal, table, mapping, filename=file.name, dry_run=True,
                                   batch_size=batch_size, progress=_progress(True))
                sys.stderr.write("\n")
                print_json(report)
                return 1 if report.refused else 0
            stored = await store_file(tenant, principal, platform, file.name, content)
        except FileRefused as exc:
            print(f"\n{exc}", file=sys.stderr)
            return 2
        runner = uuid.uuid4()
        run_id = await start_run(tenant, principal, stored, dry_run=False, runner=runner, mapping=mapping)
        print(f"import run {run_id}", file=sys.stderr, flush=True)
        report = await run_file(platform, tenant, principal, stored, table, mapping, run_id, dry_run=False,
                                after_commit=_after_commit(platform), runner=runner, progress=_progress(False))
        return await _finish(tenant, run_id, report)

    return run_with_platform(go)


def resume_import(tenant: str, run_id: str) -> int:
    from core.api.errors import Conflict
    from core.db.engine import TenantNotFound
    from core.imports.reading import FileRefused
    from core.imports.rows import column_index
    from core.imports import service

    try:
        key = uuid.UUID(run_id)
    except ValueError:
        print(f"RUN_ID: {run_id!r} is not a run id", file=sys.stderr)
        return 2

    async def go(platform: Platform) -> int:
        try:
            principal = service.cli_principal(tenant, await platform.nodes(tenant))
        except TenantNotFound:
            print(f"--tenant: no active tenant {tenant!r}", file=sys.stderr)
            return 2
        try:
            stored = await service.get_run(tenant, principal, platform, run_id)
            if stored.file_id is None:
                raise KeyError("import file not found")
            mapping = await service.run_mapping(tenant, key) or await service.tenant_mapping(platform, tenant, principal)
            file, table = await service.load_file(tenant, principal, platform, stored.file_id)
            column_index(table.header, mapping)
            runner = uuid.uuid4()
            resume = await service.claim_resume(tenant, key, stale_seconds=platform.settings.import_stale_seconds,
                                                runner=runner)
        except KeyError:
            print(f"RUN_ID: no import run {run_id} in {tenant!r}", file=sys.stderr)
            return 2
        except (Conflict, FileRefused) as exc:
            print(f"RUN_ID: {exc}", file=sys.stderr)
            return 2
        print(f"import run {run_id}: resumed after {resume.processed} rows", file=sys.stderr, flush=True)
        report = await service.run_file(platform, tenant, principal, file, table, mapping, key, dry_run=resume.dry_run,
                                        after_commit=_after_commit(platform), runner=runner, resume=resume,
                                        progress=_progress(resume.dry_run))
        return await _finish(tenant, key, report)

    return run_with_platform(go)
