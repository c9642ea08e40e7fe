"""Statistics reports (issue 5): the class table of the Art. 20 indicators, as JSON or CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any, Literal

import msgspec
from litestar import Controller, Request, Response, get
from litestar.params import FromPath, FromQuery

from core.api.access import bureau_node
from core.auth.principal import Principal
from core.db.engine import tenant_transaction
from core.deadlines.api import QueryInvalid
from core.reports.sql import TIMEZONE, class_table


class ClassRow(msgspec.Struct, kw_only=True):
    enterprise_class: str
    """``enterprises.classification->>'code'``; ``''`` when the unit has no class (or no unit)."""
    label: str | None
    handled: int
    with_feedback: int
    settled: int
    settlement_rate: float | None
    """settled / with_feedback (None without feedback)."""
    closed: int
    avg_cycle_days: float | None
    p90_cycle_days: float | None
    """Entered ODR -> closed, over the closed complaints."""
    amount_recovered: float
    rated: int
    avg_rating: float | None
    breaches: int
    contact_breaches: int
    close_breaches: int


class ClassTable(msgspec.Struct, kw_only=True):
    tenant: str
    node: str
    node_name: str
    since: dt.date | None
    until: dt.date | None
    timezone: str
    rows: list[ClassRow]
    total: ClassRow


COLUMNS: tuple[tuple[str, str], ...] = (
    ("enterprise_class", "企业分类"),
    ("label", "分类名称"),
    ("handled", "处理件数"),
    ("with_feedback", "已反馈件数"),
    ("settled", "和解件数"),
    ("settlement_rate", "和解率"),
    ("closed", "办结件数"),
    ("avg_cycle_days", "平均处理周期（天）"),
    ("p90_cycle_days", "90%处理周期（天）"),
    ("amount_recovered", "挽回经济损失（元）"),
    ("rated", "评价件数"),
    ("avg_rating", "平均满意度"),
    ("breaches", "超时次数"),
    ("contact_breaches", "联系超时件数"),
    ("close_breaches", "办结超时件数"),
)


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


def _row(r) -> ClassRow:
    return ClassRow(
        enterprise_class="" if r["is_total"] else r["cls"],
        label=None if r["is_total"] else r["label"],
        **{k: r[k] for k, _ in COLUMNS[2:]},
    )


def to_csv(report: ClassTable) -> bytes:
    """UTF-8 with a BOM (spreadsheet software then reads the Chinese right), one bilingual header row,
    the class rows and a total row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([f"{zh} {en}" for en, zh in COLUMNS])
    for i, row in enumerate([*report.rows, report.total]):
        values = msgspec.structs.asdict(row)
        if i == len(report.rows):
            values["enterprise_class"], values["label"] = "合计 total", None
        writer.writerow(["" if values[k] is None else values[k] for k, _ in COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


class ReportController(Controller):
    path = "/api/tenants/{tenant:str}/reports"
    tags = ["reports"]

    @get("/class-table")
    async def class_table(
        self,
        request: Request[Principal, Any, Any],
        tenant: FromPath[str],
        node: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
        format: FromQuery[Literal["json", "csv"]] = "json",
    ) -> Response:
        """Art. 20 indicators per enterprise class over the complaints of ``node``'s subtree (default:
        the caller's node) that entered ODR between ``since`` and ``until`` (Asia/Shanghai dates, both
        included, both optional), plus a total row. Bureau roles whose subtree covers ``node`` (404
        otherwise). ``format=csv``: UTF-8 with BOM, bilingual header row, as an attachment."""
        code = node or request.user.node or ""
        platform, _, n = await bureau_node(request, tenant, code)
        first, last = parse_date("since", since), parse_date("until", until)
        if first and last and first > last:
            raise QueryInvalid("until", f"until ({last}) is before since ({first})")
        async with tenant_transaction(tenant) as conn:
            records = await class_table(conn, "/".join(n.path), first, last)
        rows = [_row(r) for r in records]
        report = ClassTable(tenant=tenant, node=n.code, node_name=n.name, since=first, until=last,
                            timezone=TIMEZONE, rows=rows[:-1], total=rows[-1])
        if format == "csv":
            filename = f"class-table_{tenant}_{n.code}_{first or 'start'}_{last or 'now'}.csv"
            return Response(
                to_csv(report),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{filename}"'},
            )
        return Response(report)
