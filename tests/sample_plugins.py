"""Plugins used by the tests, registered exactly as entry-point plugins are (PluginHost.register)."""

from __future__ import annotations

import datetime as dt
import types

import msgspec

from odr_plugin_api import DayInfo, DeadlineClock, DeadlinePlan, Family, PluginInfo, hookimpl


def raising_calendar(name: str = "t_raising_calendar") -> types.SimpleNamespace:
    @hookimpl
    def odr_plugin_info():
        return PluginInfo(name=name, version="0.1", title="raises", families=(Family.CALENDAR,))

    @hookimpl(tryfirst=True)
    def odr_calendar_day(scope, day):
        raise RuntimeError("consumer 13800138000 broke me")  # must not reach the logs

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


def deadline_policy(name: str) -> types.SimpleNamespace:
    @hookimpl
    def odr_plugin_info():
        return PluginInfo(
            name=name, version="0.1", title="test policy", families=(Family.DEADLINE_POLICY,), config=DaysConfig
        )

    @hookimpl
    def odr_deadline_policy(scope, request):
        cfg = scope.config(name, DaysConfig())
        return DeadlinePlan(
            policy=name,
            version="0.1",
            contact_days=cfg.contact_days,
            contact_clock=DeadlineClock.NATURAL_DAYS,
            close_days=cfg.close_days,
            close_clock=DeadlineClock.NATURAL_DAYS,
        )

    return types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_deadline_policy=odr_deadline_policy)
