"""The contracts on hook answers: what the platform accepts back from a plugin, checked in one place.

:func:`check_answer` is called by the platform's plugin host on every answer an implementation gives
(right where the answer comes back) and by the vendor kit (pytest-odr) on every sample answer, so a
plugin that passes the kit is not refused by the platform for its answers. A violation is raised as
:class:`ContractViolation` and the host treats it exactly like an exception raised by the plugin: the
call goes to the next implementation (ultimately the built-in default), the failure is counted and
recorded where the bureau sees it.

``None`` is always an acceptable answer of a ``firstresult`` hook: it defers to the next implementation.

Per hook (see :mod:`odr_plugin_api.hookspecs` for what each hook means):

- ``odr_calendar_day``: a :class:`DayInfo` whose ``working`` and ``provisional`` are bools and whose
  ``reason`` is not empty (the kit also checks ``day`` is the asked day).
- ``odr_deadline_policy``: a :class:`DeadlinePlan` naming its ``policy`` and ``version``; each of
  ``contact_days`` and ``close_days`` a whole number in 1..:data:`MAX_PERIOD_DAYS` with a clock that
  is a :class:`DeadlineClock` (``working_days`` or ``natural_days``); ``holiday_rollover`` a bool.
- ``odr_classify_enterprise``: a :class:`ClassificationResult` with ``scheme`` and ``code``; the code
  among ``PluginInfo.classes`` when the plugin declares them.
- ``odr_score_enterprise``: a :class:`ScoreResult` with ``formula`` and ``version``, a finite
  ``score`` in 0..100 and finite ``parts``.
- ``odr_check_enterprise_standing``: a dict with ``status`` one of ``clear``, ``listed``, ``unknown``
  and string ``detail`` / ``source`` when given.
- ``odr_channel_send``: a :class:`ChannelReceipt` with ``status`` ``sent`` or ``skipped``.
- ``odr_notify``, ``odr_plugin_info``: not checked here (the answer of ``odr_notify`` is ignored;
  ``odr_plugin_info`` is checked when the plugin is registered).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from odr_plugin_api.channels import ChannelReceipt
from odr_plugin_api.types import ClassificationResult, DayInfo, DeadlineClock, DeadlinePlan, PluginInfo, ScoreResult

MAX_PERIOD_DAYS = 366
"""The longest period a deadline plan may give (a year): more is no plausible ODR deadline."""

STANDING_STATUSES = ("clear", "listed", "unknown")
RECEIPT_STATUSES = ("sent", "skipped")


class ContractViolation(ValueError):
    """An answer breaks its hook's contract.

    ``hook``: the hook; ``plugin``: the plugin's name (when known); ``problems``: one sentence per
    breach, each saying what was wrong. ``str(exc)`` lists them; it holds values of the answer only,
    never the hook's arguments."""

    def __init__(self, hook: str, problems: list[str], plugin: str | None = None) -> None:
        self.hook = hook
        self.plugin = plugin
        self.problems = list(problems)
        who = f"{plugin}: " if plugin else ""
        super().__init__(f"{who}{hook} answer breaks its contract: " + "; ".join(self.problems))


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _is_whole(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int)


def _wrong_type(answer: Any, expected: type) -> list[str]:
    return [] if isinstance(answer, expected) else [f"returned {_short(answer)}, not a {expected.__name__} or None"]


def _day_info(answer: Any, info: PluginInfo | None) -> list[str]:
    if out := _wrong_type(answer, DayInfo):
        return out
    if not isinstance(answer.working, bool):
        out.append(f"DayInfo.working is {_short(answer.working)}, not a bool")
    if not isinstance(answer.provisional, bool):
        out.append(f"DayInfo.provisional is {_short(answer.provisional)}, not a bool")
    if not isinstance(answer.reason, str) or not answer.reason:
        out.append("DayInfo.reason is empty: say why the day is (not) a working day")
    return out


def _deadline_plan(answer: Any, info: PluginInfo | None) -> list[str]:
    if out := _wrong_type(answer, DeadlinePlan):
        return out
    if not answer.policy or not answer.version:
        out.append("DeadlinePlan.policy and .version must name the policy")
    for milestone in ("contact", "close"):
        days = getattr(answer, f"{milestone}_days")
        clock = getattr(answer, f"{milestone}_clock")
        if not isinstance(clock, DeadlineClock):
            known = ", ".join(c.value for c in DeadlineClock)
            out.append(f"{milestone}_clock is {_short(clock)}, not a DeadlineClock ({known})")
        if not _is_whole(days):
            out.append(f"{milestone}_days is {_short(days)}, not a whole number of days")
        elif not 1 <= days <= MAX_PERIOD_DAYS:
            out.append(f"{milestone}_days is {days}: a period is 1..{MAX_PERIOD_DAYS} days")
    if not isinstance(answer.holiday_rollover, bool):
        out.append(f"holiday_rollover is {_short(answer.holiday_rollover)}, not a bool")
    return out


def _classification(answer: Any, info: PluginInfo | None) -> list[str]:
    if out := _wrong_type(answer, ClassificationResult):
        return out
    classes = tuple(info.classes) if info is not None else ()
    if not answer.scheme or not answer.code:
        out.append("ClassificationResult.scheme and .code must not be empty")
    elif classes and answer.code not in classes:
        out.append(f"class {answer.code!r} is not among the declared classes {', '.join(classes)} (PluginInfo.classes)")
    return out


def _score(answer: Any, info: PluginInfo | None) -> list[str]:
    if out := _wrong_type(answer, ScoreResult):
        return out
    if not answer.formula or not answer.version:
        out.append("ScoreResult.formula and .version must name the formula")
    if not _is_number(answer.score):
        out.append(f"score is {_short(answer.score)}, not a finite number")
    elif not 0 <= answer.score <= 100:
        out.append(f"score {answer.score} is outside 0..100")
    parts = answer.parts if isinstance(answer.parts, dict) else None
    if parts is None:
        out.append(f"parts is {_short(answer.parts)}, not a dict")
    elif bad := {k: v for k, v in parts.items() if not isinstance(k, str) or not _is_number(v)}:
        out.append(f"parts {_short(bad)} are not finite numbers under names")
    return out


def _standing(answer: Any, info: PluginInfo | None) -> list[str]:
    if not isinstance(answer, dict):
        return [f"returned {_short(answer)}, not a dict or None"]
    out = []
    if answer.get("status") not in STANDING_STATUSES:
        out.append(f"status is {_short(answer.get('status'))}, not one of {', '.join(STANDING_STATUSES)}")
    out += [f"{k} is {_short(answer[k])}, not a str" for k in ("detail", "source") if k in answer and not isinstance(answer[k], str)]
    return out


def _receipt(answer: Any, info: PluginInfo | None) -> list[str]:
    if out := _wrong_type(answer, ChannelReceipt):
        return out
    if answer.status not in RECEIPT_STATUSES:
        out.append(f"ChannelReceipt.status is {_short(answer.status)}, not one of {', '.join(RECEIPT_STATUSES)}")
    return out


CHECKS: dict[str, Callable[[Any, PluginInfo | None], list[str]]] = {
    "odr_calendar_day": _day_info,
    "odr_deadline_policy": _deadline_plan,
    "odr_classify_enterprise": _classification,
    "odr_score_enterprise": _score,
    "odr_check_enterprise_standing": _standing,
    "odr_channel_send": _receipt,
}
"""hook name -> its answer check (a list of problems, empty when the answer keeps the contract)."""


def answer_problems(hook_name: str, answer: Any, info: PluginInfo | None = None) -> list[str]:
    """The breaches of ``answer`` to ``hook_name``'s contract (empty when it keeps it or is None)."""
    check = CHECKS.get(hook_name)
    if answer is None or check is None:
        return []
    return check(answer, info)


def check_answer(hook_name: str, answer: Any, info: PluginInfo | None = None) -> None:
    """Raise :class:`ContractViolation` when ``answer`` (given by the plugin ``info`` describes) breaks
    ``hook_name``'s contract; return None when it keeps it (``None`` always does)."""
    if problems := answer_problems(hook_name, answer, info):
        raise ContractViolation(hook_name, problems, info.name if info is not None else None)
