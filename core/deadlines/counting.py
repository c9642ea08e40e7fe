"""Count a period on a calendar, the way Chinese civil and administrative law counts it.

Convention (DOMAIN.md): the day the period starts is not counted; the deadline is the end of the last
day (23:59:59 Asia/Shanghai). Working-day periods skip every non-working day (weekends unless made up,
statutory holidays). A natural-day period counts every day; if the policy says so
(``holiday_rollover``), a period ending on a non-working day moves to the next working day.
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


class SkippedDay(msgspec.Struct, frozen=True, kw_only=True):
    day: dt.date
    reason: str
    source: str = ""


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
    counted, skipped, rolled, due = counted_period
    return PeriodExplanation(
        milestone=milestone,
        policy=policy,
        policy_version=policy_version,
        clock=clock,
        days=days,
        start=local,
        start_day_not_counted=local.date(),
        counted_days=counted,
        skipped=skipped,
        rolled_over=rolled,
        due=due,
        legal_basis=legal_basis,
    )


def _count(
    start_day: dt.date, days: int, clock: DeadlineClock, day_info: Callable[[dt.date], DayInfo], holiday_rollover: bool
) -> tuple[list[dt.date], list[SkippedDay], list[SkippedDay], dt.datetime]:
    """(counted days, skipped days, rolled-over days, due moment) of a period starting on ``start_day``."""
    day = start_day
    counted: list[dt.date] = []
    skipped: list[SkippedDay] = []
    while len(counted) < days:
        day += dt.timedelta(days=1)
        if (day - start_day).days > MAX_SPAN_DAYS:
            raise ValueError(f"the calendar has no {days} working days within {MAX_SPAN_DAYS} days")
        if clock is DeadlineClock.WORKING_DAYS:
            info = day_info(day)
            if not info.working:
                skipped.append(SkippedDay(day=day, reason=info.reason, source=info.source))
                continue
        counted.append(day)
    last = counted[-1] if counted else start_day
    rolled: list[SkippedDay] = []
    if clock is DeadlineClock.NATURAL_DAYS and holiday_rollover:
        while not (info := day_info(last)).working:
            rolled.append(SkippedDay(day=last, reason=info.reason, source=info.source))
            last += dt.timedelta(days=1)
            if len(rolled) > 60:
                raise ValueError("holiday rollover found no working day within 60 days")
    return counted, skipped, rolled, dt.datetime.combine(last, END_OF_DAY, TZ)


def add_working_days(start: dt.datetime, days: int, day_info: Callable[[dt.date], DayInfo]) -> PeriodExplanation:
    """A plain working-day period (e.g. Art. 15: a liaison change is filed within 5 working days)."""
    return count_period(start=start, days=days, clock=DeadlineClock.WORKING_DAYS, day_info=day_info)
