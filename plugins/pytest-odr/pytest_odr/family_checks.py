"""The per-family checks, for a plugin implementing the family's hook: calendar days over a year,
deadline policies (days, clocks, never due before the start), classification, scoring; each
deterministic on the samples of :mod:`pytest_odr.samples`. Every answer is checked with
:func:`odr_plugin_api.contracts.answer_problems`, the very check the platform applies to answers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Iterable

from odr_plugin_api import DayInfo, DeadlineClock
from odr_plugin_api.contracts import answer_problems
from pytest_odr import samples
from pytest_odr.subject import Subject, _call, _problems, _short


def _family_calls(
    s: Subject, hook: str, inputs: Iterable[dict[str, Any]], validate: Callable[[dict[str, Any], Any], list[str]]
) -> tuple[int, int, list[str]]:
    """Call ``hook`` with each input under both scopes, twice: collect the validation problems, the
    non-deterministic answers and the differences between no saved config and the default config."""
    fn = s.hook(hook)
    assert fn is not None
    bare, configured = s.scopes()
    problems: list[str] = []
    answered = calls = 0
    for kwargs in inputs:
        shown = ", ".join(f"{k}={_short(v, 80)}" for k, v in kwargs.items())
        try:
            first = _call(fn, scope=configured, **kwargs)
            again = _call(fn, scope=configured, **kwargs)
            unconfigured = _call(fn, scope=bare, **kwargs)
        except Exception as exc:
            problems.append(f"{hook}({shown}) raised {type(exc).__name__}: {exc}")
            continue
        calls += 1
        if first is not None:
            answered += 1
        problems += [f"{hook}({shown}): {p}" for p in validate(kwargs, first)]
        if first != again:
            problems.append(
                f"{hook}({shown}) is not deterministic: the same input gave {_short(first)}, then {_short(again)}"
            )
        elif unconfigured != first:
            problems.append(
                f"{hook}({shown}) answers {_short(unconfigured)} where no config is saved but {_short(first)} with"
                f" the default config: read it with scope.config({s.name!r}, YourConfig())"
            )
    return calls, answered, problems


def check_calendar(s: Subject) -> str | None:
    days = samples.calendar_days()

    def validate(kwargs: dict[str, Any], got: Any) -> list[str]:
        out = answer_problems("odr_calendar_day", got, s.info())
        if isinstance(got, DayInfo) and got.day != kwargs["day"]:
            out.append(f"returned the DayInfo of {got.day} (DayInfo.day must be the asked day)")
        return out

    calls, answered, problems = _family_calls(s, "odr_calendar_day", ({"day": d} for d in days), validate)
    if problems:
        raise _problems(f"odr_calendar_day breaks the calendar contract over {samples.CALENDAR_YEAR}:", problems)
    return f"{answered} of {len(days)} days of {samples.CALENDAR_YEAR} answered, the rest deferred"


def _due(start: dt.datetime, days: int, clock: DeadlineClock, rollover: bool) -> dt.datetime:
    """The platform's counting convention (:mod:`odr_plugin_api.indicators`) on the mainland China
    calendar (:func:`pytest_odr.samples.working_day`): the start day is not counted, due at the end of
    the last day; a natural-day period may roll over to the next working day."""
    local = (start if start.tzinfo else start.replace(tzinfo=samples.TZ)).astimezone(samples.TZ)
    day = last = local.date()
    counted = 0
    while counted < days:
        day += dt.timedelta(days=1)
        if clock is DeadlineClock.WORKING_DAYS and not samples.working_day(day):
            continue
        counted += 1
        last = day
    if clock is DeadlineClock.NATURAL_DAYS and rollover:
        while not samples.working_day(last):
            last += dt.timedelta(days=1)
    return dt.datetime.combine(last, dt.time(23, 59, 59), samples.TZ)


def check_deadline_policy(s: Subject) -> str | None:
    def validate(kwargs: dict[str, Any], plan: Any) -> list[str]:
        out = answer_problems("odr_deadline_policy", plan, s.info())
        if out or plan is None:
            return out
        start = kwargs["request"].start
        local = (start if start.tzinfo else start.replace(tzinfo=samples.TZ)).astimezone(samples.TZ)
        for milestone in ("contact", "close"):
            due = _due(start, getattr(plan, f"{milestone}_days"), getattr(plan, f"{milestone}_clock"),
                       plan.holiday_rollover)
            if due < local:
                out.append(f"{milestone} due {due.isoformat()} is before the start {local.isoformat()}")
        return out

    requests = samples.DEADLINE_REQUESTS
    calls, answered, problems = _family_calls(
        s, "odr_deadline_policy", ({"request": r} for r in requests), validate
    )
    if calls and not answered:
        problems.append("returned None for every sample request: a deadline policy must answer (None defers to the next policy)")
    if problems:
        raise _problems(f"odr_deadline_policy breaks the deadline-policy contract ({len(requests)} sample requests):", problems)
    return f"{answered} of {len(requests)} sample requests answered"


def check_classification(s: Subject) -> str | None:
    info = s.info()
    classes = tuple(info.classes) if info is not None else ()

    def validate(kwargs: dict[str, Any], got: Any) -> list[str]:
        return answer_problems("odr_classify_enterprise", got, info)

    facts = samples.ENTERPRISE_FACTS
    calls, answered, problems = _family_calls(s, "odr_classify_enterprise", ({"facts": f} for f in facts), validate)
    if calls and not answered:
        problems.append("returned None for every sample unit: a classification scheme must answer")
    if problems:
        raise _problems(f"odr_classify_enterprise breaks the classification contract ({len(facts)} sample units):", problems)
    declared = f"classes {', '.join(classes)}" if classes else "no classes declared (PluginInfo.classes): codes not checked"
    return f"{answered} of {len(facts)} sample units classified; {declared}"


def check_scoring(s: Subject) -> str | None:
    def validate(kwargs: dict[str, Any], got: Any) -> list[str]:
        return answer_problems("odr_score_enterprise", got, s.info())

    indicators = samples.INDICATORS
    calls, answered, problems = _family_calls(
        s, "odr_score_enterprise", ({"indicators": i} for i in indicators), validate
    )
    if calls and not answered:
        problems.append("returned None for every sample: a scoring formula must answer")
    if problems:
        raise _problems(f"odr_score_enterprise breaks the scoring contract ({len(indicators)} sample indicator sets):", problems)
    return f"{answered} of {len(indicators)} sample indicator sets scored"
