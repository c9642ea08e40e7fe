"""The policy page of a jurisdiction node: the effective policy and where each choice comes from,
activation and configuration forms generated from each plugin's config Struct, the policy replay,
the explicit recompute of running complaints' deadlines, and the audit of past changes.

Contract:
- Reads and changes go through the API's handlers (``PolicyController``: effective policy, change,
  audit, jurisdictions; ``PolicyReplayController.recompute_deadlines``) and the replay service, so the
  rules are the API's: any bureau role may look at a node of its subtree (404 outside it); only province
  admins and bureau officers change it; a change is validated against the plugin's config Struct
  before it is saved, refused with the conflicting plugins named for an exclusive family, audited, and
  reaches every process at once.
- Configuration problems are shown next to the field they name (``config.<field>``).
- The replay writes nothing. With htmx it runs in place with a progress indicator (the answer is the
  result fragment when the ``HX-Request`` header is present); without JavaScript the form posts and
  the page comes back with the result.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from admin_ui import schema_forms
from admin_ui.forms import field_errors, read_form
from admin_ui.pages.common import call_api, node_label, platform_of
from admin_ui.render import language, page, redirect, require
from core.api.policy import ActivationChange, PolicyController
from core.auth.principal import BUREAU_ROLES, POLICY_ROLES
from core.policy_replay import service as replay_service
from core.policy_replay.api import PolicyReplayController
from core.policy_replay.schemas import RecomputeRequest
from odr_plugin_api.types import config_schema

REPLAYABLE = ("deadline_policy", "classification", "scoring")


def _schema(request: Request, plugin: str) -> dict | None:
    info = platform_of(request).host.infos.get(plugin)
    return config_schema(info.config) if info is not None else None


async def _context(request: Request, node: str) -> dict[str, Any]:
    principal = require(request, BUREAU_ROLES)
    tenant = principal.tenant or ""
    policy = await call_api(PolicyController.effective, request, tenant=tenant, node=node)
    jurisdictions = await call_api(PolicyController.jurisdictions, request, tenant=tenant)
    audit = await call_api(PolicyController.audit, request, tenant=tenant, node=node)
    nodes = await platform_of(request).nodes(tenant)
    lang = language(request)
    choices = []
    for c in policy.choices:
        choices.append({"c": c, "fields": schema_forms.fields(_schema(request, c.plugin), c.config),
                        "source_name": node_label(nodes, c.source, lang) if c.source != "default" else None})
    return {
        "node": node, "node_name": node_label(nodes, node, lang), "choices": choices, "audit": audit[:100],
        "health": policy.health,
        "jurisdictions": [{"value": n.code, "label": ("— " * (len(n.path) - 1)) + node_label(nodes, n.code, lang)} for n in jurisdictions],
        "can_change": principal.role in POLICY_ROLES,
        "replayable": [c.plugin for family in REPLAYABLE for c in policy.choices if family in c.families],
        "node_names": {code: node_label(nodes, code, lang) for code in nodes},
    }


@get("/policy")
async def policy_page(request: Request) -> Response:
    principal = require(request, BUREAU_ROLES)
    node = request.query_params.get("node") or principal.node or ""
    return page(request, "policy.html", **await _context(request, node))


@post("/policy/{node:str}/plugins/{plugin:str}")
async def change(request: Request, node: FromPath[str], plugin: FromPath[str]) -> Response:
    principal = require(request, POLICY_ROLES)
    data = await read_form(request)
    active = str(data.get("active", "")).lower() in ("on", "true", "1")
    schema = _schema(request, plugin)
    config, errors = schema_forms.parse(schema, data) if active else (None, {})
    if not errors:
        try:
            await call_api(PolicyController.change, request, tenant=principal.tenant or "", node=node, plugin=plugin,
                           data=ActivationChange(active=active, config=config or None))
        except (msgspec.ValidationError, ValueError) as exc:
            errors = schema_forms.attach_error(field_errors(exc), schema)
    if errors:
        context = await _context(request, node)
        return page(request, "policy.html", status=409 if "_form" in errors and "only one plugin" in errors["_form"] else 400,
                    errors=errors, failed=plugin, form=data, **context)
    return redirect(f"/ui/policy?node={node}#plugin-{plugin}", done="common.saved")


@post("/policy/{node:str}/recompute")
async def recompute(request: Request, node: FromPath[str]) -> Response:
    principal = require(request, BUREAU_ROLES)
    data = await read_form(request)
    dry_run = str(data.get("dry_run", "")).lower() in ("on", "true", "1")
    result = await call_api(PolicyReplayController.recompute_deadlines, request, tenant=principal.tenant or "", node=node,
                            data=RecomputeRequest(dry_run=dry_run))
    return page(request, "policy.html", recomputed=result, **await _context(request, node))


# -- replay ------------------------------------------------------------------------------------------
async def _replay_context(request: Request, node: str, plugin: str | None) -> dict[str, Any]:
    context = await _context(request, node)
    if plugin not in context["replayable"]:
        plugin = context["replayable"][0] if context["replayable"] else None
    current = next((c["c"].config for c in context["choices"] if c["c"].plugin == plugin), None)
    context.update(plugin=plugin, replay_fields=schema_forms.fields(_schema(request, plugin), current) if plugin else [])
    return context


@get("/policy/{node:str}/replay")
async def replay_form(request: Request, node: FromPath[str]) -> Response:
    context = await _replay_context(request, node, request.query_params.get("plugin"))
    return page(request, "replay.html", result=None, **context)


def _date(value: Any) -> dt.date | None:
    text = str(value or "").strip()
    return dt.date.fromisoformat(text) if text else None


@post("/policy/{node:str}/replay")
async def run_replay(request: Request, node: FromPath[str]) -> Response:
    principal = require(request, BUREAU_ROLES)
    data = await read_form(request)
    plugin = str(data.get("plugin") or "")
    context = await _replay_context(request, node, plugin)
    schema = _schema(request, plugin) if plugin else None
    config, errors = schema_forms.parse(schema, data)
    result = None
    since = until = None
    for name in ("since", "until"):
        try:
            value = _date(data.get(name))
        except ValueError:
            errors[name] = "YYYY-MM-DD"
            continue
        since, until = (value, until) if name == "since" else (since, value)
    if not errors:
        nodes = await platform_of(request).nodes(principal.tenant or "")
        target = nodes.get(node)
        if target is None or not principal.covers(target.path):
            raise KeyError("node not found in your jurisdiction")
        try:
            result = await replay_service.replay(platform_of(request), principal.tenant or "", target, plugin=plugin,
                                                 config=config or None, since=since, until=until)
        except replay_service.UnsupportedPlugin as exc:
            errors = {"plugin": exc.problem}
        except (msgspec.ValidationError, ValueError) as exc:
            errors = schema_forms.attach_error(field_errors(exc), schema)
    status = 400 if errors else 200
    template = "replay_result.html" if request.headers.get("hx-request") else "replay.html"
    return page(request, template, status=status, result=result, errors=errors, form=data, **context)


HANDLERS = [policy_page, change, recompute, replay_form, run_replay]
