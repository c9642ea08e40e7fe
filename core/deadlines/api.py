"""Deadline explanation: how a complaint's due moments at a node are derived, day by day.

``GET /api/tenants/{tenant}/deadlines/explain?node=CODE&start=ISO-DATETIME`` answers with the
:class:`~core.deadlines.service.ComplaintDeadlines` of the deadline policy active at ``node``: the
policy and its version, the plugin that decided, and for ``contact`` and ``close`` the clock kind, the
start (in Asia/Shanghai), every counted day, every skipped non-working day with its reason and
source, every holiday rollover and the due moment (23:59:59 Asia/Shanghai of the last day).
``provisional`` (overall and per period) says whether the counting touched a day of a year whose
State Council holiday notice is not known yet; those days are listed (``provisional_days``), and each
such skipped day says it is provisional and why. The ``odr deadlines explain`` command prints the same
JSON.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import FromPath, FromQuery

from core.api.access import bureau_node
from core.auth.principal import Principal
from core.deadlines.counting import TZ
from core.deadlines.service import ComplaintDeadlines, complaint_deadlines

MIN_YEAR, MAX_YEAR = 1990, 2199
# "+08:00" in an unencoded query string arrives as " 08:00": put the sign back (only after a time,
# so "2026-10-01 10:00" stays a naive local time).
_LOST_PLUS = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


class QueryInvalid(msgspec.ValidationError):
    """A missing or malformed query parameter; the API answers 400 with ``field`` set to its name
    (through the ``msgspec.ValidationError`` handler, which reads the ``- at `$.field``` suffix)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{problem} - at `$.{field}`")
        self.field = field
        self.problem = problem


def parse_start(text: str | None) -> dt.datetime:
    """The start moment as an aware datetime in Asia/Shanghai.

    Accepts ISO 8601 (``2026-09-30T21:30``, ``2026-09-30T13:30:00Z``, ``2026-09-30T21:30+08:00``; a
    bare date means its midnight). Without an offset the time is Asia/Shanghai local time. Raises
    :class:`QueryInvalid` naming ``start`` when missing or malformed, or outside the years 1990–2199.
    """
    if text is None or not text.strip():
        raise QueryInvalid("start", "required (an ISO 8601 date-time, e.g. 2026-09-30T21:30:00+08:00)")
    value = _LOST_PLUS.sub(r"\1+\2", text.strip())
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise QueryInvalid("start", f"{text!r} is not an ISO 8601 date-time (e.g. 2026-09-30T21:30:00+08:00)") from None
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise QueryInvalid("start", f"year {moment.year} is outside {MIN_YEAR}–{MAX_YEAR}")
    return moment.replace(tzinfo=TZ) if moment.tzinfo is None else moment.astimezone(TZ)


class DeadlinesController(Controller):
    path = "/api/tenants/{tenant:str}/deadlines"
    tags = ["deadlines"]

    @get("/explain")
    async def explain(
        self,
        request: Request[Principal, Any, Any],
        tenant: FromPath[str],
        node: FromQuery[str | None] = None,
        start: FromQuery[str | None] = None,
    ) -> ComplaintDeadlines:
        """Due moments of a complaint entering ODR at ``start`` at ``node``, with the full derivation.

        Bureau roles whose subtree covers ``node`` only (404 otherwise, as for an unknown node).
        ``start`` without an offset is Asia/Shanghai time; a missing ``node`` or a missing or malformed
        ``start`` is a 400 naming the parameter. The start day is never counted; skipped and rolled-over days carry the
        calendar's reason.
        """
        if not node:
            raise QueryInvalid("node", "required (a jurisdiction node code, e.g. 310116)")
        platform, _, n = await bureau_node(request, tenant, node)
        moment = parse_start(start)
        return await complaint_deadlines(platform, tenant, n.code, moment)
