"""Statistics reports (issue 5) over HTTP: every report as JSON, CSV or XLSX, and coverage targets.

Access: bureau roles (province admin, bureau officer, office head) whose subtree covers ``node``
(default: the caller's node); other nodes are 404, other roles 403. Bad input is 400 naming the
parameter (``field``): ``node``, ``since``, ``until``, ``format``, ``top``, ``by``, ``year``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, put
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from core.api.access import bureau_node, platform_of, tenant_member
from core.api.backpressure import expensive_slot
from core.api.errors import NotFound
from core.auth.principal import Principal
from core.db.clusters import ReadSource
from core.db.engine import tenant_read, tenant_transaction
from core.deadlines.api import QueryInvalid
from core.reports import targets as T
from core.reports.common import TIMEZONE, TZ, ReportSpec, class_labels
from core.reports.coverage import target_year
from core.reports.export import attachment, to_csv, to_xlsx
from core.reports.hotspots import periods
from core.reports.registry import SPECS
from core.reports.states import state_columns

Format = Literal["json", "csv", "xlsx"]
NODE_CODE = re.compile(r"^[0-9A-Za-z_-]{1,32}$")
Top = Annotated[int, QueryParameter(name="top", ge=1, le=500, description="how many rows (1-500)")]


class ColumnInfo(msgspec.Struct, kw_only=True):
    key: str
    zh: str
    en: str
    kind: str


class ReportBody(msgspec.Struct, kw_only=True):
    report: str
    title: str
    title_en: str
    tenant: str
    node: str
    node_name: str
    since: dt.date | None
    until: dt.date | None
    timezone: str
    options: dict[str, Any]
    """The report's options as applied (``top``, ``by``, ``year``; ``previous_since`` / ``previous_until``
    for hot spots)."""
    columns: list[ColumnInfo]
    rows: list[dict[str, Any]]
    total: dict[str, Any] | None
    """The total row (None for reports without one)."""
    read_from: ReadSource | None = None
    """Which server the report read (``replica`` or ``primary``) and how old its data was (seconds)."""


class ReportInfo(msgspec.Struct, kw_only=True):
    name: str
    title: str
    title_en: str
    options: list[str]
    columns: list[ColumnInfo]


def parse_date(field: str, text: str | None) -> dt.date | None:
    """A ``YYYY-MM-DD`` date (Asia/Shanghai calendar day), or None; 400 naming ``field`` otherwise."""
    if text is None or text == "":
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise QueryInvalid(field, f"expected a date YYYY-MM-DD, got {text!r}") from None


def _columns(cols) -> list[ColumnInfo]:
    return [ColumnInfo(key=c.key, zh=c.zh, en=c.en, kind=c.kind) for c in cols]


async def run_report(
    request: Request[Principal, Any, Any], tenant: str, spec: ReportSpec, node: str | None, since: str | None,
    until: str | None, fmt: str, **opts: Any
) -> Response:
    """Check access and input, run ``spec`` in one tenant transaction, answer in ``fmt``; an export (CSV,
    XLSX) is expensive work of the province (:func:`~core.api.backpressure.expensive_slot`)."""
    if fmt not in ("csv", "xlsx"):
        return await _run_report(request, tenant, spec, node, since, until, fmt, **opts)
    async with expensive_slot(platform_of(request).settings, tenant, "export"):
        return await _run_report(request, tenant, spec, node, since, until, fmt, **opts)


async def _run_report(
    request: Request[Principal, Any, Any], tenant: str, spec: ReportSpec, node: str | None, since: str | None,
    until: str | None, fmt: str, **opts: Any
) -> Response:
    code = node or request.user.node or ""
    if node is not None and not NODE_CODE.match(node):
        raise QueryInvalid("node", f"expected a jurisdiction code (letters, digits, - and _), got {node!r}")
    platform, _, n = await bureau_node(request, tenant, code)
    first, last = parse_date("since", since), parse_date("until", until)
    if first and last and first > last:
        raise QueryInvalid("until", f"until ({last}) is before since ({first})")
    if spec.name == "hot-spots":
        try:
            periods(first, last)
        except ValueError as exc:
            raise QueryInvalid("since", str(exc)) from None
    node_path = "/".join(n.path)
    columns = spec.columns
    applied = dict(opts)
    async with tenant_read(tenant) as (conn, source):
        rows = await spec.run(conn, node_path, first, last, **opts)
        if spec.name == "complaints-by-state":
            columns = state_columns(rows, await class_labels(conn, node_path))
    if spec.name == "hot-spots":
        prev_since, prev_until, first, last = periods(first, last)
        applied |= {"previous_since": prev_since.isoformat(), "previous_until": prev_until.isoformat()}
    if spec.name == "coverage":
        applied["year"] = target_year(last, opts.get("year"))
    if fmt in ("csv", "xlsx"):
        filename = f"{spec.name}_{tenant}_{n.code}_{first or 'start'}_{last or 'now'}.{fmt}"
        if fmt == "csv":
            return attachment(to_csv(columns, rows), fmt, filename, spec.title_zh)
        about = [("租户 tenant", tenant), ("辖区 node", f"{n.code} {n.name}"), ("起 since", first or "（不限）"),
                 ("止 until", last or "（至今）"), ("时区 timezone", TIMEZONE),
                 *((f"选项 {k}", v) for k, v in applied.items()),
                 ("读取自 read from", f"{source.server} ({source.cluster}), {source.lag_seconds:g} s"),
                 ("生成时间 generated", dt.datetime.now(TZ).isoformat(timespec="seconds"))]
        return attachment(to_xlsx(columns, rows, title=f"{spec.title_zh} {spec.title_en}", about=about), fmt,
                          filename, spec.title_zh)
    total = None
    body_rows = []
    for r in rows:
        is_total = r.pop("is_total", False)
        if is_total:
            total = r
        else:
            body_rows.append(r)
    return Response(ReportBody(
        report=spec.name, title=spec.title_zh, title_en=spec.title_en, tenant=tenant, node=n.code, node_name=n.name,
        since=first, until=last, timezone=TIMEZONE, options=applied, columns=_columns(columns), rows=body_rows,
        total=total, read_from=source,
    ))


SINCE = Annotated[str | None, QueryParameter(name="since", description="first day (YYYY-MM-DD, Asia/Shanghai), included")]
UNTIL = Annotated[str | None, QueryParameter(name="until", description="last day (YYYY-MM-DD, Asia/Shanghai), included")]
NODE = Annotated[str | None, QueryParameter(name="node", description="jurisdiction code (default: your node)")]
FORMAT = Annotated[Format, QueryParameter(name="format", description="json, csv (UTF-8 with BOM) or xlsx")]


class ReportController(Controller):
    path = "/api/tenants/{tenant:str}/reports"
    tags = ["reports"]

    @get("/")
    async def index(self, request: Request[Principal, Any, Any], tenant: FromPath[str]) -> list[ReportInfo]:
        """The reports there are, with their columns and options; bureau roles."""
        await bureau_node(request, tenant, request.user.node or "")
        return [ReportInfo(name=s.name, title=s.title_zh, title_en=s.title_en, options=list(s.options),
                           columns=_columns(s.columns)) for s in SPECS.values()]

    @get("/class-table")
    async def class_table(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: NODE = None, since: SINCE = None,
        until: UNTIL = None, format: FORMAT = "json",
    ) -> Response:
        """Art. 20 indicators per enterprise class over the complaints of ``node``'s subtree that entered
        ODR between ``since`` and ``until`` (both included, both optional), plus a total row: handled,
        with feedback, settled, settlement rate, closed, average and 90th-percentile cycle (days; the
        percentile exact to the minute), amount recovered, ratings, deadline breaches."""
        return await run_report(request, tenant, SPECS["class-table"], node, since, until, format)

    @get("/complaints-by-state")
    async def complaints_by_state(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: NODE = None, since: SINCE = None,
        until: UNTIL = None, format: FORMAT = "json",
    ) -> Response:
        """Complaints received in the period per state (rows) and enterprise class (columns
        ``class_<code>``, ``class_`` = unclassified or no ODR unit), with totals."""
        return await run_report(request, tenant, SPECS["complaints-by-state"], node, since, until, format)

    @get("/coverage")
    async def coverage(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: NODE = None, since: SINCE = None,
        until: UNTIL = None, format: FORMAT = "json",
        year: Annotated[int | None, QueryParameter(name="year", ge=2018, le=2100)] = None,
    ) -> Response:
        """Per district of ``node``'s subtree: ODR units active at the end of the period (default: now),
        new ones in the period, the ``year``'s target (default: the year of ``until`` or this year),
        covered or not; the total against the node's own target (else the districts' sum)."""
        return await run_report(request, tenant, SPECS["coverage"], node, since, until, format, year=year)

    @get("/top-merchants")
    async def top_merchants(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: NODE = None, since: SINCE = None,
        until: UNTIL = None, format: FORMAT = "json", top: Top = 20,
        by: Annotated[Literal["unit", "company"], QueryParameter(name="by")] = "unit",
    ) -> Response:
        """The ``top`` companies by complaints received in the period (ODR units and others), with
        settlement rate, cycle and amount recovered. ``by=unit`` counts an ODR unit's complaints
        together; ``by=company`` per company name as filed (a mall's merchants separately)."""
        return await run_report(request, tenant, SPECS["top-merchants"], node, since, until, format, top=top, by=by)

    @get("/hot-spots")
    async def hot_spots(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: NODE = None, since: SINCE = None,
        until: UNTIL = None, format: FORMAT = "json", top: Top = 50,
    ) -> Response:
        """Complaints per category received in the period (default: the 30 days up to today) against the
        previous period of the same length, with the change (Art. 19)."""
        return await run_report(request, tenant, SPECS["hot-spots"], node, since, until, format, top=top)


class CoverageTargetController(Controller):
    """Coverage targets for the coverage report: set by a province admin or a city bureau."""

    path = "/api/tenants/{tenant:str}/coverage-targets"
    tags = ["reports"]

    @get("/")
    async def list_targets(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: NODE = None,
        year: Annotated[int | None, QueryParameter(name="year", ge=2018, le=2100)] = None,
    ) -> list[T.Target]:
        """Targets set for ``node``'s subtree (default: your node), optionally for one ``year``; bureau roles."""
        if node is not None and not NODE_CODE.match(node):
            raise QueryInvalid("node", f"expected a jurisdiction code, got {node!r}")
        platform, _, n = await bureau_node(request, tenant, node or request.user.node or "")
        nodes = await platform.nodes(tenant)
        async with tenant_transaction(tenant) as conn:
            return await T.list_targets(conn, nodes, n, year)

    @put("/")
    async def set_target(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], data: JSONBody[T.TargetInput]
    ) -> T.Target:
        """Set (or replace) the target number of ODR units of a province, city or district node for a
        year: ``{"node_code": "320205", "year": 2026, "target_units": 12}``. Province admin, or a
        bureau officer of a city; the node must lie in your subtree."""
        platform, principal = await tenant_member(request, tenant)
        nodes = await platform.nodes(tenant)
        T.check_setter(principal, nodes)
        node = T.target_node(principal, nodes, data.node_code)
        async with tenant_transaction(tenant) as conn:
            return await T.save(conn, principal, node, data)

    @delete("/{node_code:str}/{year:int}", status_code=204)
    async def delete_target(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], node_code: FromPath[str],
        year: Annotated[int, PathParameter(ge=2018, le=2100)],
    ) -> None:
        """Remove a node's target for a year (same callers as setting it); 404 when there is none."""
        platform, principal = await tenant_member(request, tenant)
        nodes = await platform.nodes(tenant)
        T.check_setter(principal, nodes)
        node = T.target_node(principal, nodes, node_code)
        async with tenant_transaction(tenant) as conn:
            if not await T.delete(conn, node, year):
                raise NotFound(f"no target for {node_code} in {year}")


__all__ = ["CoverageTargetController", "ReportController", "parse_date"]
