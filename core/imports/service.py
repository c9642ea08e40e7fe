"""Importing complaints from a 12315 export (``odr import complaints``, the API and the console).

Contract:
- Who: a provincial admin, or a bureau officer of a city bureau (:func:`require_importer`); a row whose
  jurisdiction lies outside their subtree is refused. The CLI acts as the province (:func:`cli_principal`).
- Rows are read in batches of ``batch_size`` (default 500). Every row is checked (:mod:`core.imports.rows`),
  then resolved: the jurisdiction is the node of the company's registration here (the ODR unit with that
  credit code, or its host unit), else the handling department's node (its name equal to a node's, or
  listed in the mapping's ``departments``). A bad row is refused with its line and field, and nothing of
  it is written; the other rows of its batch go on.
- Each batch is ONE tenant transaction: the good rows are filed with the intake's own statement
  (:func:`core.complaints.batching.intake_sql`: complaint, ``registered`` event, timers, the
  enterprise's notification), and the run's progress is updated in it. A failing batch rolls back
  whole (the run is marked failed; the batches before it stay, and importing again completes it).
- Idempotent on the registration number (unique column ``complaints.registration_number``, and the
  intake's idempotency key ``12315:<number>``): a number already here counts as *already present*, a
  number repeated in the file is refused on its later lines. Re-importing a file creates nothing.
- State (the mapping's ``states``): an *open* case whose company is an active ODR unit enters ODR at its
  received time (``with_enterprise``) with the deadlines of the policy in force then
  (:mod:`core.imports.policy`), stored like a filed one's, and its clocks: both breach timers, and the
  warnings not already past (a breach already due fires at once, as it would have). An open case of any
  other company is ``registered`` at its node for the bureau to dispatch, without deadlines. A closed,
  returned, withdrawn or left-ODR case is imported in that state with no deadline and no timer
  (``closed_at``: the closing time column, else the received time).
- Consumers' data is stored in the same columns as a filed complaint's, so every view masks it the
  same way; nothing personal is logged or put in a problem message.
- ``dry_run``: everything above but the writes; ``created`` then counts what an import would create.
- Runs started from the API or the console go on in the background of the web process
  (:func:`launch_run`); ``odr import complaints`` records its run (and keeps the file) the same way.
  Each batch's transaction also moves the run's ``heartbeat_at`` and appends its refused rows, under
  the run's ``runner`` token. A run still ``running`` whose heartbeat is older than
  ``ODR_IMPORT_STALE_SECONDS`` is shown as ``interrupted`` (its process died); :func:`resume_run` (API,
  console) or ``odr import resume`` takes it over with a new token (so a batch of the old process, if it
  still lives, rolls back), skips the rows its committed batches processed and goes on from there with
  the run's stored counts, problems and mapping: every row is counted once and filed once. A failed run
  resumes the same way. A new run of the same file is always allowed (idempotent).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from core.api.errors import Conflict, Forbidden
from core.auth.principal import Principal, Role
from core.complaints import batching
from core.complaints import states as S
from core.complaints.intake import FILED_COLUMNS, _outgoing
from core.complaints.records import timer_args
from core.db.engine import tenant_transaction
from core.imports.mapping import ColumnMapping, load_mapping, save_mapping
from core.imports.policy import PolicyHistory
from core.api.backpressure import expensive_slot
from core.imports import isolation
from core.imports.reading import FileRefused, ImportLimits, LimitExceeded, Table, shown
from core.imports.rows import ColumnIndex, ImportRow, Problem, column_index, parse_row
from core.runtime import Node, Platform

log = logging.getLogger(__name__)

BATCH_SIZE = 500
PROBLEMS_KEPT = 20_000
"""Problems stored with a run (the counts stay exact beyond)."""
TERMINAL = {"closed": S.CLOSED, "returned": S.RETURNED, "withdrawn": S.WITHDRAWN, "left_odr": S.LEFT_ODR}

COMPANIES_SQL = """
SELECT e.credit_code, coalesce(h.id, e.id) AS id, coalesce(h.node_code, e.node_code) AS node_code,
       coalesce(h.status, e.status) AS status
FROM enterprises e LEFT JOIN enterprises h ON h.id = e.host_unit_id
WHERE e.credit_code = ANY($1::text[])"""


class ImportReport(msgspec.Struct, kw_only=True):
    """What a dry run or an import did (an import run's record, ``GET .../imports/runs/{id}``)."""

    id: str | None = None
    file_id: str | None = None
    filename: str
    dry_run: bool
    status: str = "running"
    total: int | None = None
    processed: int = 0
    created: int = 0
    present: int = 0
    refused: int = 0
    problems: list[Problem] = []
    problems_truncated: bool = False
    error: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    seconds: float = 0.0
    heartbeat_at: dt.datetime | None = None
    """When the run's last batch committed (``interrupted``: longer ago than ``ODR_IMPORT_STALE_SECONDS``)."""
    resumable: bool = False
    """``interrupted`` or ``failed``: ``POST .../imports/runs/{id}/resume`` goes on from its last batch."""


Progress = Callable[[ImportReport], Any]
AfterCommit = Callable[[list], Awaitable[None]]


IMPORT_ROLES = frozenset({Role.PROVINCE_ADMIN, Role.BUREAU_OFFICER})
IMPORT_LEVELS = frozenset({"province", "city"})


def may_import(principal: Principal, nodes: dict[str, Node]) -> bool:
    """The import rule: a province admin, or a bureau officer, of a province or city node (district
    officers and office heads may not). The API, the console's pages and its menu all ask this."""
    node = nodes.get(principal.node or "")
    return node is not None and principal.role in IMPORT_ROLES and node.level in IMPORT_LEVELS


def require_importer(principal: Principal, nodes: dict[str, Node]) -> Node:
    """The principal's node if they may import (:func:`may_import`); :class:`Forbidden` otherwise."""
    if not may_import(principal, nodes):
        raise Forbidden("imports are for the provincial admin and city bureaus")
    return nodes[principal.node or ""]


def cli_principal(tenant: str, nodes: dict[str, Node]) -> Principal:
    """The province acting through ``odr import`` (the machine's operator runs it)."""
    root = next(n for n in nodes.values() if n.parent_code is None)
    return Principal(id="cli:odr-import", username="odr import", role=Role.PROVINCE_ADMIN, tenant=tenant,
                     node_path=root.path, display_name="odr import")


def _department_index(nodes: dict[str, Node], mapping: ColumnMapping) -> dict[str, str]:
    index: dict[str, str] = {}
    for node in nodes.values():
        index.setdefault(node.name.strip(), node.code)
        if node.name_en:
            index.setdefault(node.name_en.strip(), node.code)
    for name, code in mapping.departments.items():
        if code not in nodes:
            raise FileRefused(f"departments.{name}", f"{code!r} is not a node of this province")
        index[name.strip()] = code
    return index


class RunTakenOver(RuntimeError):
    """The run was resumed by another process (its heartbeat had gone stale): this one stops, its
    current batch rolled back."""


class _Importer:
    def __init__(self, platform: Platform, tenant: str, principal: Principal, mapping: ColumnMapping,
                 columns: ColumnIndex, nodes: dict[str, Node], history: PolicyHistory, report: ImportReport,
                 dry_run: bool, runner: uuid.UUID | None = None) -> None:
        self.platform, self.tenant, self.principal, self.mapping = platform, tenant, principal, mapping
        self.columns, self.nodes, self.history, self.report, self.dry_run = columns, nodes, history, report, dry_run
        self.runner = runner
        self.saved_problems = len(report.problems)
        """Problems already stored with the run (each batch appends the ones after)."""
        self.departments = _department_index(nodes, mapping)
        self.seen: dict[str, int] = {}
        self.now = dt.datetime.now(dt.timezone.utc)
        self.warning = dt.timedelta(hours=platform.settings.warning_before_hours)

    def refuse(self, problems: list[Problem]) -> None:
        """Count a refused row and keep its problems (each message cut to 200 characters: it may quote a cell)."""
        r = self.report
        r.refused += 1
        room = PROBLEMS_KEPT - len(r.problems)
        if room < len(problems):
            r.problems_truncated = True
        r.problems.extend(msgspec.structs.replace(p, problem=shown(p.problem)) for p in problems[: max(0, room)])

    def parse(self, chunk: list[tuple[int, list[Any]]]) -> list[ImportRow]:
        parsed = []
        for line, cells in chunk:
            row = parse_row(line, cells, self.columns, self.mapping, self.now)
            if isinstance(row, list):
                self.refuse(row)
                continue
            first = self.seen.get(row.registration_number)
            if first is not None:
                self.refuse([Problem(line=line, field="registration_number",
                                     problem=f"repeats the registration number of line {first}")])
                continue
            self.seen[row.registration_number] = line
            if row.closed_at is not None and row.closed_at < row.received_at:
                self.refuse([Problem(line=line, field="closed_at", problem="before the received time")])
                continue
            parsed.append(row)
        return parsed

    def remember(self, chunk: list[tuple[int, list[Any]]]) -> None:
        """Rows a resumed run skips (processed before): only their registration numbers, so a later line
        repeating one is refused as it would have been."""
        for line, cells in chunk:
            row = parse_row(line, cells, self.columns, self.mapping, self.now)
            if not isinstance(row, list):
                self.seen.setdefault(row.registration_number, line)

    def resolve(self, row: ImportRow, companies: dict[str, Any]) -> batching.IntakeRow | Problem:
        company = companies.get(row.credit_code) if row.credit_code else None
        unit = None
        if company is not None:
            node_code, field = company["node_code"], "credit_code"
            if company["status"] == "active":
                unit = (company["id"], company["node_code"])
        elif row.handling_department is not None:
            node_code, field = self.departments.get(row.handling_department), "handling_department"
            if node_code is None:
                return Problem(line=row.line, field=field, problem=f"{row.handling_department!r} names no node of this"
                               " province (list it in the mapping's departments)")
        elif row.credit_code is not None:
            return Problem(line=row.line, field="credit_code", problem="no company with this credit code is registered"
                           " here, and the row names no handling department")
        else:
            return Problem(line=row.line, field="handling_department",
                           problem="missing: without a registered company's credit code it decides the jurisdiction")
        node = self.nodes[node_code]
        if not self.principal.covers(node.path):
            return Problem(line=row.line, field=field, problem=f"node {node_code} is outside your jurisdiction")
        deadlines = None
        kinds: list[str] = []
        dues: list[dt.datetime] = []
        if row.state == "open":
            state = S.WITH_ENTERPRISE if unit else S.REGISTERED
            if unit:
                deadlines = self.history.deadlines(node.path, row.received_at)
                kinds, dues = timer_args(self.platform, deadlines)
                keep = [i for i, (k, d) in enumerate(zip(kinds, dues)) if k.endswith("_breach") or d > self.now]
                kinds, dues = [kinds[i] for i in keep], [dues[i] for i in keep]
        else:
            state = TERMINAL[row.state]
        closed_at = (row.closed_at or row.received_at) if state == S.CLOSED else None
        extra = {"import": True, "registration_number": row.registration_number, "received_at": row.received_at.isoformat(),
                 "channel": row.channel, "handling_department": row.handling_department, "exported_state": row.exported_state}
        return batching.IntakeRow(
            key=f"12315:{row.registration_number}", source="imported", consumer_account_id=None,
            consumer_name=row.consumer_name, consumer_phone=row.consumer_phone, consumer_address=row.consumer_address,
            enterprise_id=unit[0] if unit else None, company_name=row.company_name, odr_unit=unit is not None,
            node_code=node_code, node_path="/".join(node.path), category=row.category, subject=row.subject,
            description=row.description, amount_claimed=row.amount, state=state,
            contact_due=deadlines.contact.due if deadlines else None, close_due=deadlines.close.due if deadlines else None,
            policy=deadlines.policy if deadlines else None, policy_version=deadlines.policy_version if deadlines else None,
            explanation=deadlines, actor_id=self.principal.id, actor_role=self.principal.role.value, route="import",
            timer_kinds=kinds, timer_dues=dues, unit_node=unit[1] if unit else None,
            registration_number=row.registration_number, received_at=row.received_at, closed_at=closed_at,
            event_extra=extra,
        )

    async def batch(self, chunk: list[tuple[int, list[Any]]], run_id: uuid.UUID | None) -> list:
        """One batch in one transaction; the notifications to deliver after its commit."""
        parsed = self.parse(chunk)
        outbox: list = []
        report = self.report
        async with tenant_transaction(self.tenant) as conn:
            numbers = [r.registration_number for r in parsed]
            present = {r["registration_number"] for r in await conn.fetch(
                "SELECT registration_number FROM complaints WHERE registration_number = ANY($1::text[])", numbers)}
            codes = sorted({r.credit_code for r in parsed if r.credit_code and r.registration_number not in present})
            companies = {r["credit_code"]: r for r in await conn.fetch(COMPANIES_SQL, codes)} if codes else {}
            rows: list[batching.IntakeRow] = []
            lines: dict[str, int] = {}
            for row in parsed:
                if row.registration_number in present:
                    report.present += 1
                    continue
                out = self.resolve(row, companies)
                if isinstance(out, Problem):
                    self.refuse([out])
                    continue
                rows.append(out)
                lines[row.registration_number] = row.line
            if rows and not self.dry_run:
                for row, id_ in zip(rows, batching.new_ids(len(rows))):
                    row.id = id_
                filed = await conn.fetch(batching.intake_sql(FILED_COLUMNS + ", state, node_code, registration_number"),
                                         batching.encode_rows(rows))
                report.created += len(filed)
                for rec in filed:
                    if rec["notice_id"] is not None:
                        outbox.append(_outgoing(self.tenant, rec))
                if len(filed) < len(rows):  # filed meanwhile by another import, or the ODR unit changed
                    done = {rec["registration_number"] for rec in filed}
                    missing = [r.registration_number for r in rows if r.registration_number not in done]
                    there = {r["registration_number"] for r in await conn.fetch(
                        "SELECT registration_number FROM complaints WHERE registration_number = ANY($1::text[])", missing)}
                    report.present += len(there)
                    for number in missing:
                        if number not in there:
                            self.refuse([Problem(line=lines[number], field="credit_code",
                                                 problem="the ODR unit changed during the import; import the file again")])
            elif rows:
                report.created += len(rows)
            report.processed += len(chunk)
            if run_id is not None:
                status = await conn.execute(
                    """UPDATE import_runs SET total = $2, processed = $3, created = $4, present = $5, refused = $6,
                              problems = problems || $7::jsonb, heartbeat_at = now()
                       WHERE id = $1 AND runner IS NOT DISTINCT FROM $8""",
                    run_id, report.total, report.processed, report.created, report.present, report.refused,
                    msgspec.json.encode(report.problems[self.saved_problems:]).decode(), self.runner)
                if status != "UPDATE 1":
                    raise RunTakenOver(f"import run {run_id} was resumed elsewhere")
                self.saved_problems = len(report.problems)
        return outbox


BATCH_CHARS = 8 * 1024 * 1024
"""A batch is also cut when its rows hold this many characters (the web process's memory stays bounded
whatever the rows' width)."""


async def import_complaints(
    platform: Platform, tenant: str, principal: Principal, table: Table, mapping: ColumnMapping, *,
    filename: str, dry_run: bool, batch_size: int = BATCH_SIZE, run_id: uuid.UUID | None = None,
    progress: Progress | None = None, after_commit: AfterCommit | None = None, runner: uuid.UUID | None = None,
    resume: ImportReport | None = None,
) -> ImportReport:
    """Dry-run or import ``table`` (see the module's contract). ``progress`` is called after every batch
    with the report so far, and once more when done (``status`` ``done``); ``after_commit`` gets each batch's notifications after its commit.
    With ``run_id`` each batch records the progress on that run, and only while the run's ``runner`` is
    ``runner`` (else :class:`RunTakenOver`, that batch rolled back). ``resume``: the run's stored report;
    its ``processed`` rows are skipped and its counts and problems continued.
    Raises :class:`FileRefused` (a required column missing, a bad ``departments`` entry) or
    :class:`Forbidden` before anything is written; a database error after some batches propagates
    (those batches stay)."""
    started = time.monotonic()
    nodes = await platform.nodes(tenant)
    require_importer(principal, nodes)
    columns = column_index(table.header, mapping)
    report = ImportReport(id=str(run_id) if run_id else None, filename=filename, dry_run=dry_run,
                          started_at=dt.datetime.now(dt.timezone.utc))
    skip = 0
    if resume is not None:
        report.processed, report.created, report.present, report.refused = (
            resume.processed, resume.created, resume.present, resume.refused)
        report.problems = list(resume.problems)
        report.problems_truncated = resume.refused > len(resume.problems)
        skip = resume.processed
    importer = _Importer(platform, tenant, principal, mapping, columns, nodes, await PolicyHistory.load(platform, tenant),
                         report, dry_run, runner)
    chunk: list[tuple[int, list[Any]]] = []
    chars = 0

    async def flush() -> None:
        nonlocal chunk, chars
        outbox = await importer.batch(chunk, run_id)
        chunk, chars = [], 0
        if after_commit is not None and outbox:
            await after_commit(outbox)
        if progress is not None:
            progress(report)

    async for kind, found in isolation.rows(table):  # read in another process (limits checked there)
        if kind == "total":
            report.total = found
            continue
        for item in found:
            if skip:
                skip -= 1
                importer.remember([item])
                continue
            chunk.append(item)
            chars += sum(len(c) for c in item[1] if isinstance(c, str))
            if len(chunk) >= batch_size or chars >= BATCH_CHARS:
                await flush()
    if chunk:
        await flush()
    report.problems.sort(key=lambda p: p.line)  # refused while reading or while resolving: in file order
    report.total = report.processed
    report.status = "done"
    report.finished_at = dt.datetime.now(dt.timezone.utc)
    report.seconds = round(time.monotonic() - started, 3)
    if progress is not None:
        progress(report)
    return report


# -- uploaded files and runs (console and API) ------------------------------------------------------

class ImportFile(msgspec.Struct, kw_only=True):
    """An uploaded export: its id, name, format, size and the header found."""

    id: str
    filename: str
    format: str
    size: int
    header: list[str]
    uploaded_at: dt.datetime | None = None


class PreviewRow(msgspec.Struct, kw_only=True):
    """A row with the mapping applied: its fields as read (``values``, strings) or its problems.
    Personal data is shown masked (the file's rows belong to no case handled yet)."""

    line: int
    values: dict[str, str | None]
    problems: list[Problem]


class Preview(msgspec.Struct, kw_only=True):
    file: ImportFile
    columns: dict[str, str]
    """field -> the header it is read from"""
    missing: list[str]
    """fields the file has no column for (the required ones refuse the file)"""
    rows: list[PreviewRow]
    refused: str | None = None
    """why the file as a whole cannot be imported (a required column missing), naming the field"""


def _limits(platform: Platform, content: bytes) -> ImportLimits:
    """The platform's import limits, the file's size checked against the first of them."""
    limits = ImportLimits.of(platform.settings)
    if len(content) > limits.upload_bytes:
        raise LimitExceeded("ODR_IMPORT_MAX_UPLOAD_MB", f"{limits.upload_bytes / (1024 * 1024):g} MiB")
    return limits


async def store_file(tenant: str, principal: Principal, platform: Platform, filename: str, content: bytes) -> ImportFile:
    """Keep an uploaded export for its preview, dry run and import, once a child process read all of it
    within the limits (:mod:`core.imports.isolation`; :class:`LimitExceeded` naming the limit otherwise,
    nothing stored). Counts as expensive work of the province while it is read (:func:`expensive_slot`)."""
    require_importer(principal, await platform.nodes(tenant))
    filename = (filename or "").strip().replace("\\", "/").rsplit("/", 1)[-1][:200]
    if not filename:
        raise FileRefused("file", "no file name")
    limits = _limits(platform, content)
    async with expensive_slot(platform.settings, tenant, "import"):
        found = await isolation.inspect(filename, content, limits, scan=True)
    async with tenant_transaction(tenant) as conn:
        rec = await conn.fetchrow(
            """INSERT INTO import_files (kind, filename, format, size, sha256, content, uploaded_by, node_code)
               VALUES ('complaints', $1, $2, $3, $4, $5, $6, $7) RETURNING id, uploaded_at""",
            filename, found.format, len(content), hashlib.sha256(content).hexdigest(), content, principal.id,
            principal.node)
    return ImportFile(id=str(rec["id"]), filename=filename, format=found.format, size=len(content),
                      header=[shown(h) for h in found.header], uploaded_at=rec["uploaded_at"])


async def load_file(tenant: str, principal: Principal, platform: Platform, file_id: str, *,
                    rows: int = 0) -> tuple[ImportFile, Table]:
    """An uploaded file of the principal's subtree (``KeyError`` when there is none), its header (and
    with ``rows`` its first so many rows, ``Table.sample``) read in a child process."""
    nodes = await platform.nodes(tenant)
    require_importer(principal, nodes)
    try:
        key = uuid.UUID(file_id)
    except ValueError:
        raise KeyError("import file not found") from None
    async with tenant_transaction(tenant) as conn:
        rec = await conn.fetchrow("SELECT id, filename, format, size, content, node_code, uploaded_at FROM import_files WHERE id = $1", key)
    if rec is None or rec["node_code"] not in nodes or not principal.covers(nodes[rec["node_code"]].path):
        raise KeyError("import file not found")
    if rec["content"] is None:
        raise FileRefused("file", "its content was removed after ODR_IMPORT_RETENTION_DAYS; upload the export again")
    content = bytes(rec["content"])
    limits = _limits(platform, content)
    found = await isolation.inspect(rec["filename"], content, limits, rows=rows)
    table = Table(format=found.format, header=found.header, content=content, limits=limits, sample=found.rows)
    return ImportFile(id=str(rec["id"]), filename=rec["filename"], format=rec["format"], size=rec["size"],
                      header=[shown(h) for h in found.header], uploaded_at=rec["uploaded_at"]), table


async def load_preview(tenant: str, principal: Principal, platform: Platform, file_id: str, *,
                       rows: int = 10) -> Preview:
    """The preview of an uploaded file (:func:`preview`), read as expensive work of the province."""
    async with expensive_slot(platform.settings, tenant, "import"):
        file, table = await load_file(tenant, principal, platform, file_id, rows=rows)
    return preview(file, table, await tenant_mapping(platform, tenant, principal), rows=rows)


def preview(file: ImportFile, table: Table, mapping: ColumnMapping, *, rows: int = 10) -> Preview:
    """The first ``rows`` rows of ``table.sample`` with the mapping applied (no database check: the dry
    run does those); every value and problem cut to :data:`~core.imports.reading.SHOWN_CHARS`."""
    from core.complaints.masking import mask_address, mask_name, mask_phone
    from core.imports.mapping import Columns
    from core.imports.rows import cell_text

    try:
        columns = column_index(table.header, mapping)
        refused = None
    except FileRefused as exc:
        columns, refused = _partial_index(table.header, mapping), str(exc)
    now = dt.datetime.now(dt.timezone.utc)
    out = []
    for line, cells in table.sample[:rows]:
        values = {name: shown(cell_text(columns.cell(cells, name))) for name in columns.index}
        for name, mask in (("consumer_name", mask_name), ("consumer_phone", mask_phone), ("consumer_address", mask_address)):
            if values.get(name):
                values[name] = mask(values[name])
        parsed = parse_row(line, cells, columns, mapping, now) if refused is None else []
        problems = [msgspec.structs.replace(p, problem=shown(p.problem)) for p in parsed] if isinstance(parsed, list) else []
        out.append(PreviewRow(line=line, values=values, problems=problems))
    return Preview(file=file, columns=columns.headers, missing=[n for n in Columns.__struct_fields__ if n not in columns.index],
                   rows=out, refused=refused)


def _partial_index(header: list[str], mapping: ColumnMapping) -> ColumnIndex:
    from core.imports.mapping import Columns

    positions = {h: i for i, h in reversed(list(enumerate(header))) if h}
    index, headers = {}, {}
    for name in Columns.__struct_fields__:
        for h in getattr(mapping.columns, name):
            if h in positions:
                index[name], headers[name] = positions[h], h
                break
    return ColumnIndex(index=index, headers=headers)


RUN_COLUMNS = """id, file_id, filename, dry_run, total, processed, created, present, refused, problems, error,
    started_at, finished_at, heartbeat_at, mapping,
    CASE WHEN status = 'running' AND heartbeat_at < now() - make_interval(secs => $2) THEN 'interrupted'
         ELSE status END AS status"""
"""The run's columns; ``$2`` is ``ODR_IMPORT_STALE_SECONDS`` (a running run with an older heartbeat is
``interrupted``)."""


def _run_report(rec) -> ImportReport:
    problems = msgspec.json.decode(rec["problems"], type=list[Problem]) if rec["problems"] else []
    seconds = ((rec["finished_at"] - rec["started_at"]).total_seconds() if rec["finished_at"] else 0.0)
    return ImportReport(id=str(rec["id"]), file_id=str(rec["file_id"]) if rec["file_id"] else None, filename=rec["filename"], dry_run=rec["dry_run"], status=rec["status"],
                        total=rec["total"], processed=rec["processed"], created=rec["created"], present=rec["present"],
                        refused=rec["refused"], problems=problems, problems_truncated=rec["refused"] > len(problems),
                        error=rec["error"], started_at=rec["started_at"], finished_at=rec["finished_at"],
                        seconds=round(seconds, 3), heartbeat_at=rec["heartbeat_at"],
                        resumable=rec["status"] in ("interrupted", "failed"))


async def start_run(tenant: str, principal: Principal, file: ImportFile, *, dry_run: bool,
                    runner: uuid.UUID | None = None, mapping: ColumnMapping | None = None) -> uuid.UUID:
    """Record a run of ``file`` (status ``running``, heartbeat now) carried on by ``runner``, reading
    the file with ``mapping`` (kept for a resume)."""
    async with tenant_transaction(tenant) as conn:
        return await conn.fetchval(
            """INSERT INTO import_runs (file_id, filename, dry_run, status, started_by, runner, mapping)
               VALUES ($1, $2, $3, 'running', $4, $5, $6::jsonb) RETURNING id""",
            uuid.UUID(file.id), file.filename, dry_run, principal.id, runner,
            msgspec.json.encode(mapping).decode() if mapping is not None else None)


async def finish_run(tenant: str, run_id: uuid.UUID, report: ImportReport | None, error: str | None = None, *,
                     runner: uuid.UUID | None = None) -> None:
    """Record the run's outcome (only while ``runner`` still carries it on)."""
    async with tenant_transaction(tenant) as conn:
        if report is not None:
            await conn.execute(
                """UPDATE import_runs SET status = 'done', total = $2, processed = $3, created = $4, present = $5,
                          refused = $6, problems = $7::jsonb, finished_at = now(), heartbeat_at = now()
                   WHERE id = $1 AND runner IS NOT DISTINCT FROM $8""",
                run_id, report.total, report.processed, report.created, report.present, report.refused,
                msgspec.json.encode(report.problems).decode(), runner)
        else:
            await conn.execute("""UPDATE import_runs SET status = 'failed', error = $2, finished_at = now()
                                  WHERE id = $1 AND runner IS NOT DISTINCT FROM $3""", run_id, error, runner)


async def run_file(platform: Platform, tenant: str, principal: Principal, file: ImportFile, table: Table,
                   mapping: ColumnMapping, run_id: uuid.UUID, *, dry_run: bool,
                   after_commit: AfterCommit | None = None, runner: uuid.UUID | None = None,
                   resume: ImportReport | None = None, progress: Progress | None = None) -> ImportReport | None:
    """Carry out a started (or resumed) run to its end, recording the outcome (never raises: a failure
    is the run's ``error``, by type and message, which hold no personal data; a run taken over by a
    resume elsewhere is left to it)."""
    try:
        report = await import_complaints(platform, tenant, principal, table, mapping, filename=file.filename,
                                         dry_run=dry_run, run_id=run_id, after_commit=after_commit, runner=runner,
                                         resume=resume, progress=progress)
    except RunTakenOver:
        log.warning("import run %s of tenant %s was resumed elsewhere; this process stops it", run_id, tenant)
        return None
    except Exception as exc:  # recorded on the run, shown to the bureau
        log.warning("import run %s of tenant %s failed (%s)", run_id, tenant, type(exc).__name__)
        await finish_run(tenant, run_id, None, f"{type(exc).__name__}: {exc}"[:500], runner=runner)
        return None
    report.id = str(run_id)
    await finish_run(tenant, run_id, report, runner=runner)
    return report


async def claim_resume(tenant: str, run_id: uuid.UUID, *, stale_seconds: float, runner: uuid.UUID) -> ImportReport:
    """Take over an interrupted (heartbeat older than ``stale_seconds``) or failed run for ``runner``:
    ``running`` again, heartbeat now. Its report as stored (the counts and problems to go on from);
    :class:`Conflict` when the run is done or still alive."""
    async with tenant_transaction(tenant) as conn:
        rec = await conn.fetchrow(f"SELECT {RUN_COLUMNS} FROM import_runs WHERE id = $1 FOR UPDATE", run_id,
                                  stale_seconds)
        if rec is None:
            raise KeyError("import run not found")
        if rec["status"] not in ("interrupted", "failed"):
            allowed = (["start a new run of the file (POST .../imports/{file_id}/run)"] if rec["status"] == "done" else
                       [f"follow its progress (GET .../imports/runs/{run_id}); it is interrupted when no batch has"
                        f" committed for {stale_seconds:g} s"])
            raise Conflict(f"import run {run_id} is {rec['status']}: only an interrupted or failed run resumes", allowed)
        await conn.execute("""UPDATE import_runs SET status = 'running', runner = $2, heartbeat_at = now(), error = NULL,
                                     finished_at = NULL WHERE id = $1""", run_id, runner)
    report = _run_report(rec)
    report.status = "running"
    return report


def _run_mapping(rec_mapping: Any) -> ColumnMapping | None:
    if rec_mapping is None:
        return None
    return msgspec.json.decode(rec_mapping if isinstance(rec_mapping, (str, bytes)) else msgspec.json.encode(rec_mapping),
                               type=ColumnMapping)


async def run_mapping(tenant: str, run_id: uuid.UUID) -> ColumnMapping | None:
    """The mapping a run reads its file with (None: recorded before runs kept it)."""
    async with tenant_transaction(tenant) as conn:
        return _run_mapping(await conn.fetchval("SELECT mapping FROM import_runs WHERE id = $1", run_id))


async def get_run(tenant: str, principal: Principal, platform: Platform, run_id: str) -> ImportReport:
    """A run of a file of the principal's subtree; ``KeyError`` when there is none."""
    nodes = await platform.nodes(tenant)
    require_importer(principal, nodes)
    try:
        key = uuid.UUID(run_id)
    except ValueError:
        raise KeyError("import run not found") from None
    async with tenant_transaction(tenant) as conn:
        rec = await conn.fetchrow(
            f"SELECT {RUN_COLUMNS}, (SELECT node_code FROM import_files f WHERE f.id = r.file_id) AS node_code"
            " FROM import_runs r WHERE id = $1", key, platform.settings.import_stale_seconds)
    if rec is None or rec["node_code"] not in nodes or not principal.covers(nodes[rec["node_code"]].path):
        raise KeyError("import run not found")
    return _run_report(rec)


async def file_runs(tenant: str, file_id: str, *, stale_seconds: float) -> list[ImportReport]:
    """The runs of a file, newest first (the caller checked the file is the principal's); a running one
    whose heartbeat is older than ``stale_seconds`` is ``interrupted``."""
    async with tenant_transaction(tenant) as conn:
        recs = await conn.fetch(f"SELECT {RUN_COLUMNS} FROM import_runs r WHERE file_id = $1 ORDER BY started_at DESC",
                                uuid.UUID(file_id), stale_seconds)
    return [_run_report(r) for r in recs]


# -- the tenant's mapping and runs in the background (API and console) -------------------------------

_RUNNING: set[asyncio.Task] = set()
"""Runs going on in this process (kept referenced until done)."""


async def tenant_mapping(platform: Platform, tenant: str, principal: Principal) -> ColumnMapping:
    """The tenant's stored mapping, or the national layout."""
    require_importer(principal, await platform.nodes(tenant))
    async with tenant_transaction(tenant) as conn:
        return await load_mapping(conn)


async def set_tenant_mapping(platform: Platform, tenant: str, principal: Principal, mapping: ColumnMapping) -> ColumnMapping:
    """Store the tenant's mapping; ``ValueError`` naming ``departments.<name>`` for a node not in the tree."""
    nodes = await platform.nodes(tenant)
    require_importer(principal, nodes)
    for name, code in mapping.departments.items():
        if code not in nodes:
            raise ValueError(f"departments.{name}: {code!r} is not a node of this province")
    async with tenant_transaction(tenant) as conn:
        await save_mapping(conn, mapping, actor=principal.id)
    return mapping


async def _in_background(platform: Platform, tenant: str, principal: Principal, run_id: uuid.UUID, slot,
                         carry_on: Callable[[AfterCommit], Awaitable[Any]], *, wait: bool, bus) -> ImportReport:
    """Carry a started run on in the background of this process (notifications delivered after each
    batch's commit), holding the province's expensive-work ``slot`` until it ends: the run's report
    (its final one when ``wait``)."""
    from core.notifications.deliver import deliver

    async def after_commit(outbox: list) -> None:
        for out in outbox:
            await deliver(platform, bus, out)

    try:
        task = asyncio.get_running_loop().create_task(carry_on(after_commit))
    except BaseException:
        slot.release()
        raise
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    task.add_done_callback(lambda _task: slot.release())
    if wait:
        await asyncio.shield(task)
    return await get_run(tenant, principal, platform, str(run_id))


async def launch_run(platform: Platform, tenant: str, principal: Principal, file_id: str, *, dry_run: bool,
                     wait: bool = False, bus=None) -> ImportReport:
    """Start a dry run or an import of an uploaded file with the tenant's mapping, going on in the
    background of this process (notifications delivered after each batch's commit): the run's first
    report (``running``), or its final one when ``wait``. A file lacking a required column is refused
    here (:class:`FileRefused`), before any run is recorded. The run is expensive work of the province
    from here to its end (:func:`expensive_slot`: 503 when the province has its share running)."""
    slot = expensive_slot(platform.settings, tenant, "import")
    async with slot:
        file, table = await load_file(tenant, principal, platform, file_id)
        mapping = await tenant_mapping(platform, tenant, principal)
        column_index(table.header, mapping)
        runner = uuid.uuid4()
        run_id = await start_run(tenant, principal, file, dry_run=dry_run, runner=runner, mapping=mapping)
        slot.keep()
    return await _in_background(
        platform, tenant, principal, run_id, slot,
        lambda after_commit: run_file(platform, tenant, principal, file, table, mapping, run_id, dry_run=dry_run,
                                      after_commit=after_commit, runner=runner), wait=wait, bus=bus)


async def resume_run(platform: Platform, tenant: str, principal: Principal, run_id: str, *, wait: bool = False,
                     bus=None) -> ImportReport:
    """Resume an interrupted or failed run of a file of the principal's subtree in the background of
    this process, from its last committed batch, with the mapping it started with: its report
    (``running``), or its final one when ``wait``. ``KeyError`` when there is no such run,
    :class:`Conflict` when it is done or still alive, :class:`FileRefused` (``file``) when the
    file's content was removed by the retention (start a new run from a new upload). Expensive work of
    the province, as :func:`launch_run`."""
    stored = await get_run(tenant, principal, platform, run_id)  # the subtree check
    if stored.file_id is None:
        raise KeyError("import file not found")
    key = uuid.UUID(run_id)
    slot = expensive_slot(platform.settings, tenant, "import")
    async with slot:
        mapping = await run_mapping(tenant, key) or await tenant_mapping(platform, tenant, principal)
        file, table = await load_file(tenant, principal, platform, stored.file_id)
        column_index(table.header, mapping)
        runner = uuid.uuid4()
        resume = await claim_resume(tenant, key, stale_seconds=platform.settings.import_stale_seconds, runner=runner)
        slot.keep()
    return await _in_background(
        platform, tenant, principal, key, slot,
        lambda after_commit: run_file(platform, tenant, principal, file, table, mapping, key, dry_run=resume.dry_run,
                                      after_commit=after_commit, runner=runner, resume=resume), wait=wait, bus=bus)


async def running_tasks() -> None:
    """Wait for the runs of this process (tests, shutdown)."""
    if _RUNNING:
        await asyncio.gather(*list(_RUNNING), return_exceptions=True)
