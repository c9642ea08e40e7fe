"""Plugins used by the tests, registered exactly as entry-point plugins are (PluginHost.register)."""

from __future__ import annotations

import datetime as dt
import types

import msgspec

from odr_plugin_api import DayInfo, DeadlineClock, DeadlinePlan, Family, PluginInfo, Secret, hookimpl


def raising_calendar(name: str = "t_raising_calendar", on: dt.date | None = None) -> types.SimpleNamespace:
    """A calendar that raises (on the day ``on`` only, when given: it then passes the trial the platform
    makes before activating it, and fails later)."""

    @hookimpl
    def odr_plugin_info():
        return PluginInfo(name=name, version="0.1", title="raises", families=(Family.CALENDAR,))

    @hookimpl(tryfirst=True)
    def odr_calendar_day(scope, day):
        if on is None or day == on:
            raise RuntimeError("consumer 13800138000 broke me")  # must not reach the logs
        return None

    return types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_calendar_day=odr_calendar_day)


def local_holiday_calendar(name: str, holiday: dt.date) -> types.SimpleNamespace:
    @hookimpl
    def odr_plugin_info():
        return PluginInfo(name=name, version="0.1", title="local holiday", families=(Family.CALENDAR,))

    @hookimpl
    def odr_calendar_day(scope, day):
        if day == holiday:
            return DayInfo(day=day, working=False, reason="local statutory holiday", source=name)
        return None

    return types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_calendar_day=odr_calendar_day)


class DaysConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    contact_days: int = msgspec.field(default=2)
    close_days: int = 7


class KeyedDaysConfig(DaysConfig, kw_only=True, forbid_unknown_fields=True):
    """A vendor-style policy configuration holding a credential (write-only)."""

    api_key: Secret = ""


def deadline_policy(name: str, config: type = DaysConfig) -> types.SimpleNamespace:
    @hookimpl
    def odr_plugin_info():
        return PluginInfo(
            name=name, version="0.1", title="test policy", families=(Family.DEADLINE_POLICY,), config=config
        )

    @hookimpl
    def odr_deadline_policy(scope, request):
        cfg = scope.config(name, config())
        return DeadlinePlan(
            policy=name,
            version="0.1",
            contact_days=cfg.contact_days,
            contact_clock=DeadlineClock.NATURAL_DAYS,
            close_days=cfg.close_days,
            close_clock=DeadlineClock.NATURAL_DAYS,
        )

    return types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_deadline_policy=odr_deadline_policy)


# A sample 2027 holiday notice (放假安排), as a vendor calendar plugin would carry it once the State
# Council publishes it: its days off and its make-up working days (调休). Invented for the tests (the
# real notice for 2027 is not out), shaped like the 2025 and 2026 notices.
SAMPLE_2027_DAYS_OFF = (
    [dt.date(2027, 1, d) for d in (1, 2, 3)]
    + [dt.date(2027, 2, d) for d in range(5, 14)]  # Eve (Fri 5 Feb) to Sat 13 Feb
    + [dt.date(2027, 4, d) for d in (3, 4, 5)]
    + [dt.date(2027, 5, d) for d in range(1, 6)]
    + [dt.date(2027, 6, d) for d in (9, 10, 11)]
    + [dt.date(2027, 9, d) for d in (15, 16, 17)]
    + [dt.date(2027, 10, d) for d in range(1, 8)]
)
SAMPLE_2027_MAKEUP = (dt.date(2027, 1, 31), dt.date(2027, 2, 20), dt.date(2027, 5, 8), dt.date(2027, 6, 12),
                      dt.date(2027, 9, 26), dt.date(2027, 10, 9))


def notice_calendar(name: str, year: int = 2027, days_off=SAMPLE_2027_DAYS_OFF, makeup=SAMPLE_2027_MAKEUP):
    """A calendar that knows ``year``'s notice: answers every day of that year (not provisional),
    None for other years."""
    off, work = frozenset(days_off), frozenset(makeup)

    @hookimpl
    def odr_plugin_info():
        return PluginInfo(name=name, version="0.1", title=f"{year} holiday notice (sample)", families=(Family.CALENDAR,))

    @hookimpl(tryfirst=True)
    def odr_calendar_day(scope, day):
        if day.year != year:
            return None
        if day in work:
            return DayInfo(day=day, working=True, reason=f"make-up working day (调休), {year} notice", source=name)
        if day in off:
            return DayInfo(day=day, working=False, reason=f"day off, {year} notice", source=name)
        weekend = day.weekday() >= 5
        return DayInfo(day=day, working=not weekend, reason="weekend" if weekend else "working day", source=name)

    return types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_calendar_day=odr_calendar_day)
