"""The small built-in sample inputs the per-family contract checks call a plugin with.

They are plain values of :mod:`odr_plugin_api` Structs, so a vendor may reuse them in its own tests.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from odr_plugin_api import DeadlineRequest, EnterpriseFacts, Indicators

TZ = ZoneInfo("Asia/Shanghai")

#: Every day of this year is asked of a calendar plugin.
CALENDAR_YEAR = 2026


def calendar_days(year: int = CALENDAR_YEAR) -> list[dt.date]:
    first = dt.date(year, 1, 1)
    return [first + dt.timedelta(days=i) for i in range((dt.date(year + 1, 1, 1) - first).days)]


_STARTS = (
    dt.datetime(2026, 3, 4, 9, 30),  # a Wednesday morning, naive (Asia/Shanghai)
    dt.datetime(2026, 4, 30, 23, 50, tzinfo=TZ),  # just before the Labour Day holiday, aware
    dt.datetime(2026, 9, 30, 16, 0, tzinfo=TZ),  # before the National Day holiday
    dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=TZ),  # the last second of a year
    dt.datetime(2026, 6, 6, 12, 0, tzinfo=dt.timezone.utc),  # a Saturday, given in UTC
)
_COMPLAINT_CLASSES = (None, "quality", "e-commerce", "prepaid")
_ENTERPRISE_CLASSES = (None, "A", "B", "C")

#: Deadline requests: several starts (weekday, weekend, before holidays, year end, naive/aware),
#: complaint and enterprise classes, including None.
DEADLINE_REQUESTS: tuple[DeadlineRequest, ...] = tuple(
    DeadlineRequest(start=start, complaint_class=cc, enterprise_class=ec)
    for i, start in enumerate(_STARTS)
    for j, cc in enumerate(_COMPLAINT_CLASSES)
    for ec in (_ENTERPRISE_CLASSES[(i + j) % 4], None)
)

#: Facts of ODR units of every unit type, small and large, with missing values.
ENTERPRISE_FACTS: tuple[EnterpriseFacts, ...] = (
    EnterpriseFacts(unit_type="enterprise"),
    EnterpriseFacts(unit_type="enterprise", industry="e-commerce", employees=12, annual_revenue_cny=3.5e6,
                    complaints_last_year=40, business_scope="网络销售服装、鞋帽"),
    EnterpriseFacts(unit_type="enterprise", industry="e-commerce", employees=8000, annual_revenue_cny=2.1e10,
                    complaints_last_year=5200, business_scope="电子商务平台经营"),
    EnterpriseFacts(unit_type="enterprise", industry="retail", employees=0, annual_revenue_cny=0.0,
                    complaints_last_year=0),
    EnterpriseFacts(unit_type="enterprise", industry="catering", employees=35, annual_revenue_cny=None,
                    complaints_last_year=None),
    EnterpriseFacts(unit_type="host_unit", industry="retail", employees=300, annual_revenue_cny=8e8,
                    complaints_last_year=120, business_scope="商场管理"),
    EnterpriseFacts(unit_type="industry_association", industry="tourism"),
    EnterpriseFacts(unit_type="social_organisation"),
    EnterpriseFacts(unit_type="government_department"),
)

#: Period indicators, from empty periods to bad and perfect ones, with unknown satisfaction and cycle.
INDICATORS: tuple[Indicators, ...] = (
    Indicators(handled=0, settlement_rate=0.0, satisfaction=None, avg_cycle_days=None,
               on_time_contact_rate=0.0, on_time_close_rate=0.0),
    Indicators(handled=1, settlement_rate=1.0, satisfaction=1.0, avg_cycle_days=0.0,
               on_time_contact_rate=1.0, on_time_close_rate=1.0),
    Indicators(handled=120, settlement_rate=0.85, satisfaction=0.9, avg_cycle_days=4.5,
               on_time_contact_rate=0.97, on_time_close_rate=0.93, breaches=1, complaints_previous_period=140,
               enterprise_class="A"),
    Indicators(handled=40, settlement_rate=0.3, satisfaction=None, avg_cycle_days=21.0,
               on_time_contact_rate=0.5, on_time_close_rate=0.4, breaches=12, untrue_feedback_findings=3,
               complaints_previous_period=10, enterprise_class="C"),
    Indicators(handled=5000, settlement_rate=0.99, satisfaction=0.0, avg_cycle_days=None,
               on_time_contact_rate=1.0, on_time_close_rate=1.0, complaints_previous_period=0),
    Indicators(handled=7, settlement_rate=0.0, satisfaction=0.0, avg_cycle_days=365.0,
               on_time_contact_rate=0.0, on_time_close_rate=0.0, breaches=100, untrue_feedback_findings=50,
               complaints_previous_period=None, enterprise_class="B"),
)
