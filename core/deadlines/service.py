"""Deadlines of a complaint (or an obligation) at a jurisdiction node, from the plugins active there."""

from __future__ import annotations

import datetime as dt

import msgspec

from core.deadlines.counting import PeriodExplanation, add_working_days, count_period
from core.pluginhost.host import PluginFailure, PluginHost
from core.runtime import Platform
from odr_plugin_api import DayInfo, DeadlinePlan, DeadlineRequest, Scope


class ComplaintDeadlines(msgspec.Struct, frozen=True, kw_only=True):
    """A complaint's due moments and their derivation (the JSON stored with the complaint, answered by
    the explain endpoint and command). ``provisional``: either period touched a provisional calendar
    day (its due moment may change when the year's holiday notice is known). ``fallback_from``: the
    deadline plugins active at the node that failed (raised, or answered out of contract) before
    ``plugin`` answered in their place: which plugin, hook, when, error type, how often; empty when
    the active plugin answered itself."""

    policy: str
    policy_version: str
    plugin: str
    contact: PeriodExplanation
    close: PeriodExplanation
    provisional: bool = False
    fallback_from: list[PluginFailure] = []


def calendar_for(platform: Platform, scope: Scope, active: frozenset[str]):
    """A memoised ``day -> DayInfo`` on the calendar plugins active in ``scope``."""
    return platform.calendar(scope, active)


async def complaint_deadlines(
    platform: Platform, tenant: str, node_code: str, start: dt.datetime, *, request: DeadlineRequest | None = None
) -> ComplaintDeadlines:
    scope, active = await platform.scope(tenant, node_code)
    request = request or DeadlineRequest(start=start)
    host = platform.host
    day_info = calendar_for(platform, scope, active)
    # an isolated plugin's answer is waited for in a thread, never on the event loop: the whole
    # computation when the policy or a calendar (counting asks it) is isolated
    if host.isolates_hook("odr_calendar_day", active) or host.isolates_hook("odr_deadline_policy", active):
        return await host.off_loop(active, decide_deadlines, host, scope, active, start, day_info, request)
    return decide_deadlines(host, scope, active, start, day_info, request)


def decide_deadlines(host: PluginHost, scope: Scope, active: frozenset[str], start: dt.datetime, day_info,
                     request: DeadlineRequest | None = None) -> ComplaintDeadlines:
    """Ask the deadline policy active in ``scope`` and count its plan on ``day_info``; the plugins that
    failed before the one that answered are kept in ``fallback_from``."""
    answer = host.first_answerer("odr_deadline_policy", active=active)(
        scope=scope, request=request or DeadlineRequest(start=start))
    return deadlines_from_plan(answer.result, answer.plugin, start, day_info, fallback_from=answer.failed)


def deadlines_from_plan(plan: DeadlinePlan, plugin: str, start: dt.datetime, day_info,
                        fallback_from: tuple[PluginFailure, ...] = ()) -> ComplaintDeadlines:
    common = dict(policy=plan.policy, policy_version=plan.version, legal_basis=plan.legal_basis, day_info=day_info,
                  start=start, holiday_rollover=plan.holiday_rollover)
    contact = count_period(milestone="contact", days=plan.contact_days, clock=plan.contact_clock, **common)
    close = count_period(milestone="close", days=plan.close_days, clock=plan.close_clock, **common)
    return ComplaintDeadlines(policy=plan.policy, policy_version=plan.version, plugin=plugin, contact=contact,
                              close=close, provisional=contact.provisional or close.provisional,
                              fallback_from=list(fallback_from))


async def working_days_deadline(platform: Platform, tenant: str, node_code: str, start: dt.datetime, days: int) -> PeriodExplanation:
    scope, active = await platform.scope(tenant, node_code)
    return await platform.host.off_loop(active, lambda: add_working_days(start, days, calendar_for(platform, scope, active)))
