"""Deadlines of a complaint (or an obligation) at a jurisdiction node, from the plugins active there."""

from __future__ import annotations

import datetime as dt

import msgspec

from core.deadlines.counting import PeriodExplanation, add_working_days, count_period
from core.runtime import Platform
from odr_plugin_api import DayInfo, DeadlinePlan, DeadlineRequest, Scope


class ComplaintDeadlines(msgspec.Struct, frozen=True, kw_only=True):
    """A complaint's due moments and their derivation (the JSON stored with the complaint, answered by
    the explain endpoint and command). ``provisional``: either period touched a provisional calendar
    day (its due moment may change when the year's holiday notice is known)."""

    policy: str
    policy_version: str
    plugin: str
    contact: PeriodExplanation
    close: PeriodExplanation
    provisional: bool = False


def calendar_for(platform: Platform, scope: Scope, active: frozenset[str]):
    """A memoised ``day -> DayInfo`` on the calendar plugins active in ``scope``."""
    return platform.calendar(scope, active)


async def complaint_deadlines(
    platform: Platform, tenant: str, node_code: str, start: dt.datetime, *, request: DeadlineRequest | None = None
) -> ComplaintDeadlines:
    scope, active = await platform.scope(tenant, node_code)
    request = request or DeadlineRequest(start=start)
    host = platform.host
    # an isolated plugin's answer is waited for in a thread, never on the event loop: the whole
    # computation when a calendar is isolated (counting asks it), else only the policy's call
    if host.isolates_hook("odr_calendar_day", active):
        return await host.off_loop(active, _complaint_deadlines, platform, scope, active, start, request)
    plan, plugin = await host.off_loop(active if host.isolates_hook("odr_deadline_policy", active) else (),
                                       host.call_first, "odr_deadline_policy", active=active, scope=scope,
                                       request=request)
    return deadlines_from_plan(plan, plugin, start, calendar_for(platform, scope, active))


def _complaint_deadlines(platform: Platform, scope: Scope, active: frozenset[str], start: dt.datetime,
                         request: DeadlineRequest) -> ComplaintDeadlines:
    plan, plugin = platform.host.call_first("odr_deadline_policy", active=active, scope=scope, request=request)
    return deadlines_from_plan(plan, plugin, start, calendar_for(platform, scope, active))


def deadlines_from_plan(plan: DeadlinePlan, plugin: str, start: dt.datetime, day_info) -> ComplaintDeadlines:
    common = dict(policy=plan.policy, policy_version=plan.version, legal_basis=plan.legal_basis, day_info=day_info,
                  start=start, holiday_rollover=plan.holiday_rollover)
    contact = count_period(milestone="contact", days=plan.contact_days, clock=plan.contact_clock, **common)
    close = count_period(milestone="close", days=plan.close_days, clock=plan.close_clock, **common)
    return ComplaintDeadlines(policy=plan.policy, policy_version=plan.version, plugin=plugin, contact=contact,
                              close=close, provisional=contact.provisional or close.provisional)


async def working_days_deadline(platform: Platform, tenant: str, node_code: str, start: dt.datetime, days: int) -> PeriodExplanation:
    scope, active = await platform.scope(tenant, node_code)
    return await platform.host.off_loop(active, lambda: add_working_days(start, days, calendar_for(platform, scope, active)))
