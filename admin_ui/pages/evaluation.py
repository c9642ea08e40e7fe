"""Efficacy evaluation (Art. 20-21), exit proposals (Art. 22) and the public results (Art. 23).

Contract:
- Everything goes through :mod:`core.evaluation.service`, which decides who may do what: every
  bureau role reads periods, runs, results and reproductions; only the provincial admin defines
  periods, runs and publishes (the forms are shown to it only; anyone else posting gets 403).
- ``/ui/evaluation``: the periods with their runs and (province admin) the period form.
  ``/ui/evaluation/periods/{id}``: its runs and the run settings form (``EvaluationSettings``: errors
  next to each field). A run is long: with htmx the form posts in place with a progress indicator and
  the browser is sent to the run page (``HX-Redirect``); without JavaScript the form posts and the
  answer redirects there (303).
- ``/ui/evaluation/runs/{id}``: the run's settings, the per-class summary, the policies used per node,
  the results paged with filters (node subtree, class, name or credit code) with candidates (Art. 21)
  and units below the exit threshold marked; reproduce (in place with htmx; a full page without),
  publish (province admin), export of the (filtered) results as CSV or XLSX through the reports'
  exporter (:mod:`core.reports.export`).
- ``/ui/evaluation/proposals``: Art. 22 proposals of the caller's subtree (status filter), the decision
  form (revoke / dismiss with a note) for the roles that decide; ``/ui/evaluation/proposals/new``:
  raise a ground from a complaint or a spot check (the complaint page links here, prefilled).
- ``/ui/public/{province}/results``: the published runs and their results (paged, class filter,
  search) from :func:`core.evaluation.service.published_results`, which holds nothing personal.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from admin_ui import i18n
from admin_ui.forms import field_errors, read_form, to_struct
from admin_ui.pages.common import account_names, node_label, platform_of
from admin_ui.render import SECURITY_HEADERS, language, page, redirect, require
from core.api.backpressure import expensive_slot
from core.api.errors import Conflict
from core.auth.principal import BUREAU_ROLES, POLICY_ROLES, Role
from core.enterprises import service as enterprises
from core.enterprises.common import FieldError
from core.evaluation import schemas as S
from core.evaluation import proposals as exit_proposals
from core.evaluation import periods as evaluation_periods, service
from core.reports.common import Column
from core.reports.export import attachment, to_csv, to_xlsx

PAGE_SIZE = 50
EXPORT_CHUNK = 5_000
SETTINGS_FIELDS = ("candidate_top", "candidate_min_score", "exit_threshold", "exit_consecutive_periods", "min_handled")
PROPOSAL_STATUSES = ("proposed", "revoked", "dismissed")


def _page_no(value: str | None) -> int:
    try:
        return max(1, min(100_000, int(value or 1)))
    except ValueError:
        return 1


def _text(value: str | None, limit: int) -> str | None:
    return (value or "").strip()[:limit] or None


def _htmx(request: Request) -> bool:
    return bool(request.headers.get("hx-request"))


def _pager(path: str, filters: dict[str, str], page_no: int, total: int) -> dict:
    pages = max(1, -(-total // PAGE_SIZE))
    query = {k: v for k, v in filters.items() if v}

    def url(n: int) -> str:
        return f"{path}?{urlencode({**query, 'page': n})}"

    return {"page_no": page_no, "pages": pages, "prev": url(page_no - 1) if page_no > 1 else None,
            "next": url(page_no + 1) if page_no < pages else None}


def _node_options(nodes: dict, lang: str, levels: tuple[str, ...] = ("province", "city", "district", "office")) -> list[dict]:
    return [{"value": n.code, "label": ("— " * (len(n.path) - 1)) + node_label(nodes, n.code, lang)}
            for n in sorted(nodes.values(), key=lambda n: n.path) if n.level in levels]


# -- periods ---------------------------------------------------------------------------------------
def _period_fields() -> list[dict]:
    kinds = [{"value": k.value, "label_key": f"eval.kind.{k.value}"} for k in S.PeriodKind]
    return [
        {"name": "kind", "widget": "select", "label": "eval.kind", "required": True, "options": kinds},
        {"name": "starts_on", "widget": "date", "label": "eval.starts_on", "required": True},
    ]


async def _overview(request: Request, *, status: int = 200, errors: dict | None = None, form: dict | None = None) -> Response:
    principal = require(request, BUREAU_ROLES)
    tenant = principal.tenant or ""
    platform = platform_of(request)
    periods = await evaluation_periods.list_periods(platform, tenant, principal)
    rows = []
    for p in periods:
        runs = await service.list_evaluations(platform, tenant, principal, p.id)
        rows.append({"p": p, "runs": runs})
    return page(request, "evaluation.html", status=status, periods=rows, errors=errors or {}, form=form or {},
                admin=principal.role is Role.PROVINCE_ADMIN, period_fields=_period_fields())


@get("/evaluation")
async def evaluation(request: Request) -> Response:
    return await _overview(request)


@post("/evaluation/periods")
async def create_period(request: Request) -> Response:
    principal = require(request, BUREAU_ROLES)
    data = await read_form(request)
    try:
        body = to_struct(data, S.PeriodCreate)
        created = await evaluation_periods.create_period(platform_of(request), principal.tenant or "", principal, body)
    except (msgspec.ValidationError, FieldError) as exc:
        return await _overview(request, status=getattr(exc, "status_code", 400), errors=field_errors(exc), form=data)
    return redirect(f"/ui/evaluation/periods/{created.id}", done="eval.period_created")


def _settings_fields() -> list[dict]:
    defaults = S.EvaluationSettings()
    return [
        {"name": "candidate_top", "widget": "number", "label": "eval.candidate_top", "required": True, "min": 0, "max": 1000,
         "step": "1", "value": defaults.candidate_top},
        {"name": "candidate_min_score", "widget": "number", "label": "eval.candidate_min_score", "required": True, "min": 0,
         "max": 100, "step": "0.1", "value": defaults.candidate_min_score},
        {"name": "exit_threshold", "widget": "number", "label": "eval.exit_threshold", "required": True, "min": 0, "max": 100,
         "step": "0.1", "value": defaults.exit_threshold},
        {"name": "exit_consecutive_periods", "widget": "number", "label": "eval.exit_consecutive_periods", "required": True,
         "min": 1, "max": 12, "step": "1", "value": defaults.exit_consecutive_periods},
        {"name": "min_handled", "widget": "number", "label": "eval.min_handled", "required": True, "min": 1, "max": 100000,
         "step": "1", "value": defaults.min_handled},
    ]


async def _period_page(request: Request, period_id: str, *, status: int = 200, errors: dict | None = None,
                       form: dict | None = None) -> Response:
    principal = require(request, BUREAU_ROLES)
    platform = platform_of(request)
    tenant = principal.tenant or ""
    runs = await service.list_evaluations(platform, tenant, principal, period_id)  # 404 for an unknown period
    period = next((p for p in await evaluation_periods.list_periods(platform, tenant, principal) if p.id == period_id), None)
    if period is None:
        raise KeyError("period not found")
    return page(request, "evaluation_period.html", status=status, p=period, runs=runs, errors=errors or {}, form=form or {},
                admin=principal.role is Role.PROVINCE_ADMIN, settings_fields=_settings_fields(),
                who=await account_names(r["started_by"] for r in runs))


@get("/evaluation/periods/{period_id:str}")
async def period_page(request: Request, period_id: FromPath[str]) -> Response:
    return await _period_page(request, period_id)


@post("/evaluation/periods/{period_id:str}/run")
async def run(request: Request, period_id: FromPath[str]) -> Response:
    """Run an evaluation of the period with the settings of the form (see the module contract)."""
    principal = require(request, BUREAU_ROLES)
    data = await read_form(request)
    try:
        settings = to_struct({k: v for k, v in data.items() if k in SETTINGS_FIELDS}, S.EvaluationSettings)
        done = await service.run_evaluation(platform_of(request), principal.tenant or "", principal, period_id, settings)
    except (msgspec.ValidationError, FieldError, Conflict) as exc:
        status = getattr(exc, "status_code", 409 if isinstance(exc, Conflict) else 400)
        errors = field_errors(exc)
        return await _period_page(request, period_id, status=status, errors=errors, form=data)
    target = f"/ui/evaluation/runs/{done.id}?" + urlencode({"done": "eval.ran", "raised": done.proposals_raised})
    if _htmx(request):
        return Response(b"", status_code=204, headers={**SECURITY_HEADERS, "HX-Redirect": target})
    return redirect(target)


# -- a run -----------------------------------------------------------------------------------------
def _filters(request: Request) -> dict[str, str]:
    query = request.query_params
    return {"node": _text(query.get("node"), 40) or "", "class": _text(query.get("class"), 40) or "",
            "q": _text(query.get("q"), 100) or ""}


async def _run_context(request: Request, evaluation_id: str) -> dict[str, Any]:
    principal = require(request, BUREAU_ROLES)
    platform = platform_of(request)
    tenant = principal.tenant or ""
    run_ = await service.get_evaluation(platform, tenant, principal, evaluation_id)
    nodes = await platform.nodes(tenant)
    lang = language(request)
    filters = _filters(request)
    if filters["node"] not in nodes:
        filters["node"] = ""
    page_no = _page_no(request.query_params.get("page"))
    results = await service.results(platform, tenant, principal, evaluation_id, offset=(page_no - 1) * PAGE_SIZE,
                                    limit=PAGE_SIZE, node=filters["node"] or None, cls=filters["class"] or None,
                                    q=filters["q"] or None)
    admin = principal.role is Role.PROVINCE_ADMIN
    period = run_.period
    can_publish = admin and run_.published_at is None and (period.status == "open" or period.final_evaluation_id == run_.id)
    raised = request.query_params.get("raised")
    export_query = urlencode({k: v for k, v in filters.items() if v})
    return {
        "e": run_, "results": results, "filters": filters, "admin": admin, "can_publish": can_publish,
        "pager": _pager(f"/ui/evaluation/runs/{run_.id}", filters, page_no, results.total),
        "node_options": _node_options(nodes, lang), "node_names": {c: node_label(nodes, c, lang) for c in nodes},
        "classes": [c.enterprise_class for c in run_.classes],
        "raised": int(raised) if raised and raised.isdigit() else None,
        "export_query": ("&" + export_query) if export_query else "",
        "reproduction": None, "who": await account_names([run_.started_by]),
    }


@get("/evaluation/runs/{evaluation_id:str}")
async def run_page(request: Request, evaluation_id: FromPath[str]) -> Response:
    return page(request, "evaluation_run.html", **await _run_context(request, evaluation_id))


@post("/evaluation/runs/{evaluation_id:str}/reproduce")
async def reproduce(request: Request, evaluation_id: FromPath[str]) -> Response:
    """Score the stored run again (reads only); with htmx the answer is the result fragment."""
    principal = require(request, BUREAU_ROLES)
    result = await service.reproduce(platform_of(request), principal.tenant or "", principal, evaluation_id)
    if _htmx(request):
        return page(request, "reproduce_result.html", reproduction=result)
    context = await _run_context(request, evaluation_id)
    context["reproduction"] = result
    return page(request, "evaluation_run.html", **context)


@post("/evaluation/runs/{evaluation_id:str}/publish")
async def publish(request: Request, evaluation_id: FromPath[str]) -> Response:
    principal = require(request, BUREAU_ROLES)
    data = await read_form(request)
    try:
        decision = to_struct(data, S.PublishRequest, checkboxes=("accept_unscored",))
        await service.publish(platform_of(request), principal.tenant or "", principal, evaluation_id, decision)
    except (Conflict, FieldError, msgspec.ValidationError) as exc:
        context = await _run_context(request, evaluation_id)
        return page(request, "evaluation_run.html", status=409, publish_error=str(exc), **context)
    return redirect(f"/ui/evaluation/runs/{evaluation_id}#publish", done="eval.published_ok")


EXPORT_COLUMNS = (
    ("class_rank", "eval.rank", "int"), ("class_size", "eval.units", "int"), ("name", "unit.name", "text"),
    ("credit_code", "unit.credit_code", "text"), ("node_name", "eval.node", "text"), ("enterprise_class", "eval.class", "text"),
    ("score", "eval.score", "float"), ("handled", "eval.handled", "int"), ("with_feedback", "eval.with_feedback", "int"),
    ("settled", "eval.settled", "int"), ("settlement_rate", "eval.settlement_rate", "rate"), ("rated", "eval.rated", "int"),
    ("satisfaction", "eval.satisfaction", "float"), ("closed", "eval.closed", "int"), ("avg_cycle_days", "eval.avg_cycle", "days"),
    ("p90_cycle_days", "eval.p90_cycle", "days"), ("on_time_contact_rate", "eval.on_time_contact", "rate"),
    ("on_time_close_rate", "eval.on_time_close", "rate"), ("breaches", "eval.breaches", "int"),
    ("untrue_feedback_findings", "eval.untrue_feedback", "int"), ("amount_recovered", "eval.amount_recovered", "money"), ("candidate", "eval.candidate_badge", "bool"),
    ("below_threshold", "eval.below_badge", "bool"), ("plugin", "eval.plugin", "text"), ("plugin_version", "eval.version", "text"),
)
"""The columns of the results export: (key of :class:`~core.evaluation.schemas.Result`, label, kind)."""


def _export_columns() -> list[Column]:
    """The export's columns with both labels from i18n (the exporter writes ``中文 English`` headers)."""
    return [Column(key, i18n.t(label, "zh"), i18n.t(label, "en"), kind) for key, label, kind in EXPORT_COLUMNS]  # type: ignore[arg-type]


@get("/evaluation/runs/{evaluation_id:str}/export")
async def export_results(request: Request, evaluation_id: FromPath[str]) -> Response:
    """The run's results (with the page's filters) as CSV (UTF-8 with BOM) or XLSX; expensive work of the
    province (:func:`~core.api.backpressure.expensive_slot`)."""
    principal = require(request, BUREAU_ROLES)
    fmt = request.query_params.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        raise KeyError("no such format")
    async with expensive_slot(platform_of(request).settings, principal.tenant or "", "export"):
        return await _export_results(request, principal, evaluation_id, fmt)


async def _export_results(request: Request, principal, evaluation_id: str, fmt: str) -> Response:
    platform = platform_of(request)
    tenant = principal.tenant or ""
    run_ = await service.get_evaluation(platform, tenant, principal, evaluation_id)
    filters = _filters(request)
    rows: list[dict] = []
    while True:
        chunk = await service.results(platform, tenant, principal, evaluation_id, offset=len(rows), limit=EXPORT_CHUNK,
                                      node=filters["node"] or None, cls=filters["class"] or None, q=filters["q"] or None)
        rows += [msgspec.to_builtins(r) for r in chunk.results]
        if not chunk.results or len(rows) >= chunk.total:
            break
    columns = _export_columns()
    label = run_.period.label
    filename = f"evaluation_{tenant}_{label}_run{run_.run_no}.{fmt}"
    title = f"效能评价结果 {label}"
    if fmt == "csv":
        return attachment(to_csv(columns, rows), fmt, filename, title)
    about = [("租户 tenant", tenant), ("周期 period", f"{label} ({run_.period.starts_on} – {run_.period.ends_on})"),
             ("运行 run", run_.run_no), ("开始 started", run_.started_at.isoformat(timespec="seconds")),
             ("公示 published", run_.published_at.isoformat(timespec="seconds") if run_.published_at else "—"),
             *((f"筛选 {k}", v) for k, v in filters.items() if v),
             ("设置 settings", msgspec.json.encode(run_.settings).decode())]
    return attachment(to_xlsx(columns, rows, title=f"{title} evaluation results", about=about), fmt, filename, title)


# -- exit proposals (Art. 22) ------------------------------------------------------------------------
async def _proposals_page(request: Request, *, status: int = 200, errors: dict | None = None, failed: str | None = None,
                          form: dict | None = None) -> Response:
    principal = require(request, BUREAU_ROLES)
    platform = platform_of(request)
    tenant = principal.tenant or ""
    chosen = request.query_params.get("status", "proposed")
    if chosen not in (*PROPOSAL_STATUSES, "all"):
        chosen = "proposed"
    rows = await exit_proposals.list_proposals(platform, tenant, principal, None if chosen == "all" else chosen)
    nodes = await platform.nodes(tenant)
    lang = language(request)
    return page(request, "proposals.html", status=status, rows=rows, status_filter=chosen, statuses=PROPOSAL_STATUSES,
                node_names={c: node_label(nodes, c, lang) for c in nodes}, decider=principal.role in POLICY_ROLES,
                who=await account_names([x.raised_by for x in rows] + [x.decided_by for x in rows]),
                errors=errors or {}, failed=failed, form=form or {})


@get("/evaluation/proposals")
async def proposals(request: Request) -> Response:
    return await _proposals_page(request)


@post("/evaluation/proposals/{proposal_id:str}/decision")
async def decide(request: Request, proposal_id: FromPath[str]) -> Response:
    principal = require(request, BUREAU_ROLES)
    data = await read_form(request)
    try:
        body = to_struct(data, S.ProposalDecision)
        await exit_proposals.decide_proposal(platform_of(request), principal.tenant or "", principal, proposal_id, body)
    except (msgspec.ValidationError, FieldError, Conflict) as exc:
        status = getattr(exc, "status_code", 409 if isinstance(exc, Conflict) else 400)
        errors = field_errors(exc)
        return await _proposals_page(request, status=status, errors=errors, failed=proposal_id, form=data)
    return redirect("/ui/evaluation/proposals?status=all", done="proposal.decided")


async def _raise_page(request: Request, *, status: int = 200, errors: dict | None = None, form: dict | None = None) -> Response:
    principal = require(request, BUREAU_ROLES)
    platform = platform_of(request)
    tenant = principal.tenant or ""
    units = await enterprises.list_units(platform, tenant, principal, node=principal.node or "", status=None, q=None)
    nodes = await platform.nodes(tenant)
    lang = language(request)
    unit_options = [{"value": str(u.id), "label": f"{u.name} ({u.credit_code}, {node_label(nodes, u.node_code, lang)})"}
                    for u in units if u.status in ("active", "suspended")]
    query = request.query_params
    if form is None:
        form = {"enterprise_id": query.get("enterprise_id") or "", "complaint_id": query.get("complaint_id") or "",
                "source": query.get("source") if query.get("source") in ("complaint", "spot_check") else "complaint"}
    fields = [
        {"name": "enterprise_id", "widget": "select", "label": "proposal.enterprise_id", "required": True, "options": unit_options},
        {"name": "ground", "widget": "select", "label": "proposal.ground", "required": True,
         "options": [{"value": g.value, "label_key": f"ground.{g.value}"} for g in S.Ground]},
        {"name": "source", "widget": "radio", "label": "proposal.source", "required": True,
         "options": [{"value": s, "label_key": f"proposal.source.{s}"} for s in ("complaint", "spot_check")]},
        {"name": "complaint_id", "widget": "text", "label": "proposal.complaint_id", "maxlength": 36,
         "hint": i18n.t("proposal.complaint_hint", lang)},
        {"name": "detail", "widget": "textarea", "label": "proposal.detail", "required": True, "maxlength": 2000, "rows": 4},
    ]
    return page(request, "proposal_new.html", status=status, fields=fields, errors=errors or {}, form=form,
                has_units=bool(unit_options))


@get("/evaluation/proposals/new")
async def raise_form(request: Request) -> Response:
    return await _raise_page(request)


@post("/evaluation/proposals")
async def raise_proposal(request: Request) -> Response:
    principal = require(request, BUREAU_ROLES)
    data = await read_form(request)
    try:
        body = to_struct(data, S.ProposalCreate)
        await exit_proposals.raise_proposal(platform_of(request), principal.tenant or "", principal, body)
    except (msgspec.ValidationError, FieldError) as exc:
        return await _raise_page(request, status=getattr(exc, "status_code", 400), errors=field_errors(exc), form=data)
    return redirect("/ui/evaluation/proposals", done="proposal.raised_ok")


# -- public results (Art. 23) ------------------------------------------------------------------------
@get("/public/{tenant:str}/results")
async def published_results(request: Request, tenant: FromPath[str]) -> Response:
    """The province's published evaluations and the results of one of them (nothing personal)."""
    platform = platform_of(request)
    info = await platform.tenant(tenant)  # 404 for an unknown or inactive province
    nodes = await platform.nodes(tenant)
    lang = language(request)
    runs = await service.published(platform, tenant)
    query = request.query_params
    chosen = next((e for e in runs if e.id == query.get("evaluation")), runs[0] if runs else None)
    filters = {"evaluation": chosen.id if chosen else "", "node": _text(query.get("node"), 40) or "",
               "class": _text(query.get("class"), 40) or "", "q": _text(query.get("q"), 100) or ""}
    if filters["node"] not in nodes:
        filters["node"] = ""
    page_no = _page_no(query.get("page"))
    results = None
    if chosen is not None:
        results = await service.published_results(platform, tenant, chosen.id, offset=(page_no - 1) * PAGE_SIZE,
                                                  limit=PAGE_SIZE, node=filters["node"] or None,
                                                  cls=filters["class"] or None, q=filters["q"] or None)
    return page(request, "results.html", tenant=tenant, province=info.name_en if lang == "en" and info.name_en else info.name,
                runs=runs, chosen=chosen, results=results, filters=filters,
                pager=_pager(f"/ui/public/{tenant}/results", filters, page_no, results.total if results else 0),
                areas=_node_options(nodes, lang, ("province", "city", "district")))


HANDLERS = [evaluation, create_period, period_page, run, run_page, reproduce, publish, export_results, proposals, decide,
            raise_form, raise_proposal, published_results]
