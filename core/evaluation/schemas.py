"""Request and response Structs of the evaluation API (msgspec at every boundary)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any, Literal

import msgspec

from core.db.clusters import ReadSource

from core.enterprises.schemas import RevocationGround

Score = Annotated[float, msgspec.Meta(ge=0, le=100)]


class PeriodKind(str, enum.Enum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


class PeriodCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A period starts on the first day of a month (monthly), of a quarter (quarterly) or of a year."""

    kind: PeriodKind
    starts_on: dt.date


class EvaluationSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a run turns scores into incentives and exit proposals (stored with the run)."""

    candidate_top: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 3
    """Art. 21: this many best-ranked units per class become trusted-consumption-model candidates ..."""
    candidate_min_score: Score = 85.0
    """... when their score is at least this."""
    exit_threshold: Score = 60.0
    """Art. 22(3): a score below this counts as a low period."""
    exit_consecutive_periods: Annotated[int, msgspec.Meta(ge=1, le=12)] = 2
    """Low this many consecutive periods of the same kind (this one included): proposed for revocation."""
    min_handled: Annotated[int, msgspec.Meta(ge=1, le=100000)] = 1
    """Units that handled fewer complaints in the period are listed but not scored nor ranked."""


class RunRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    settings: EvaluationSettings = EvaluationSettings()


class Period(msgspec.Struct, kw_only=True):
    id: str
    kind: PeriodKind
    label: str
    starts_on: dt.date
    ends_on: dt.date
    status: Literal["open", "closed"]
    final_evaluation_id: str | None
    created_by: str
    created_at: dt.datetime
    closed_by: str | None
    closed_at: dt.datetime | None


class ClassSummary(msgspec.Struct, kw_only=True):
    """One class of an evaluation: its units and the indicators over all its units' complaints."""

    enterprise_class: str
    units: int
    scored: int
    handled: int
    with_feedback: int
    settled: int
    settlement_rate: float | None
    rated: int
    satisfaction: float | None
    closed: int
    avg_cycle_days: float | None
    breaches: int
    amount_recovered: float
    avg_score: float | None
    candidates: int
    below_threshold: int


class Evaluation(msgspec.Struct, kw_only=True):
    id: str
    period: Period
    run_no: int
    settings: EvaluationSettings
    started_by: str
    started_at: dt.datetime
    finished_at: dt.datetime
    units: int
    scored: int
    published_at: dt.datetime | None
    policies: list[dict[str, Any]]
    """Per node: the scoring plugins active there, their versions and configurations (as used)."""
    classes: list[ClassSummary]
    unscored: int = 0
    """Units with enough complaints to be scored that got no score because every scoring plugin active
    at their node failed (each result's ``score_failure`` says why). Such a run is published only with
    ``accept_unscored`` and a reason (:class:`PublishRequest`)."""
    unscored_accepted: UnscoredAccepted | None = None
    """The audited decision to publish this run despite its unscored units."""
    proposals_raised: int = 0
    phase_seconds: dict[str, float] = {}
    """Only in the answer to a run: wall-clock seconds per phase (indicators SQL, scoring, ranking,
    storing, proposals and summary, commit)."""
    read_from: ReadSource | None = None
    """Only in the answer to a run: where the indicators were read (``replica`` or ``primary``) and how
    old the data was (seconds)."""


class UnscoredAccepted(msgspec.Struct, kw_only=True):
    """Who decided to publish a run with unscored units, when, and why."""

    by: str
    at: dt.datetime
    reason: str


class PublishRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Publishing a run. A run with unscored units (``Evaluation.unscored``) is refused (409) unless
    ``accept_unscored`` is true and ``reason`` says why it may be published anyway; the decision is
    recorded with the run (``unscored_accepted``)."""

    accept_unscored: bool = False
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class Result(msgspec.Struct, kw_only=True):
    enterprise_id: str
    name: str
    credit_code: str
    node_code: str
    node_name: str
    enterprise_class: str | None
    handled: int
    with_feedback: int
    settled: int
    settlement_rate: float | None
    rated: int
    satisfaction: float | None
    closed: int
    avg_cycle_days: float | None
    p90_cycle_days: float | None
    on_time_contact_rate: float | None
    on_time_close_rate: float | None
    breaches: int
    untrue_feedback_findings: int
    """Complaints of the period whose feedback a spot check found seriously untrue (Art. 22(2))."""
    amount_recovered: float
    complaints_previous_period: int | None
    score: float | None
    score_parts: dict[str, float] | None
    score_failure: dict[str, Any] | None = None
    """Why the unit's scoring plugin failed (``plugin``, ``hook``, ``error`` type, ``detail`` for an
    answer out of contract, ``at``); None when it answered. Kept when another plugin answered instead."""
    plugin: str | None
    plugin_version: str | None
    class_rank: int | None
    class_size: int | None
    candidate: bool
    below_threshold: bool


class ResultPage(msgspec.Struct, kw_only=True):
    evaluation_id: str
    total: int
    offset: int
    limit: int
    results: list[Result]


class Reproduction(msgspec.Struct, kw_only=True):
    """A stored run scored again from its stored indicators with its stored plugins and configurations."""

    evaluation_id: str
    units: int
    identical: bool
    differences: list[dict[str, Any]]
    """Units whose score, parts or plugin differ (at most 100 listed)."""
    version_changes: list[str]
    """Plugins now installed at another version than the run used."""
    unscored: int = 0
    """Units the run left unscored because their scoring plugin failed (not scored again: ``units``
    counts the scored ones)."""


Ground = RevocationGround
"""Art. 22 grounds (the same codes as an ODR unit's ``revocation_ground``)."""


Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class ProposalCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Raise an Art. 22 ground against a unit from a complaint or a spot check."""

    enterprise_id: str
    ground: Ground
    source: Literal["complaint", "spot_check"]
    complaint_id: str | None = None
    detail: Text


class ProposalDecision(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    decision: Literal["revoke", "dismiss"]
    note: Text


class Proposal(msgspec.Struct, kw_only=True):
    id: str
    enterprise_id: str
    enterprise_name: str
    node_code: str
    ground: Ground
    source: Literal["evaluation", "complaint", "spot_check"]
    evaluation_id: str | None
    complaint_id: str | None
    detail: str
    raised_by: str
    raised_at: dt.datetime
    status: Literal["proposed", "revoked", "dismissed"]
    decided_by: str | None
    decided_node: str | None
    decided_at: dt.datetime | None
    decision_note: str | None


class PublicEvaluation(msgspec.Struct, kw_only=True):
    id: str
    period_label: str
    period_kind: PeriodKind
    starts_on: dt.date
    ends_on: dt.date
    published_at: dt.datetime
    units: int
    scored: int


class PublicResult(msgspec.Struct, kw_only=True):
    """What Art. 23 publishes of a unit's evaluation: nothing personal."""

    name: str
    credit_code: str
    district: str
    enterprise_class: str | None
    handled: int
    settlement_rate: float | None
    satisfaction: float | None
    avg_cycle_days: float | None
    score: float | None
    class_rank: int | None
    class_size: int | None
    candidate: bool


class PublicResultPage(msgspec.Struct, kw_only=True):
    evaluation: PublicEvaluation
    total: int
    offset: int
    limit: int
    results: list[PublicResult]
