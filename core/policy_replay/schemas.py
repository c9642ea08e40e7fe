"""Request and response bodies of the policy replay and deadline recompute endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

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


class DeadlineChange(msgspec.Struct, kw_only=True):
    complaint_id: str
    number: str
    state: str
    node_code: str
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


class ComplaintReplay(msgspec.Struct, kw_only=True):
    complaint_id: str
    number: str
    state: str
    node_code: str
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


class ReplayResult(msgspec.Struct, kw_only=True):
    tenant: str
    node: str
    plugin: str
    config: dict[str, Any] | None
    """The candidate's configuration as validated (defaults filled in)."""
    since: dt.date | None
    until: dt.date | None
    dry_run: bool
    """Always true: a replay writes nothing (its reads run in a transaction that is rolled back)."""
    families_supported: list[str]
    note: str
    deactivated: list[str]
    """Plugins of the same exclusive family that the hypothetical activation switches off at ``node``."""
    evaluated_at: dt.datetime
    """``now`` for open cases (pending vs overdue)."""
    current: PolicyTotals
    candidate: PolicyTotals
    changed_outcomes: int
    enterprises: list[EnterpriseReplay]
    complaints: list[ComplaintReplay]
    complaints_truncated: bool
