"""Sample hook inputs drawn from realistic ranges: what the platform tries a plugin on before it
activates it (:func:`trial_inputs`), and what the vendor kit (pytest-odr) builds its larger sample
sets from. The indicator values follow :class:`odr_plugin_api.Indicators`' definitions (satisfaction
a mean rating on 1..5, rates in 0..1 over their stated denominators, cycles in natural days).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from odr_plugin_api.types import DeadlineRequest, EnterpriseFacts, Indicators

TZ = ZoneInfo("Asia/Shanghai")

#: A typical ODR unit over a quarter: most complaints settled, ratings around 4, about a week to close.
TYPICAL_INDICATORS = Indicators(
    handled=120, settlement_rate=0.85, satisfaction=4.2, avg_cycle_days=6.5, on_time_contact_rate=0.97,
    on_time_close_rate=0.93, breaches=1, untrue_feedback_findings=0, complaints_previous_period=140,
    enterprise_class="A",
)

#: Period indicators from empty and poor periods to perfect ones (unknown satisfaction and cycle included).
INDICATORS: tuple[Indicators, ...] = (
    Indicators(handled=0, settlement_rate=0.0, satisfaction=None, avg_cycle_days=None,
               on_time_contact_rate=0.0, on_time_close_rate=0.0),
    Indicators(handled=1, settlement_rate=1.0, satisfaction=5.0, avg_cycle_days=0.2,
               on_time_contact_rate=1.0, on_time_close_rate=1.0, complaints_previous_period=0),
    TYPICAL_INDICATORS,
    Indicators(handled=40, settlement_rate=0.3, satisfaction=1.0, avg_cycle_days=38.0,
               on_time_contact_rate=0.5, on_time_close_rate=0.4, breaches=12, untrue_feedback_findings=3,
               complaints_previous_period=10, enterprise_class="C"),
    Indicators(handled=3, settlement_rate=0.0, satisfaction=None, avg_cycle_days=None,
               on_time_contact_rate=0.0, on_time_close_rate=0.0, breaches=3, complaints_previous_period=None,
               enterprise_class="B"),
    Indicators(handled=5200, settlement_rate=0.62, satisfaction=3.4, avg_cycle_days=11.3,
               on_time_contact_rate=0.88, on_time_close_rate=0.71, breaches=310, untrue_feedback_findings=1,
               complaints_previous_period=6100, enterprise_class="B"),
    # extremes the platform can produce: a year-long cycle, every deadline breached, findings galore
    Indicators(handled=7, settlement_rate=0.0, satisfaction=1.0, avg_cycle_days=365.0,
               on_time_contact_rate=0.0, on_time_close_rate=0.0, breaches=14, untrue_feedback_findings=7,
               complaints_previous_period=0, enterprise_class="B"),
)

#: A small e-commerce company, as a classification scheme sees it.
TYPICAL_FACTS = EnterpriseFacts(unit_type="enterprise", industry="e-commerce", employees=12, annual_revenue_cny=3.5e6,
                                complaints_last_year=40, business_scope="网络销售服装、鞋帽")


def trial_inputs(now: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """One realistic input per hook the platform tries a plugin on before activating it (hook name ->
    its keyword arguments without ``scope``): today's calendar day, a complaint entering ODR now, a
    typical company, a typical unit's indicators. Hooks with effects outside the platform (delivery,
    standing checks against a registry, notices) are not tried."""
    now = (now or dt.datetime.now(TZ)).astimezone(TZ)
    return {
        "odr_calendar_day": {"day": now.date()},
        "odr_deadline_policy": {"request": DeadlineRequest(start=now)},
        "odr_classify_enterprise": {"facts": TYPICAL_FACTS},
        "odr_score_enterprise": {"indicators": TYPICAL_INDICATORS},
    }
