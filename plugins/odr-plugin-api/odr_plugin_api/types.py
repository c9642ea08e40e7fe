"""The msgspec Structs passed to and returned from hooks.

All Structs are frozen: a plugin receives values, never handles on platform state.
Dates and times are in Asia/Shanghai unless a field says otherwise.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import msgspec


class Family(str, enum.Enum):
    """Hook families. ``exclusive`` families have one deciding plugin per jurisdiction node."""

    CALENDAR = "calendar"
    DEADLINE_POLICY = "deadline_policy"
    CLASSIFICATION = "classification"
    SCORING = "scoring"
    STANDING_CHECK = "standing_check"
    NOTIFICATION = "notification"
    CHANNEL = "channel"

    @property
    def exclusive(self) -> bool:
        return self in EXCLUSIVE_FAMILIES


EXCLUSIVE_FAMILIES = frozenset(
    {Family.DEADLINE_POLICY, Family.CLASSIFICATION, Family.SCORING, Family.STANDING_CHECK}
)


class PluginInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a plugin says about itself (returned by ``odr_plugin_info``).

    - ``name`` must equal the plugin's entry-point name.
    - ``families`` lists the hook families it implements.
    - ``config`` is the msgspec Struct type of its configuration; every field needs a default, so that
      ``config()`` is the configuration used where a bureau has saved none.
    - ``default`` marks a built-in fallback: active everywhere, registered ``trylast``, never counted
      as a conflicting choice.
    - ``classes`` (classification schemes) lists the class codes ``odr_classify_enterprise`` may
      return; empty means not declared (then the contract checks do not check the codes).
    - ``address`` (delivery channels, family ``channel``): the recipient address the channel needs,
      ``"email"`` or ``"phone"`` (taken from each account's channel preference), or ``""`` when the
      plugin's own configuration names the endpoint (a webhook: one delivery per notification).
    """

    name: str
    version: str
    title: str
    description: str = ""
    families: tuple[Family, ...] = ()
    config: type | None = None
    default: bool = False
    classes: tuple[str, ...] = ()
    address: str = ""


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """Where a hook is called: a tenant (province) and a jurisdiction node path, root first.

    ``configs`` holds your plugin's own decoded configuration for this node (already validated against
    its ``PluginInfo.config``), under your plugin's name, and nothing else: a plugin never sees another
    plugin's configuration (least privilege; whatever a hook needs from elsewhere is one of its
    documented arguments). Read it with :meth:`config`; it is absent where nothing was saved for the
    node, so pass your Struct's defaults: ``scope.config(NAME, MyConfig())``.
    """

    tenant: str
    node_path: tuple[str, ...]
    configs: dict[str, Any] = {}

    @property
    def node(self) -> str:
        return self.node_path[-1]

    def config(self, plugin_name: str, default: Any = None) -> Any:
        return self.configs.get(plugin_name, default)


class DayInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One calendar day: whether it is a working day and why (e.g. "National Day holiday",
    "weekend", "make-up working day (调休)").

    ``provisional``: the answer is not from a published arrangement (for mainland China, the State
    Council's holiday notice for the day's year) but from the rules the law fixes in advance; the
    notice may still change it (make-up working days, further days off). A calendar that answers from
    a published arrangement leaves it False. The platform marks every deadline whose counting touched
    a provisional day, and recomputes those deadlines once when the calendar answers for those days
    without ``provisional``."""

    day: dt.date
    working: bool
    reason: str
    source: str = ""
    provisional: bool = False


class DeadlineClock(str, enum.Enum):
    WORKING_DAYS = "working_days"
    NATURAL_DAYS = "natural_days"


class DeadlineRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Ask a deadline policy for the due moments of a complaint that entered ODR at ``start``."""

    start: dt.datetime
    complaint_class: str | None = None
    enterprise_class: str | None = None


class DeadlinePlan(msgspec.Struct, frozen=True, kw_only=True):
    """A policy's answer: the clock kind and the number of days for each milestone.

    The platform counts the days on the active calendar with the convention in DOMAIN.md (the start
    day is not counted; due at the end of the last day), so every policy counts the same way.
    ``holiday_rollover``: a natural-day period ending on a non-working day moves to the next working day.
    """

    policy: str
    version: str
    contact_days: int
    contact_clock: DeadlineClock
    close_days: int
    close_clock: DeadlineClock
    holiday_rollover: bool = False
    legal_basis: str = ""


class EnterpriseFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What a classification scheme may look at."""

    unit_type: str
    industry: str | None = None
    employees: int | None = None
    annual_revenue_cny: float | None = None
    complaints_last_year: int | None = None
    business_scope: str | None = None


class ClassificationResult(msgspec.Struct, frozen=True, kw_only=True):
    scheme: str
    code: str
    label: str
    duties: tuple[str, ...] = ()


class Indicators(msgspec.Struct, frozen=True, kw_only=True):
    """One ODR unit's indicators over an evaluation period (rates in 0..1, cycle in days)."""

    handled: int
    settlement_rate: float
    satisfaction: float | None
    avg_cycle_days: float | None
    on_time_contact_rate: float
    on_time_close_rate: float
    breaches: int = 0
    untrue_feedback_findings: int = 0
    complaints_previous_period: int | None = None
    enterprise_class: str | None = None


class ScoreResult(msgspec.Struct, frozen=True, kw_only=True):
    formula: str
    version: str
    score: float
    parts: dict[str, float] = {}


def config_schema(config_type: type | None) -> dict[str, Any] | None:
    """JSON Schema of a plugin's config Struct (used to build forms and for documentation). Fields marked
    :data:`odr_plugin_api.secrets.Secret` say ``"writeOnly": true, "format": "password"``; a non-empty
    default of one is masked."""
    if config_type is None:
        return None
    from odr_plugin_api.secrets import mask_schema

    return mask_schema(config_type, msgspec.json.schema(config_type))
