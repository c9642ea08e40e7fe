"""What every field of :class:`odr_plugin_api.Indicators` means: scale, unit, denominator, and the
value when there is nothing to measure. This is the one definition: the platform computes the
indicators to it (``core/evaluation/sql.py``, ``core/evaluation/scoring.py``), the built-in scoring
formulas, the vendor kit's samples and the plugin docs follow it, and a test holds them together.

Common rules: a unit's indicators cover the complaints that **entered ODR** (were handed to the unit)
within the evaluation period (Asia/Shanghai days, start and end day included), whatever happened to
them later; rates are shares in 0..1 (not percentages); a rate whose denominator is 0 is passed as
0.0 (the stored result keeps it empty); ``None`` means "nothing to measure" where a field allows it.

Satisfaction is passed as the platform stores it: the **mean consumer rating on 1..5** (1 = very
dissatisfied, 5 = very satisfied). A formula wanting a share uses :func:`satisfaction_share`
((rating − 1) / 4: 1 → 0.0, 3 → 0.5, 5 → 1.0).

Day-counting convention of deadlines (``DeadlinePlan``): the platform counts, the policy only gives
the numbers. The start day (the day the complaint entered ODR, Asia/Shanghai) is not counted; the
period is due at 23:59:59 Asia/Shanghai of its last day. ``working_days`` count only the days the
active calendar marks working (mainland China: weekends and statutory holidays off, make-up working
days on — e.g. Saturday 2026-10-10 is a working day); ``natural_days`` count every day, and with
``holiday_rollover`` a period whose last day is not a working day is due at the end of the next
working day. ``avg_cycle_days`` is measured in natural days and fractions of them (it is elapsed time,
not a deadline count).
"""

from __future__ import annotations

import math

import msgspec

SATISFACTION_MIN, SATISFACTION_MAX = 1.0, 5.0
"""The scale of ``Indicators.satisfaction``: a mean of consumer ratings 1..5."""


class IndicatorDefinition(msgspec.Struct, frozen=True, kw_only=True):
    """One indicator: ``scale`` (the range of values), ``unit``, ``denominator`` (what a rate is a share
    of; ``""`` for counts and means), ``when_empty`` (the value when there is nothing to measure) and
    ``meaning``."""

    scale: str
    unit: str
    denominator: str = ""
    when_empty: str
    meaning: str


DEFINITIONS: dict[str, IndicatorDefinition] = {
    "handled": IndicatorDefinition(
        scale="0, 1, 2, …", unit="complaints", when_empty="0",
        meaning="complaints that entered ODR with this unit in the period"),
    "settlement_rate": IndicatorDefinition(
        scale="0..1", unit="share", denominator="complaints of the period for which the unit submitted its feedback",
        when_empty="0.0 (no feedback submitted)",
        meaning="share of them that the unit reported settled (和解) with the consumer"),
    "satisfaction": IndicatorDefinition(
        scale="1..5", unit="mean rating", denominator="complaints of the period the consumer rated",
        when_empty="None (no rating)",
        meaning="mean consumer rating, 1 very dissatisfied .. 5 very satisfied; satisfaction_share() gives 0..1"),
    "avg_cycle_days": IndicatorDefinition(
        scale="≥ 0", unit="natural days (fractional)", denominator="complaints of the period that are closed",
        when_empty="None (none closed)",
        meaning="mean time from entering ODR to closing (处理周期), in days of 24 hours, weekends and holidays included"),
    "on_time_contact_rate": IndicatorDefinition(
        scale="0..1", unit="share",
        denominator="complaints of the period with a verdict on the contact deadline (contacted, or breached)",
        when_empty="0.0 (no verdict yet)",
        meaning="share of them where the consumer was contacted by the contact deadline"),
    "on_time_close_rate": IndicatorDefinition(
        scale="0..1", unit="share",
        denominator="complaints of the period with a verdict on the close deadline (the close clock stopped, or breached)",
        when_empty="0.0 (no verdict yet)",
        meaning="share of them where the close clock stopped (feedback, close, return, leave, withdrawal) in time"),
    "breaches": IndicatorDefinition(
        scale="0, 1, 2, …", unit="deadline breaches", when_empty="0",
        meaning="breached deadlines (contact and close) recorded on the complaints of the period"),
    "untrue_feedback_findings": IndicatorDefinition(
        scale="0, 1, 2, …", unit="complaints", when_empty="0",
        meaning="complaints of the period whose feedback a spot check found seriously untrue (Art. 22(2))"),
    "complaints_previous_period": IndicatorDefinition(
        scale="0, 1, 2, … or None", unit="complaints", when_empty="0 (None where the platform cannot say)",
        meaning="complaints that entered ODR with this unit in the period of the same kind just before"),
    "enterprise_class": IndicatorDefinition(
        scale="a class code or None", unit="", when_empty="None (not classified)",
        meaning="the unit's current class under the classification scheme active at its node"),
}
"""Field of :class:`odr_plugin_api.Indicators` -> its definition."""


def satisfaction_share(satisfaction: float | None) -> float | None:
    """``Indicators.satisfaction`` (mean rating 1..5) as a share in 0..1: (rating − 1) / 4, clamped;
    None (and NaN) stays None."""
    if satisfaction is None or math.isnan(satisfaction):
        return None
    span = SATISFACTION_MAX - SATISFACTION_MIN
    return min(1.0, max(0.0, (satisfaction - SATISFACTION_MIN) / span))


def definitions_table() -> str:
    """:data:`DEFINITIONS` as a Markdown table (the plugin API's README holds this table)."""
    rows = ["| indicator | scale | unit | denominator | when nothing to measure | meaning |",
            "| --- | --- | --- | --- | --- | --- |"]
    rows += [f"| `{name}` | {d.scale} | {d.unit} | {d.denominator or '—'} | {d.when_empty} | {d.meaning} |"
             for name, d in DEFINITIONS.items()]
    return "\n".join(rows)
