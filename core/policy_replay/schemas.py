"""Request and response bodies of the policy replay and deadline recompute endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from odr_plugin_api.types import Indicators

Outcome = Literal["on_time", "late", "overdue", "pending", "not_applicable"]
"""A milestone under one policy: met by the due moment (``on_time``) or after it (``late``); not met
and the due moment passed while the case is still in ODR (``overdue``) or not yet (``pending``); not
met and the case left ODR (``not_applicable``, not counted in rates)."""


class Strict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


# -- recompute ---------------------------------------------------------------------------------------
class RecomputeRequest(Strict):
    dry_run: bool = False
    """True: report what would change, write nothing."""
    states: Annotated[list[str], msgspec.Meta(max_length=10)] | None = None
    """Only complaints in these states (a subset of the in-ODR states; default: all of them)."""


class DueMoments(msgspec.Struct, kw_only=True):
    contact_due: dt.datetime | None
    close_due: dt.datetime | None
    deadline_policy: str | None
    deadline_policy_version: str | None


class ComplaintRef(msgspec.Struct, kw_only=True):
    """The fields a complaint's entry starts with, in a recompute change and in a replay alike."""

    complaint_id: str
    number: str
    state: str
    node_code: str


class DeadlineChange(ComplaintRef, kw_only=True):
    entered_odr_at: dt.datetime
    before: DueMoments
    after: DueMoments
    contact_clocks: Literal["rescheduled", "unchanged_contacted"]
    """The contact warning/breach are re-armed only while the consumer has not been contacted."""
    close_clocks: Literal["rescheduled", "unchanged_feedback_submitted"]
    """The close clocks stay cancelled once the enterprise's feedback is in."""
    applied: bool


class RecomputeResult(msgspec.Struct, kw_only=True):
    tenant: str
    node: str
    dry_run: bool
    states: list[str]
    examined: int
    changed: int
    changes: list[DeadlineChange]


# -- replay ------------------------------------------------------------------------------------------
class ReplayRequest(Strict):
    plugin: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    config: dict[str, Any] | None = None
    since: dt.date | None = None
    """First day (Asia/Shanghai) on which a complaint entered ODR; inclusive."""
    until: dt.date | None = None
    """Last day (Asia/Shanghai) on which a complaint entered ODR; inclusive."""


class ComplaintReplay(ComplaintRef, kw_only=True):
    enterprise_id: str | None
    enterprise_name: str
    entered_odr_at: dt.datetime
    contacted_at: dt.datetime | None
    """When the consumer was contacted (the column; else the first contact or feedback event)."""
    closed_at: dt.datetime | None
    """When the case was closed (the column; else the first close event)."""
    given_contact_due: dt.datetime | None
    given_close_due: dt.datetime | None
    given_policy: str | None
    """What the complaint was actually given when it entered ODR (or at the last recompute)."""
    current_policy: str
    current_contact_due: dt.datetime
    current_close_due: dt.datetime
    candidate_policy: str
    candidate_contact_due: dt.datetime
    candidate_close_due: dt.datetime
    current_contact: Outcome
    current_close: Outcome
    candidate_contact: Outcome
    candidate_close: Outcome
    differs: bool
    """Any outcome differs between the current and the candidate policy."""


class PolicyTotals(msgspec.Struct, kw_only=True):
    policies: list[str]
    """The deadline plugins that answered (several when the subtree mixes policies)."""
    complaints: int
    contact_evaluated: int
    contact_on_time: int
    on_time_contact_rate: float | None
    close_evaluated: int
    close_on_time: int
    on_time_close_rate: float | None
    contact_breaches: int
    close_breaches: int
    breaches: int
    """Late or overdue milestones (contact and close)."""


class EnterpriseReplay(msgspec.Struct, kw_only=True):
    enterprise_id: str | None
    name: str
    complaints: int
    current: PolicyTotals
    candidate: PolicyTotals
    current_rank: int
    candidate_rank: int
    """Rank by on-time close rate, then on-time contact rate (1 = best; ties share a rank)."""


class ReplayHeader(msgspec.Struct, kw_only=True):
    """The fields every replay answer starts with, in this order (each result fixes ``family``, which
    keeps its place here); the family's own fields follow."""

    tenant: str
    node: str
    family: str
    plugin: str
    config: dict[str, Any] | None
    """The candidate's configuration as validated (defaults filled in; secret fields masked)."""
    since: dt.date | None
    until: dt.date | None
    """Echoed; a classification replay looks at the units' facts, not at a period."""
    dry_run: bool
    """Always true: a replay writes nothing (its reads run in a transaction that is rolled back)."""
    families_supported: list[str]
    note: str
    deactivated: list[str]
    """Plugins of the same exclusive family that the hypothetical activation switches off at ``node``."""
    evaluated_at: dt.datetime
    """``now`` for open cases (pending vs overdue)."""


class ReplayResult(ReplayHeader, kw_only=True):
    family: Literal["deadline_policy"] = "deadline_policy"
    current: PolicyTotals
    candidate: PolicyTotals
    changed_outcomes: int
    enterprises: list[EnterpriseReplay]
    complaints: list[ComplaintReplay]
    complaints_truncated: bool


# -- replay: classification family -------------------------------------------------------------------
class UnitClassReplay(msgspec.Struct, kw_only=True):
    enterprise_id: str
    name: str
    node_code: str
    unit_type: str
    status: str
    current_scheme: str | None
    """The classification plugin that answered under the current policy (None: no scheme active)."""
    current_class: str | None
    current_label: str | None
    candidate_scheme: str | None
    candidate_class: str | None
    candidate_label: str | None
    changed: bool
    """The class code (or the scheme) differs between the current policy and the candidate."""


class ClassificationReplayResult(ReplayHeader, kw_only=True):
    family: Literal["classification"] = "classification"
    units: int
    """ODR units (active or suspended) whose node lies in the subtree."""
    current_schemes: list[str]
    candidate_schemes: list[str]
    current_counts: dict[str, int]
    """Units per class code under the current policy; ``""`` counts the units without a class."""
    candidate_counts: dict[str, int]
    changed: int
    changes: list[UnitClassReplay]
    """The units whose class changes."""
    all_units: list[UnitClassReplay]


# -- replay: scoring family --------------------------------------------------------------------------
class UnitScoreReplay(msgspec.Struct, kw_only=True):
    enterprise_id: str
    name: str
    node_code: str
    status: str
    enterprise_class: str | None
    """The unit's class under the current policy (fed to both formulas)."""
    indicators: Indicators | None
    """The period's :class:`odr_plugin_api.Indicators` (None when the unit handled no complaint in the
    period: nothing to evaluate, no score, no rank)."""
    current_formula: str | None
    current_score: float | None
    current_parts: dict[str, float] | None
    candidate_formula: str | None
    candidate_score: float | None
    candidate_parts: dict[str, float] | None
    current_rank: int | None
    candidate_rank: int | None
    """Rank by score, highest first (1 = best; ties share a rank); None without a score."""
    rank_change: int | None
    """``current_rank - candidate_rank``: positive when the candidate moves the unit up."""


class ScoringReplayResult(ReplayHeader, kw_only=True):
    family: Literal["scoring"] = "scoring"
    current_formulas: list[str]
    candidate_formulas: list[str]
    units: list[UnitScoreReplay]
    """Best current rank first; units without a score last."""
    rank_changes: int
    """Units whose rank differs between the current formula and the candidate."""
