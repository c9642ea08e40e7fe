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
    - ``api_version``: the version of ``odr-plugin-api`` the plugin was built against (pass
      ``odr_plugin_api.API_VERSION``); the platform refuses a plugin of another major version, or of a
      newer minor version than its own (:mod:`odr_plugin_api.versioning`). ``""`` means 1.0.
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
    api_version: str = ""


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

    The platform counts the days on the active calendar, the same way for every policy (the convention
    is stated in :mod:`odr_plugin_api.indicators`): the start day (Asia/Shanghai) is not counted; a
    period is due at 23:59:59 Asia/Shanghai of its last day; ``working_days`` skip the days the calendar
    marks non-working (mainland China: weekends and statutory holidays, make-up working days counted);
    ``natural_days`` count every day. ``holiday_rollover``: a natural-day period ending on a
    non-working day moves to the end of the next working day. Days are whole numbers in 1..366
    (:mod:`odr_plugin_api.contracts`).
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
    """One ODR unit's indicators over an evaluation period, defined field by field (scale, unit,
    denominator, value when empty) in :data:`odr_plugin_api.indicators.DEFINITIONS`. In short: counts
    of complaints that entered ODR in the period; rates are shares in 0..1 (0.0 without a denominator);
    ``satisfaction`` is the **mean consumer rating on 1..5** (None: no rating; use
    :func:`odr_plugin_api.indicators.satisfaction_share` for 0..1); ``avg_cycle_days`` is natural days
    (fractional) from entering ODR to closing (None: none closed)."""

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
    """JSON Schema of a plugin's config Struct (used to build forms and for documentation). A field's
    ``title`` / ``description`` are its zh-CN label and help, ``x-title-en`` / ``x-description-en`` its
    English ones (:mod:`odr_plugin_api.labels`). Fields marked
    :data:`odr_plugin_api.secrets.Secret` say ``"writeOnly": true, "format": "password"``; a non-empty
    default of one is masked."""
    if config_type is None:
        return None
    from odr_plugin_api.labels import english_extras
    from odr_plugin_api.secrets import mask_schema

    schema = msgspec.json.schema(config_type)
    if english := english_extras(config_type):
        ref = schema.get("$ref", "")
        root = schema.get("$defs", {}).get(ref.split("/")[-1]) if ref.startswith("#/$defs/") else schema
        for name, extras in english.items():
            prop = (root or {}).get("properties", {}).get(name)
            if prop is not None:
                prop.update(extras)
    return mask_schema(config_type, schema)
