"""The small built-in sample inputs the per-family contract checks call a plugin with, and the real
mainland China calendar (``chinese-calendar``: statutory holidays and make-up working days) the
deadline check counts on.

They are plain values of :mod:`odr_plugin_api` Structs, so a vendor may reuse them in its own tests.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from odr_plugin_api import DeadlineRequest, EnterpriseFacts, Indicators
from odr_plugin_api import samples as api_samples

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
    dt.datetime(2026, 10, 9, 10, 0, tzinfo=TZ),  # Friday before the make-up working Saturday 2026-10-10
    dt.datetime(2026, 2, 13, 18, 0, tzinfo=TZ),  # the eve of the Spring Festival holiday
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

#: Period indicators from realistic ranges (odr_plugin_api.indicators: satisfaction a mean rating
#: 1..5, rates 0..1, cycles in natural days), from empty and poor periods to perfect ones, with unknown
#: satisfaction and cycle: the plugin API's samples.
INDICATORS: tuple[Indicators, ...] = api_samples.INDICATORS


def working_day(day: dt.date) -> bool:
    """Whether ``day`` is a working day in mainland China (State Council arrangement, as published in
    the ``chinese-calendar`` library; weekends only for years it does not know)."""
    import chinese_calendar

    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:  # a year the library does not cover yet
        return day.weekday() < 5
