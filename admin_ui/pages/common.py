"""Helpers shared by the page modules: the platform, reuse of the API's handler functions, delivery of
notifications after a command, and the bureau roles' node lists.

Contract:
- :func:`call_api` runs the function of one of the API's route handlers with the console's request
  (whose ``user`` the session middleware set), so the console and the API share one implementation
  of what exists only in a controller (messages, policy changes, the notification stream, login ...).
- The paged complaint lists (queue, inbox, my complaints) are :mod:`admin_ui.pages.complaint_list`'s.
- :func:`deliver` pushes the notifications a committed command recorded, as the API does (never raises).
- :func:`account_names` shows who did something (a run, a proposal, a decision) by name: staff
  accounts' display names and usernames, for the bureau's own pages only.
"""

from __future__ import annotations

from typing import Any, Iterable

from litestar import Request

from core.auth.accounts import display_names
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


async def account_names(ids: Iterable[str | None]) -> dict[str, str]:
    """Account id -> ``display name (username)``; ids that are no account (e.g. ``demo``) are left out."""
    return await display_names(ids)
