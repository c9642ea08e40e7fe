"""The statistics dashboard of the bureau roles (issue 5): the reports of :mod:`core.reports` for a node
of the caller's subtree and a period, with charts (ECharts) and CSV / XLSX exports.

Contract:
- Every report is run by :func:`core.reports.api.run_report`, the API's own function: the same access
  rule (a bureau role whose subtree covers the node, else 404), the same input checks (dates
  ``YYYY-MM-DD``, ``until`` not before ``since``: shown next to the date field), the same SQL and the
  same export (CSV UTF-8 with BOM, XLSX) — the export links are /ui routes answered with the session
  cookie, so they need no API token.
- The page shows the class table (Jinshan's A/B/C shape), complaints by state and class, coverage per
  district against the year's targets, the merchants with the most complaints and the hot-spot
  categories; plus a monthly trend of the settlement rate and cycle, the class table's total row per
  month of the window (the last six months when the window is open), computed by the registry's
  ``class-table`` report in one tenant transaction (:func:`core.reports.trend.monthly_totals`). The reports run side by side (one transaction each).
- The figures for the charts are embedded as JSON in ``<script type="application/json">`` (Jinja's
  ``tojson``, which escapes ``<``, ``>``, ``&`` and ``'``), drawn by /ui/static/statistics.js once the
  page has loaded (ECharts is fetched then); every chart has its table next to it, so the page works
  without JavaScript.
- Coverage targets (province admin, or a bureau officer of a city): the API's
  ``CoverageTargetController.set_target`` (same checks); errors next to the field.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from admin_ui import i18n
from admin_ui.forms import field_errors, read_form, to_struct
from admin_ui.pages.common import call_api, node_label, platform_of, subtree
from admin_ui.render import fmt_money, fmt_rate, language, page, redirect, require
from core.api.errors import Forbidden
from core.auth.principal import BUREAU_ROLES, Principal
from core.deadlines.api import QueryInvalid
from core.reports import targets as T
from core.reports.api import CoverageTargetController, parse_date, run_report
from core.reports.common import today
from core.reports.registry import SPECS
from core.reports.trend import monthly_totals

OPTIONS: dict[str, dict[str, Any]] = {
    "class-table": {},
    "complaints-by-state": {},
    "coverage": {"year": None},
    "top-merchants": {"top": 20, "by": "unit"},
    "hot-spots": {"top": 20},
}
"""The report options the page uses (the exports use the same)."""

SHOWN: dict[str, tuple[str, ...] | None] = {
    "class-table": ("enterprise_class", "label", "handled", "with_feedback", "settled", "settlement_rate", "closed",
                    "avg_cycle_days", "p90_cycle_days", "amount_recovered", "avg_rating", "breaches"),
    "complaints-by-state": None,  # every column but the state code (one per class present)
    "coverage": ("node_name", "parent_name", "units", "member_merchants", "new_units", "target", "covered", "target_met",
                 "gap"),
    "top-merchants": ("rank", "company_name", "odr_unit", "enterprise_class", "node_name", "complaints", "in_odr",
                      "settlement_rate", "avg_cycle_days", "amount_recovered", "breaches"),
    "hot-spots": ("rank", "category", "complaints", "share", "previous", "change", "change_rate", "settlement_rate"),
}
"""The columns shown on the page (the exports have all of them)."""

TITLES = {"class-table": "stats.class_table", "complaints-by-state": "stats.by_state", "coverage": "stats.coverage",
          "top-merchants": "stats.top_merchants", "hot-spots": "stats.hot_spots"}
TREND_MONTHS = 6
TREND_MAX = 12


def _label(col: Any, lang: str) -> str:
    key = f"col.{col.key}"
    if i18n.has(key):
        return i18n.t(key, lang)
    if col.key.startswith("class_"):
        code = col.key[len("class_"):]
        return i18n.t("stats.class_col", lang, code=code) if code else i18n.t("stats.unclassified", lang)
    return col.en if lang == "en" else col.zh


def _cell(kind: str, key: str, value: Any, lang: str) -> str:
    if value is None:
        return "—"
    if kind == "bool":
        return i18n.t("common.yes" if value else "common.no", lang)
    if kind == "rate":
        return fmt_rate(value)
    if kind == "money":
        return fmt_money(value)
    if kind in ("days", "float"):
        return f"{value:.2f}"
    if key == "enterprise_class":
        return value or i18n.t("stats.unclassified", lang)
    if key == "category" and value == "":
        return i18n.t("stats.unclassified", lang)
    if key == "state_label":
        return value
    return str(value)


def _table(name: str, body: Any, lang: str) -> dict:
    """A report's JSON body -> the page's table: shown columns, formatted cells, total row."""
    wanted = SHOWN[name]
    columns = [c for c in body.columns if (c.key != "state" if wanted is None else c.key in wanted)]
    if wanted is not None:
        columns.sort(key=lambda c: wanted.index(c.key))

    def cells(row: dict, is_total: bool = False) -> list[dict]:
        out = []
        for c in columns:
            value = row.get(c.key)
            if c.key == "state_label" and row.get("state"):
                text = i18n.t(f"state.{row['state']}", lang) if i18n.has(f"state.{row['state']}") else str(value)
            elif is_total and c.kind == "text":
                text = ""  # the total row names no class, category or company
            else:
                text = _cell(c.kind, c.key, value, lang)
            out.append({"text": text, "numeric": c.kind in ("int", "float", "rate", "money", "days")})
        return out

    total = None
    if body.total is not None:
        total = cells(body.total, is_total=True)
        if total:
            total[0] = {"text": i18n.t("stats.total", lang), "numeric": False}
    return {"name": name, "title": TITLES[name], "columns": [{"key": c.key, "label": _label(c, lang),
                                                               "numeric": c.kind in ("int", "float", "rate", "money", "days")}
                                                              for c in columns],
            "rows": [cells(r) for r in body.rows], "total": total, "options": body.options}


def _months(since: dt.date | None, until: dt.date | None) -> list[tuple[str, dt.date, dt.date]]:
    """(label, first day, last day) of each month of the window, clipped to it; at most TREND_MAX."""
    last = until or today()
    first = since or (last.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    if since is None:
        for _ in range(TREND_MONTHS - 2):
            first = (first - dt.timedelta(days=1)).replace(day=1)
    out = []
    cursor = first.replace(day=1)
    while cursor <= last:
        nxt = (cursor + dt.timedelta(days=32)).replace(day=1)
        out.append((f"{cursor:%Y-%m}", max(cursor, first), min(nxt - dt.timedelta(days=1), last)))
        cursor = nxt
    return out[-TREND_MAX:]


async def _trend(tenant: str, node_path: str, since: dt.date | None, until: dt.date | None) -> dict:
    return await monthly_totals(tenant, node_path, _months(since, until))


def _charts(bodies: dict[str, Any], trend: dict, lang: str, nodes: dict) -> dict:
    def t(key: str, **values: Any) -> str:
        return i18n.t(key, lang, **values)

    classes = bodies["class-table"].rows
    states = [r for r in bodies["complaints-by-state"].rows]
    coverage = bodies["coverage"].rows
    hot = bodies["hot-spots"].rows[:15]
    merchants = bodies["top-merchants"].rows[:10]
    return {
        "labels": {"rate": t("stats.chart_rate"), "cycle": t("stats.chart_cycle"), "handled": t("stats.chart_handled"),
                   "units": t("stats.chart_units"), "target": t("stats.chart_target"),
                   "complaints": t("stats.chart_complaints"), "previous": t("stats.chart_previous"),
                   "count": t("stats.chart_count")},
        "classes": {"labels": [r["enterprise_class"] or t("stats.unclassified") for r in classes],
                    "settlement_rate": [round(r["settlement_rate"] * 100, 1) if r["settlement_rate"] is not None else None
                                        for r in classes],
                    "avg_cycle_days": [r["avg_cycle_days"] for r in classes],
                    "handled": [r["handled"] for r in classes]},
        "states": {"labels": [t(f"state.{r['state']}") if i18n.has(f"state.{r['state']}") else r["state"] for r in states],
                   "values": [r.get("total", 0) for r in states]},
        "coverage": {"labels": [node_label(nodes, r["node_code"], lang) for r in coverage],
                     "units": [r["units"] for r in coverage], "target": [r["target"] for r in coverage]},
        "hotspots": {"labels": [r["category"] or t("stats.unclassified") for r in hot],
                     "complaints": [r["complaints"] for r in hot], "previous": [r["previous"] for r in hot]},
        "merchants": {"labels": [r["company_name"] for r in merchants], "complaints": [r["complaints"] for r in merchants]},
        "trend": trend,
    }


def _can_set_targets(principal: Principal, nodes: dict) -> bool:
    try:
        T.check_setter(principal, nodes)
    except Forbidden:
        return False
    return True


async def _dashboard(request: Request, *, status: int = 200, target_errors: dict | None = None,
                     target_form: dict | None = None) -> Response:
    principal = require(request, BUREAU_ROLES)
    platform = platform_of(request)
    tenant = principal.tenant or ""
    nodes = await platform.nodes(tenant)
    lang = language(request)
    query = request.query_params
    own = nodes.get(principal.node or "")
    node_code = (query.get("node") or principal.node or "").strip()[:40]
    node = nodes.get(node_code)
    if node is None or not principal.covers(node.path):
        raise KeyError(f"node {node_code!r} not found in your jurisdiction")
    form = {"node": node_code, "since": (query.get("since") or "").strip()[:10],
            "until": (query.get("until") or "").strip()[:10]}
    errors: dict[str, str] = {}
    since = until = None
    try:
        since = parse_date("since", form["since"] or None)
    except QueryInvalid as exc:
        errors["since"] = exc.problem
    try:
        until = parse_date("until", form["until"] or None)
    except QueryInvalid as exc:
        errors["until"] = exc.problem
    if since and until and since > until:
        errors["until"] = f"until ({until}) is before since ({since})"
    context: dict[str, Any] = {
        "form": form, "errors": errors, "tables": [], "charts": None, "node_name": node_label(nodes, node.code, lang),
        "node_options": [{"value": n.code, "label": ("— " * (len(n.path) - len(own.path if own else ()))) + node_label(nodes, n.code, lang)}
                         for n in subtree(nodes, principal.node_path)],
        "export_query": "", "hot_window": None, "coverage_year": None,
        "can_set_targets": _can_set_targets(principal, nodes),
        "target_nodes": [{"value": n.code, "label": node_label(nodes, n.code, lang)}
                         for n in subtree(nodes, principal.node_path) if n.level in T.TARGET_LEVELS],
        "target_errors": target_errors or {}, "target_form": target_form or {},
        "this_year": (until or today()).year,
    }
    if errors:
        return page(request, "statistics.html", status=400, **context)
    answers = await asyncio.gather(  # each report in its own transaction: they run side by side
        *(run_report(request, tenant, SPECS[name], node.code, form["since"] or None, form["until"] or None, "json", **opts)
          for name, opts in OPTIONS.items()),
        _trend(tenant, "/".join(node.path), since, until))
    trend = answers[-1]
    bodies: dict[str, Any] = {name: answer.content for name, answer in zip(OPTIONS, answers)}
    tables = {name: _table(name, body, lang) for name, body in bodies.items()}
    options = bodies["hot-spots"].options
    context.update(
        tables=tables, charts=_charts(bodies, trend, lang, nodes),
        trend_rows=list(zip(trend["labels"], trend["handled"], trend["settlement_rate"], trend["avg_cycle_days"])),
        export_query=urlencode({k: v for k, v in form.items() if v}),
        hot_window={"since": bodies["hot-spots"].since, "until": bodies["hot-spots"].until,
                    "psince": options.get("previous_since"), "puntil": options.get("previous_until")},
        coverage_year=bodies["coverage"].options.get("year"),
    )
    return page(request, "statistics.html", status=status, **context)


@get("/statistics")
async def statistics(request: Request) -> Response:
    return await _dashboard(request)


@get("/statistics/export/{report:str}")
async def export(request: Request, report: FromPath[str]) -> Response:
    """One report as a file (``format`` csv or xlsx) for the page's node and period."""
    principal = require(request, BUREAU_ROLES)
    spec = SPECS.get(report)
    fmt = request.query_params.get("format", "csv")
    if spec is None or fmt not in ("csv", "xlsx"):
        raise KeyError("no such report or format")
    query = request.query_params
    return await run_report(request, principal.tenant or "", spec, query.get("node") or None, query.get("since") or None,
                            query.get("until") or None, fmt, **OPTIONS[report])


@post("/statistics/targets")
async def set_target(request: Request) -> Response:
    principal = require(request, BUREAU_ROLES)
    data = await read_form(request)
    fields = {k: data.get(k, "") for k in ("node_code", "year", "target_units")}
    try:
        body = to_struct(fields, T.TargetInput)
        await call_api(CoverageTargetController.set_target, request, tenant=principal.tenant or "", data=body)
    except (msgspec.ValidationError, ValueError) as exc:  # the dashboard of the page's node and period again
        return await _dashboard(request, status=400, target_errors=field_errors(exc), target_form=fields)
    query = urlencode({k: v for k in ("node", "since", "until") if (v := request.query_params.get(k))})
    return redirect(f"/ui/statistics?{query}#coverage" if query else "/ui/statistics#coverage", done="stats.target_saved")


HANDLERS = [statistics, export, set_target]
