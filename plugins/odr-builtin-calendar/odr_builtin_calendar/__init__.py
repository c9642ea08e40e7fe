"""Built-in working-day calendar for mainland China (default of the ``calendar`` family).

Follows the State Council's yearly holiday notice, make-up working days (调休) included, through the
maintained ``chinese-calendar`` library. For a year the library has no notice for, it answers from
what the law fixes in advance (:mod:`odr_builtin_calendar.provisional`: the statutory holidays, their
补假 days, weekends; no make-up working days), with ``provisional=True`` and the reason saying so.
"""

from __future__ import annotations

import datetime as dt

import chinese_calendar

from odr_builtin_calendar.provisional import provisional_day
from odr_plugin_api import DayInfo, Family, PluginInfo, Scope, hookimpl

NAME = "odr_builtin_calendar"
VERSION = "1.1.0"
_HOLIDAY_ZH = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}


def mainland_day(day: dt.date) -> DayInfo:
    """Working-day status of ``day`` under the State Council notice for its year; provisional (the
    statutory holidays only) for a year whose notice ``chinese-calendar`` does not have."""
    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        working = chinese_calendar.is_workday(day)
    except NotImplementedError:
        return provisional_day(day, NAME)
    weekend = day.weekday() >= 5
    if working and weekend:
        reason = f"make-up working day (调休) for {name} {_HOLIDAY_ZH.get(name, '')}".strip()
    elif not working and name and on_holiday:
        reason = f"statutory holiday: {name} {_HOLIDAY_ZH.get(name, '')}".strip()
    elif not working:
        reason = "weekend"
    else:
        reason = "working day"
    return DayInfo(day=day, working=working, reason=reason, source=NAME)


@hookimpl
def odr_plugin_info() -> PluginInfo:
    return PluginInfo(
        name=NAME,
        version=VERSION,
        title="中国大陆工作日历 / Mainland China working-day calendar",
        description="State Council holiday notice with make-up working days (chinese-calendar); for a year"
        " without a notice yet, the statutory holidays of 全国年节及纪念日放假办法, marked provisional.",
        families=(Family.CALENDAR,),
        default=True,
    )


@hookimpl(trylast=True)
def odr_calendar_day(scope: Scope, day: dt.date) -> DayInfo:
    return mainland_day(day)
