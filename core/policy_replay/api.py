"""Deadline policy changes and running complaints, per jurisdiction node (bureau roles covering it).

- ``POST /api/tenants/{tenant}/policy/{node}/recompute-deadlines`` — body ``{"dry_run": bool,
  "states": [...]}`` (optional): complaints already in ODR keep the deadlines they were given; this
  recomputes them with the policy active now, re-schedules their timers and records a
  ``deadlines_recomputed`` event each. Answers the list of changes.
- ``POST /api/tenants/{tenant}/policy/{node}/replay`` — body ``{"plugin": NAME, "config": {...} | null,
  "since": date | null, "until": date | null}``: what the deadline plugin ``NAME``, activated at
  ``node``, would have given the subtree's past complaints, next to the current policy, with on-time
  rates per policy and per enterprise; for a classification scheme, each unit's class on both sides;
  for a scoring formula, each unit's period indicators, scores and ranks on both sides. Never writes
  anything.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.params import FromPath, JSONBody

from core.api.access import bureau_node
from core.api.errors import problem
from core.auth.principal import Principal
from core.policy_replay import service
from core.policy_replay.schemas import (
    ClassificationReplayResult,
    RecomputeRequest,
    RecomputeResult,
    ReplayRequest,
    ReplayResult,
    ScoringReplayResult,
)


class PolicyReplayController(Controller):
    path = "/api/tenants/{tenant:str}/policy/{node:str}"
    tags = ["jurisdictions and policy"]

    @post("/recompute-deadlines", status_code=200)
    async def recompute_deadlines(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: FromPath[str],
        data: JSONBody[RecomputeRequest | None] = None,
    ) -> RecomputeResult:
        """Recompute the contact and close due moments of the open in-ODR complaints under ``node``
        from their ``entered_odr_at`` with the policy active now; re-schedule their timers (contact
        clocks only while the consumer has not been contacted); one ``deadlines_recomputed`` event per
        changed complaint. ``dry_run``: report only. One transaction."""
        platform, principal, n = await bureau_node(request, tenant, node)
        body = data or RecomputeRequest()
        return await service.recompute_deadlines(platform, tenant, principal, n, dry_run=body.dry_run, states=body.states)

    @post("/replay", status_code=200)
    async def replay(
        self, request: Request[Principal, Any, Any], tenant: FromPath[str], node: FromPath[str], data: JSONBody[ReplayRequest]
    ) -> Response[ReplayResult | ClassificationReplayResult | ScoringReplayResult]:
        """Replay a candidate plugin (hypothetically activated at ``node`` with ``config``), by its
        family (``family`` in the answer):

        - deadline policy: over the subtree's complaints that entered ODR between ``since`` and
          ``until``, due moments and on-time outcomes under the current and the candidate policy, totals
          per policy and per enterprise (with ranks);
        - classification: every ODR unit of the subtree classified under the current policy and the
          candidate, counts per class on each side and the units whose class changes;
        - scoring: each ODR unit's indicators over the period (computed in SQL), its score and rank
          under the current formula and the candidate, and the rank changes.

        Nothing is saved; 400 naming ``plugin`` for a plugin outside the supported families,
        ``config.<field>`` for a bad configuration."""
        platform, _, n = await bureau_node(request, tenant, node)
        try:
            result = await service.replay(
                platform, tenant, n, plugin=data.plugin, config=data.config, since=data.since, until=data.until
            )
        except service.UnsupportedPlugin as exc:
            return problem(400, f"plugin: {exc.problem}", field="plugin", families_supported=exc.families_supported)
        return Response(result, status_code=200)
