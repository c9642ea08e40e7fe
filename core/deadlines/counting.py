"""Count a period on a calendar, the way Chinese civil and administrative law counts it.

Convention (DOMAIN.md): the day the period starts is not counted; the deadline is the end of the last
day (23:59:59 Asia/Shanghai). Working-day periods skip every non-working day (weekends unless made up,
statutory holidays). A natural-day period counts every day; if the policy says so
(``holiday_rollover``), a period ending on a non-working day moves to the next working day.

Provisional: a period is ``provisional`` when any day its counting looked at (counted, skipped or
rolled over) was answered by the calendar with ``DayInfo.provisional`` (for mainland China: a year
whose State Council notice is not out yet). Those days are listed (``provisional_days``, and
``provisional`` on each skipped or rolled-over day), as are their years, so the deadline can be
recomputed once the calendar knows them.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable
from zoneinfo import ZoneInfo

import msgspec

from odr_plugin_api import DayInfo, DeadlineClock

TZ = ZoneInfo("Asia/Shanghai")
END_OF_DAY = dt.time(23, 59, 59)
MAX_SPAN_DAYS = 400


class SkippedDay(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A day not counted (or rolled over) and the calendar's reason; ``provisional`` (shown only when
    true) when the calendar answered it from the law's fixed rules, without the year's notice."""

    day: dt.date
    reason: str
    source: str = ""
    provisional: bool = False


class PeriodExplanation(msgspec.Struct, frozen=True, kw_only=True):
    """How one due moment was derived."""

    milestone: str
    policy: str
    policy_version: str
    clock: DeadlineClock
    days: int
    start: dt.datetime
    start_day_not_counted: dt.date
    counted_days: list[dt.date]
    skipped: list[SkippedDay]
    rolled_over: list[SkippedDay]
    due: dt.datetime
    legal_basis: str = ""
    holiday_rollover: bool = False
    provisional: bool = False
    """True when any day looked at was answered provisionally: the due moment may still change."""
    provisional_days: list[dt.date] = []
    """Every day looked at whose answer was provisional (counted ones included), in order."""
    provisional_years: list[int] = []
    """The years of ``provisional_days``."""
    provisional_note: str = ""
    """Why the due moment is provisional (empty when it is not)."""


class _Counted(msgspec.Struct, frozen=True):
    """What a count depends on only through the calendar (memoised per calendar and start date)."""

    counted: list[dt.date]
    skipped: list[SkippedDay]
    rolled: list[SkippedDay]
    due: dt.datetime
    provisional_days: list[dt.date]


def count_period(
    *,
    start: dt.datetime,
    days: int,
    clock: DeadlineClock,
    day_info: Callable[[dt.date], DayInfo],
    holiday_rollover: bool = False,
    milestone: str = "",
    policy: str = "",
    policy_version: str = "",
    legal_basis: str = "",
) -> PeriodExplanation:
    """Due moment of a period of ``days`` days starting at ``start`` (aware or Asia/Shanghai-naive).

    The count depends only on the start's local date, ``days``, ``clock``, ``holiday_rollover`` and the
    calendar: when ``day_info`` carries a ``periods`` dict (the platform's memoised calendars do), the
    counted days, skips and due moment are kept there and shared by every explanation on that calendar
    and start date (their lists must not be mutated)."""
    if days < 0:
        raise ValueError("days: must not be negative")
    local = (start if start.tzinfo else start.replace(tzinfo=TZ)).astimezone(TZ)
    periods = getattr(day_info, "periods", None)
    key = (local.date(), days, clock, holiday_rollover)
    counted_period = periods.get(key) if periods is not None else None
    if counted_period is None:
        counted_period = _count(local.date(), days, clock, day_info, holiday_rollover)
        if periods is not None:
            periods[key] = counted_period
    c = counted_period
    return PeriodExplanation(
        milestone=milestone,
        policy=policy,
        policy_version=policy_version,
        clock=clock,
        days=days,
        start=local,
        start_day_not_counted=local.date(),
        counted_days=c.counted,
        skipped=c.skipped,
        rolled_over=c.rolled,
        due=c.due,
        legal_basis=legal_basis,
        holiday_rollover=holiday_rollover,
        provisional=bool(c.provisional_days),
        provisional_days=c.provisional_days,
        provisional_years=(years := sorted({d.year for d in c.provisional_days})),
        provisional_note=_note(years),
    )


def _note(years: list[int]) -> str:
    if not years:
        return ""
    named = ", ".join(map(str, years))
    return (f"provisional: the calendar has no published holiday arrangement for {named} yet and counted those days"
            " from the statutory holidays and weekends; the due moment is recounted once the arrangement is known")


def _count(
    start_day: dt.date, days: int, clock: DeadlineClock, day_info: Callable[[dt.date], DayInfo], holiday_rollover: bool
) -> _Counted:
    """Counted days, skipped days, rolled-over days, due moment and the provisional days looked at of a
    period starting on ``start_day``."""
    day = start_day
    counted: list[dt.date] = []
    skipped: list[SkippedDay] = []
    provisional: list[dt.date] = []
    while len(counted) < days:
        day += dt.timedelta(days=1)
        if (day - start_day).days > MAX_SPAN_DAYS:
            raise ValueError(f"the calendar has no {days} working days within {MAX_SPAN_DAYS} days")
        if clock is DeadlineClock.WORKING_DAYS:
            info = day_info(day)
            if info.provisional:
                provisional.append(day)
            if not info.working:
                skipped.append(SkippedDay(day=day, reason=info.reason, source=info.source, provisional=info.provisional))
                continue
        counted.append(day)
    last = counted[-1] if counted else start_day
    rolled: list[SkippedDay] = []
    if clock is DeadlineClock.NATURAL_DAYS and holiday_rollover:
        while True:
            info = day_info(last)
            if info.provisional and last not in provisional:
                provisional.append(last)
            if info.working:
                break
            rolled.append(SkippedDay(day=last, reason=info.reason, source=info.source, provisional=info.provisional))
            last += dt.timedelta(days=1)
            if len(rolled) > 60:
                raise ValueError("holiday rollover found no working day within 60 days")
    return _Counted(counted, skipped, rolled, dt.datetime.combine(last, END_OF_DAY, TZ), provisional)


def add_working_days(start: dt.datetime, days: int, day_info: Callable[[dt.date], DayInfo]) -> PeriodExplanation:
    """A plain working-day period (e.g. Art. 15: a liaison change is filed within 5 working days)."""
    return count_period(start=start, days=days, clock=DeadlineClock.WORKING_DAYS, day_info=day_info)
