"""``odr import complaints --tenant T FILE.xlsx|FILE.csv [--mapping FILE.toml] [--dry-run]``.

Contract: imports (or, with ``--dry-run``, only checks) the export with the mapping given, else the
tenant's stored mapping, else the national layout (:mod:`core.imports`). A progress line on stderr
(rows done, rate); the report as JSON on stdout (counts, every refused row's line, field and
problem). Exit codes: 0 when every row was imported or already present, 1 when rows were refused,
2 on bad input (unknown tenant, unreadable file or mapping, a required column missing: the message
names the argument or field).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from core.runtime import Platform
from odr.running import print_json, run_with_platform


def import_complaints(tenant: str, path: str, mapping_path: str | None, dry_run: bool, batch_size: int = 500) -> int:
    import msgspec

    from core.db.engine import TenantNotFound, tenant_transaction
    from core.imports.mapping import load_mapping, mapping_from_toml
    from core.imports.reading import FileRefused, read_table
    from core.imports.service import cli_principal, import_complaints as run
    from core.notifications.deliver import deliver

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
        table = read_table(file.name, content)
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
        started = time.monotonic()

        def progress(report) -> None:
            rate = report.processed / max(time.monotonic() - started, 1e-9)
            total = f"/{report.total}" if report.total else ""
            sys.stderr.write(f"\r{'checked' if dry_run else 'imported'} {report.processed}{total} rows "
                             f"({report.created} {'to create' if dry_run else 'created'}, {report.present} already present, "
                             f"{report.refused} refused) {rate:,.0f} rows/s ")
            sys.stderr.flush()

        async def after_commit(outbox: list) -> None:
            for out in outbox:
                await deliver(platform, None, out)

        try:
            report = await run(platform, tenant, cli_principal(tenant, nodes), table, mapping, filename=file.name,
                               dry_run=dry_run, batch_size=batch_size, progress=progress, after_commit=after_commit)
        except FileRefused as exc:
            print(f"\n{exc}", file=sys.stderr)
            return 2
        sys.stderr.write("\n")
        print_json(report)
        return 1 if report.refused else 0

    return run_with_platform(go)
