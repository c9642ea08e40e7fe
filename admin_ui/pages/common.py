"""Helpers shared by the page modules: the platform, reuse of the API's handler functions, delivery of
notifications after a command, and the bureau roles' node lists.

Contract:
- :func:`call_api` runs the function of one of the API's route handlers with the console's request
  (whose ``user`` the session middleware set), so the console and the API share one implementation
  of what exists only in a controller (messages, policy changes, the notification stream, login ...).
- :func:`complaint_rows` lists the complaints a principal may see, through the API's own rules
  (:func:`core.complaints.access.visibility_sql` and :func:`~core.complaints.access.view`, which masks
  the consumer's contact details for whoever does not handle the case), soonest deadline first.
- :func:`deliver` pushes the notifications a committed command recorded, as the API does (never raises).
- :func:`account_names` shows who did something (a run, a proposal, a decision) by name: staff
  accounts' display names and usernames, for the bureau's own pages only.
"""

from __future__ import annotations

import uuid
from typing import Any, Iterable

from litestar import Request

from core.auth.principal import Principal
from core.complaints.access import view, visibility_sql
from core.complaints.service import COMPLAINT_COLUMNS
from core.db.engine import shared_fetch, tenant_transaction
from core.notifications.deliver import deliver as deliver_one
from core.runtime import Node, Platform


def platform_of(request: Request) -> Platform:
    return request.app.state.platform


def warn_hours(request: Request) -> float:
    return platform_of(request).settings.warning_before_hours


async def call_api(handler: Any, request: Request, **kwargs: Any) -> Any:
    """Run an API route handler's function (a controller method: ``self`` is unused there)."""
    return await handler.fn(None, request, **kwargs)


async def deliver(request: Request, outbox: list) -> None:
    for out in outbox:
        await deliver_one(platform_of(request), getattr(request.app.state, "notify_bus", None), out)


def subtree(nodes: dict[str, Node], path: tuple[str, ...]) -> list[Node]:
    """The nodes at or under ``path``, in tree order."""
    return sorted((n for n in nodes.values() if n.path[: len(path)] == path), key=lambda n: n.path)


def node_label(nodes: dict[str, Node], code: str | None, lang: str) -> str:
    node = nodes.get(code or "")
    if node is None:
        return code or "—"
    return node.name_en or node.name if lang == "en" else node.name


def district_of(nodes: dict[str, Node], code: str) -> Node | None:
    """The district (county) bureau at or above ``code``."""
    node = nodes.get(code)
    while node is not None and node.level != "district":
        node = nodes.get(node.parent_code or "")
    return node


def safe_next(target: str | None, fallback: str) -> str:
    """A local /ui path to go back to (never another site)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return fallback


_DUE_ORDER = """CASE WHEN state = 'with_enterprise' AND contacted_at IS NULL THEN contact_due
                     WHEN state IN ('with_enterprise', 'contacted', 'negotiating') THEN close_due END"""


async def complaint_rows(principal: Principal, states: tuple[str, ...] | list[str], limit: int) -> tuple[list, dict[str, int]]:
    """(the complaints in ``states`` that ``principal`` may see, running deadline soonest first, then
    newest; the count per state of all it may see)."""
    where, params = visibility_sql(principal, 1)
    n = len(params) + 1
    async with tenant_transaction(principal.tenant or "") as conn:
        rows = await conn.fetch(
            f"""SELECT {COMPLAINT_COLUMNS} FROM complaints WHERE {where} AND state = ANY(${n})
                ORDER BY {_DUE_ORDER} ASC NULLS LAST, created_at DESC LIMIT {int(limit)}""",
            *params, list(states),
        )
        counts = await conn.fetch(f"SELECT state, count(*) AS n FROM complaints WHERE {where} GROUP BY state", *params)
    return [view(principal, r) for r in rows], {r["state"]: r["n"] for r in counts}


async def account_names(ids: Iterable[str | None]) -> dict[str, str]:
    """Account id -> ``display name (username)``; ids that are no account (e.g. ``demo``) are left out."""
    wanted = set()
    for value in ids:
        try:
            wanted.add(str(uuid.UUID(str(value))))
        except ValueError:
            continue
    if not wanted:
        return {}
    rows = await shared_fetch("SELECT id::text AS id, username, display_name FROM odr.accounts WHERE id = ANY($1::uuid[])",
                              sorted(wanted))
    return {r["id"]: f"{r['display_name']} ({r['username']})" if r["display_name"] else r["username"] for r in rows}
