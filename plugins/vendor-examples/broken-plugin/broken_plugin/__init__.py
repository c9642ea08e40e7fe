"""A deliberately broken ODR plugin, to show what the vendor kit reports. Each fault is marked.

Run ``pytest --odr-plugin broken_plugin`` (with the distribution installed) to see every check fail.
"""

from __future__ import annotations

import datetime as dt
import itertools

import msgspec

from odr_plugin_api import (
    ClassificationResult,
    DayInfo,
    DeadlineClock,
    DeadlinePlan,
    Family,
    PluginInfo,
    ScoreResult,
    hookimpl,
)

_calls = itertools.count()


def _peek_at_the_platform():
    from core.settings import Settings  # FAULT (imports): the platform's internals; the platform refuses this plugin

    return Settings


class BrokenConfig(msgspec.Struct, kw_only=True):
    api_key: str  # FAULT (config): no default, so a node without saved config cannot decode {}
    weight: float = 1.0


@hookimpl
def odr_plugin_info() -> PluginInfo:
    return PluginInfo(
        name="broken_example",  # FAULT (plugin_info): the entry point is named broken_plugin
        version="0.0.1",
        title="Broken example",
        families=(Family.CALENDAR, Family.DEADLINE_POLICY, Family.CLASSIFICATION, Family.SCORING),
        config=BrokenConfig,
        classes=("A", "B", "C"),
    )


@hookimpl
def odr_calender_day(scope, day: dt.date) -> DayInfo | None:  # FAULT (hooks, families, isolation): misspelt hook
    return None


@hookimpl
def odr_deadline_policy(scope, request) -> DeadlinePlan:
    n = next(_calls)  # FAULT (deadline_policy): the answer changes from call to call
    return DeadlinePlan(
        policy="broken_example",
        version="0.0.1",
        contact_days=2 + n % 3,
        contact_clock=DeadlineClock.WORKING_DAYS,
        close_days=10,
        close_clock=DeadlineClock.WORKING_DAYS,
    )


@hookimpl
def odr_classify_enterprise(scope, facts) -> ClassificationResult:
    code = "Z" if facts.unit_type != "enterprise" else "A"  # FAULT (classification): Z is not declared
    return ClassificationResult(scheme="broken_example", code=code, label=code)


@hookimpl
def odr_score_enterprise(*, scope, indicators) -> ScoreResult:  # FAULT (hooks): keyword-only parameters
    return ScoreResult(formula="broken_example", version="0.0.1", score=150.0)  # FAULT (scoring): above 100
