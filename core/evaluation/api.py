"""Evaluation endpoints (Art. 20-23): periods, runs, results, reproduction, publication, exit proposals,
and the public published results."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from core.api.access import platform_of
from core.auth.principal import Principal
from core.enterprises.api import field_problem
from core.enterprises.common import FieldError
from core.evaluation import schemas as S
from core.evaluation import proposals as exit_proposals
from core.evaluation import periods, service

Offset = Annotated[int, QueryParameter(ge=0, le=10_000_000)]
Limit = Annotated[int, QueryParameter(ge=1, le=500)]
NodeQ = Annotated[str | None, QueryParameter(name="node", max_length=40)]


def class_filter(request: Request) -> str | None:
    """The ``class`` query parameter (a Python keyword, so read by hand); 400 naming it when too long."""
    value = request.query_params.get("class")
    if value is not None and len(value) > 40:
        raise FieldError("class", "at most 40 characters")
    return value or None
SearchQ = Annotated[str | None, QueryParameter(name="q", max_length=100)]


class EvaluationController(Controller):
    """Provincial admins define periods, run, reproduce and publish; every bureau role reads."""

    path = "/api/tenants/{tenant:str}"
    tags = ["evaluation"]
    exception_handlers = {FieldError: field_problem}

    @post("/evaluation-periods", status_code=201)
    async def create_period(self, request: Request[Principal, Any, Any], tenant: FromPath[str],
                            data: JSONBody[S.PeriodCreate]) -> S.Period:
        """Define a monthly, quarterly or yearly period (``starts_on`` the first day of it); 409 if it exists."""
        return await periods.create_period(platform_of(request), tenant, request.user, data)

    @get("/evaluation-periods")
    async def periods(self, request: Request[Principal, Any, Any], tenant: FromPath[str]) -> list[S.Period]:
        return await periods.list_periods(platform_of(request), tenant, request.user)

    @get("/evaluation-periods/{period_id:str}/evaluations")
    async def runs(self, request: Request[Principal, Any, Any], tenant: FromPath[str], period_id: FromPath[str]
                   ) -> list[dict[str, Any]]:
        """The runs of a period, oldest first."""
        return await service.list_evaluations(platform_of(request), tenant, request.user, period_id)

    @post("/evaluation-periods/{period_id:str}/evaluations", status_code=201)
    async def run(self, request: Request[Principal, Any, Any], tenant: FromPath[str], period_id: FromPath[str],
                  data: JSONBody[S.RunRequest | None] = None) -> S.Evaluation:
        """Run an evaluation of the period: every active or suspended ODR unit of the province scored by
        the scoring plugin of its node, ranked within its class; candidates (Art. 21) and exit proposals
        (Art. 22(3)) follow the settings. 409 when the period is closed."""
        settings = (data or S.RunRequest()).settings
        return await service.run_evaluation(platform_of(request), tenant, request.user, period_id, settings)

    @get("/evaluations/{evaluation_id:str}")
    async def evaluation(self, request: Request[Principal, Any, Any], tenant: FromPath[str],
                         evaluation_id: FromPath[str]) -> S.Evaluation:
        """A run: its settings, the plugins and configurations used per node, the summary per class."""
        return await service.get_evaluation(platform_of(request), tenant, request.user, evaluation_id)

    @get("/evaluations/{evaluation_id:str}/results")
    async def results(self, request: Request[Principal, Any, Any], tenant: FromPath[str], evaluation_id: FromPath[str],
                      offset: Offset = 0, limit: Limit = 100, node: NodeQ = None,
                      q: SearchQ = None) -> S.ResultPage:
        """Per unit: indicators, score and its parts, plugin and version, rank within class, candidacy,
        below the exit threshold. Filters: ``node`` (subtree), ``class``, ``q`` (name part or credit code)."""
        return await service.results(platform_of(request), tenant, request.user, evaluation_id, offset=offset,
                                     limit=limit, node=node, cls=class_filter(request), q=q)

    @post("/evaluations/{evaluation_id:str}/reproduce", status_code=200)
    async def reproduce(self, request: Request[Principal, Any, Any], tenant: FromPath[str],
                        evaluation_id: FromPath[str]) -> S.Reproduction:
        """Score the run's stored indicators again with its stored plugins and configurations (whatever
        is configured now); ``identical`` tells whether every score and part came out the same. Reads only."""
        return await service.reproduce(platform_of(request), tenant, request.user, evaluation_id)

    @post("/evaluations/{evaluation_id:str}/publish", status_code=200)
    async def publish(self, request: Request[Principal, Any, Any], tenant: FromPath[str],
                      evaluation_id: FromPath[str], data: JSONBody[S.PublishRequest | None] = None) -> S.Evaluation:
        """Close the period with this run as its result and publish it (Art. 23). A run with units left
        unscored by a failing scoring plugin (``unscored``) is refused (409) unless the body says
        ``{"accept_unscored": true, "reason": "..."}``; that decision is recorded with the run."""
        return await service.publish(platform_of(request), tenant, request.user, evaluation_id, data)

    @get("/revocation-proposals")
    async def proposals(self, request: Request[Principal, Any, Any], tenant: FromPath[str],
                        status: FromQuery[Literal["proposed", "revoked", "dismissed"] | None] = None) -> list[S.Proposal]:
        """Art. 22 proposals about units in the caller's subtree, newest first."""
        return await exit_proposals.list_proposals(platform_of(request), tenant, request.user, status)

    @post("/revocation-proposals", status_code=201)
    async def raise_proposal(self, request: Request[Principal, Any, Any], tenant: FromPath[str],
                             data: JSONBody[S.ProposalCreate]) -> S.Proposal:
        """Raise an Art. 22 ground against a unit from a complaint or a spot check."""
        return await exit_proposals.raise_proposal(platform_of(request), tenant, request.user, data)

    @post("/revocation-proposals/{proposal_id:str}/decision", status_code=200)
    async def decide(self, request: Request[Principal, Any, Any], tenant: FromPath[str], proposal_id: FromPath[str],
                     data: JSONBody[S.ProposalDecision]) -> S.Proposal:
        """The reviewing bureau revokes the unit on the proposal's ground, or dismisses it; with a note."""
        return await exit_proposals.decide_proposal(platform_of(request), tenant, request.user, proposal_id, data)


class PublicEvaluationController(Controller):
    """No authentication: the published evaluation results (Art. 23). Nothing personal."""

    path = "/public/{tenant:str}/evaluations"
    tags = ["evaluation (public)"]
    exception_handlers = {FieldError: field_problem}

    @get("/")
    async def published(self, request: Request, tenant: FromPath[str]) -> list[S.PublicEvaluation]:
        return await service.published(platform_of(request), tenant)

    @get("/{evaluation_id:str}")
    async def results(self, request: Request, tenant: FromPath[str], evaluation_id: FromPath[str],
                      offset: Offset = 0, limit: Limit = 100, node: NodeQ = None,
                      q: SearchQ = None) -> S.PublicResultPage:
        return await service.published_results(platform_of(request), tenant, evaluation_id, offset=offset,
                                               limit=limit, node=node, cls=class_filter(request), q=q)
