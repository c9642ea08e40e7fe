"""The provisional mainland calendar: what the law fixes before a year's State Council notice is out.

For a year without a published holiday notice, a day's working status comes from the national holiday
regulation (全国年节及纪念日放假办法, State Council Decree 798 in force from 2025-01-01: New Year's Day;
Spring Festival Eve and the first three days of the lunar year; Qingming; Labour Day 1-2 May; Dragon
Boat; Mid-Autumn; National Day 1-3 October; before 2025 the earlier text: no Eve, Labour Day 1 May),
its Art. 6 rule that a holiday falling on a weekend is given back on a working day (补假, the next
working days, as every notice has done), and weekends as rest days. The lunar and solar-term dates and
the regulation's versions come from the maintained ``holidays`` library (its China calendar); only the
statutory holidays and their 补假 days are taken from it — never a notice's substituted days off, and
there are no make-up working days (调休): only a notice creates those. Every answer is provisional.
"""

from __future__ import annotations

import datetime as dt
import functools

import holidays
from holidays.constants import PUBLIC

from odr_plugin_api import DayInfo

STATUTORY_ZH = {
    "New Year's Day": "元旦",
    "Chinese New Year's Eve": "除夕 (春节)",
    "Chinese New Year (Spring Festival)": "春节",
    "Tomb-Sweeping Day": "清明节",
    "Labor Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-Autumn Festival": "中秋节",
    "National Day": "国庆节",
}
"""The regulation's statutory holidays for all citizens, by the library's English name."""
_OBSERVED = " (observed)"
LAW = "全国年节及纪念日放假办法"


def why(year: int) -> str:
    return f"provisional: no State Council holiday notice for {year} known yet"


@functools.lru_cache(maxsize=64)
def statutory_days(year: int) -> dict[dt.date, tuple[str, bool]]:
    """The statutory days off of ``year`` by the regulation: day -> (festival's English name, whether
    it is a 补假 day for a festival that fell on a weekend). Empty where the library's lunar tables
    end (then only weekends count as rest days)."""
    table = holidays.China(years=year, language="en_US", categories=(PUBLIC,))
    out: dict[dt.date, tuple[str, bool]] = {}
    for day, names in sorted(table.items()):
        for name in names.split("; "):
            observed = name.endswith(_OBSERVED)
            base = name[: -len(_OBSERVED)] if observed else name
            if base in STATUTORY_ZH and day not in out:
                out[day] = (base, observed)
    if not any(base == "Chinese New Year (Spring Festival)" for base, _ in out.values()):
        return {}  # outside the lunar tables: no lunar festival can be placed, fixed-date ones alone would mislead
    return out


def provisional_day(day: dt.date, source: str) -> DayInfo:
    """``day`` on the provisional calendar (always ``provisional=True``), the reason saying why."""
    found = statutory_days(day.year).get(day)
    note = why(day.year)
    if found is not None:
        name, observed = found
        label = f"{name} {STATUTORY_ZH[name]}"
        if observed:
            reason = f"day off in lieu (补假, {LAW} Art. 6) for {label}, which falls on a weekend ({note})"
        else:
            reason = f"statutory holiday: {label} ({note}; fixed by {LAW})"
        return DayInfo(day=day, working=False, reason=reason, source=source, provisional=True)
    if not statutory_days(day.year):
        note += "; the lunar calendar does not reach this year: weekends only"
    if day.weekday() >= 5:
        return DayInfo(day=day, working=False, reason=f"weekend ({note}; the notice may make it a make-up working day)",
                       source=source, provisional=True)
    return DayInfo(day=day, working=True, reason=f"working day ({note}; the notice may make it a day off)",
                   source=source, provisional=True)
