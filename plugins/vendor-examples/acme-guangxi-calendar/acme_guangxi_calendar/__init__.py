"""Guangxi's regional statutory holiday 壮族三月三 for the ODR platform's calendar (example vendor plugin).

The Guangxi Zhuang Autonomous Region gives two days off for the Zhuang festival 三月三: the 3rd day of
the 3rd lunar month and the day after. The lunar date is computed with the maintained ``lunardate``
library (years 1900-2099). This calendar answers only for the days it changes and returns None for
every other day, so the mainland calendar (the State Council notice) answers the rest. A year's own
arrangement (放假调休: further days off, weekend make-up working days) is configuration per node.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Annotated

import msgspec
from lunardate import LunarDate

from odr_plugin_api import API_VERSION, DayInfo, Family, PluginInfo, Scope, hookimpl

NAME = "acme_guangxi_calendar"
VERSION = "1.0.0"
FESTIVAL = "壮族三月三 (Guangxi regional statutory holiday)"


class GuangxiCalendarConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    days_off: Annotated[int, msgspec.Meta(ge=1, le=7)] = 2
    """Days off from the 3rd day of the 3rd lunar month on (the regional rule: 2)."""
    extra_days_off: tuple[dt.date, ...] = ()
    """Further days off of a year's arrangement (放假调休), as published by the regional government."""
    makeup_working_days: tuple[dt.date, ...] = ()
    """Weekend days made working days (调休上班) by that arrangement."""


@functools.lru_cache(maxsize=256)
def festival_start(year: int) -> dt.date | None:
    """The Gregorian date of lunar 3/3 in ``year``; None outside the library's range (1900-2099)."""
    try:
        return LunarDate(year, 3, 3).to_solar_date()
    except ValueError:
        return None


def festival_days(year: int, days_off: int = 2) -> list[dt.date]:
    start = festival_start(year)
    return [] if start is None else [start + dt.timedelta(days=i) for i in range(days_off)]


@hookimpl
def odr_plugin_info() -> PluginInfo:
    return PluginInfo(
        name=NAME,
        version=VERSION,
        api_version=API_VERSION,
        title="广西壮族三月三 / Guangxi 三月三 holiday",
        description="Two days off from the 3rd day of the 3rd lunar month (Guangxi Zhuang Autonomous Region);"
        " None for every other day, so the mainland calendar answers those.",
        families=(Family.CALENDAR,),
        config=GuangxiCalendarConfig,
    )


@hookimpl
def odr_calendar_day(scope: Scope, day: dt.date) -> DayInfo | None:
    cfg: GuangxiCalendarConfig = scope.config(NAME, GuangxiCalendarConfig())
    if day in cfg.makeup_working_days:
        return DayInfo(day=day, working=True, reason=f"make-up working day (调休) for {FESTIVAL}", source=NAME)
    if day in cfg.extra_days_off:
        return DayInfo(day=day, working=False, reason=f"day off (调休) of the {FESTIVAL} arrangement", source=NAME)
    days = festival_days(day.year, cfg.days_off)
    if day in days:
        return DayInfo(
            day=day,
            working=False,
            reason=f"statutory holiday: {FESTIVAL}, lunar 3/3, day {days.index(day) + 1} of {len(days)}",
            source=NAME,
        )
    return None
