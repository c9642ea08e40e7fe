"""Jiangsu evaluation formula: points for outcome and for fewer complaints, deductions for untrue
feedback and breaches.

Jiangsu (seeds/000) publicises the enterprises with high settlement and satisfaction and removes those
that delay or report falsely; Fuzhou (seeds/003) aims at fewer complaints. The formula, in points:

- settlement: ``settlement_points`` (50) × settlement rate;
- satisfaction: ``satisfaction_points`` (30) × (rating − 1) / 4; with no rating (None) these points
  are carried by the settlement rate instead, i.e. settlement earns (50 + 30) × rate;
- complaint reduction: ``reduction_points`` (20) × min(1, cut / ``full_reduction_at``), where
  cut = (previous − current) / previous with current = ``handled`` and previous =
  ``complaints_previous_period``; a cut of 50 % or more earns all 20 points, more complaints earn 0
  (no deduction: more complaints routed through ODR is not in itself bad). Without a previous period
  (None or 0) the unit gets ``no_history_points`` (10);
- deductions: ``untrue_feedback_penalty`` (10) per untrue feedback found in a spot check,
  ``breach_penalty`` (2) per breached deadline.

score = clamp(sum, 0, 100), rounded to 2 decimals; ``parts`` holds each term (deductions negative), so
they add up to the score unless it was clamped. Deterministic. The point values are this plugin's
proposal (the seed gives none) and are configuration.
"""

from __future__ import annotations

import functools
from typing import Annotated

import msgspec

from odr_plugin_api import Family, Indicators, PluginInfo, Scope, ScoreResult, hookimpl
from odr_scoring_formulas import clamp01, satisfaction_scaled

NAME = "odr_jiangsu_score"
VERSION = "1.0.0"

Points = Annotated[float, msgspec.Meta(ge=0, le=100)]


class JiangsuScoreConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    settlement_points: Points = 50.0
    """Points for a settlement rate of 100 %."""
    satisfaction_points: Points = 30.0
    """Points for an average rating of 5."""
    reduction_points: Points = 20.0
    """Points for cutting complaints by ``full_reduction_at`` or more against the previous period."""
    full_reduction_at: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    """The relative cut that earns all reduction points (0.5 = half as many complaints)."""
    no_history_points: Points = 10.0
    """Reduction points for a unit without a previous period (at most ``reduction_points``)."""
    untrue_feedback_penalty: Points = 10.0
    """Deduction per untrue feedback found in a spot check."""
    breach_penalty: Points = 2.0
    """Deduction per breached deadline."""

    def __post_init__(self) -> None:
        if self.no_history_points > self.reduction_points:
            raise ValueError("no_history_points must not exceed reduction_points")
        if self.settlement_points + self.satisfaction_points <= 0:
            raise ValueError("settlement_points: settlement and satisfaction points must not both be 0")


def score(indicators: Indicators, cfg: JiangsuScoreConfig) -> ScoreResult:
    settlement = clamp01(indicators.settlement_rate) or 0.0
    satisfaction = satisfaction_scaled(indicators.satisfaction)
    parts: dict[str, float] = {}
    if satisfaction is None:
        parts["settlement_rate"] = (cfg.settlement_points + cfg.satisfaction_points) * settlement
    else:
        parts["settlement_rate"] = cfg.settlement_points * settlement
        parts["satisfaction"] = cfg.satisfaction_points * satisfaction
    previous = indicators.complaints_previous_period
    if not previous or previous < 0:
        parts["complaint_reduction"] = cfg.no_history_points
    else:
        cut = (previous - max(0, indicators.handled)) / previous
        parts["complaint_reduction"] = cfg.reduction_points * min(1.0, max(0.0, cut / cfg.full_reduction_at))
    parts["untrue_feedback"] = 0.0 - cfg.untrue_feedback_penalty * max(0, indicators.untrue_feedback_findings)
    parts["breaches"] = 0.0 - cfg.breach_penalty * max(0, indicators.breaches)
    value = min(100.0, max(0.0, sum(parts.values())))
    return ScoreResult(formula=NAME, version=VERSION, score=round(value, 2), parts={k: round(v, 2) for k, v in parts.items()})


@functools.cache
def _default_config() -> JiangsuScoreConfig:
    """The configuration where a bureau saved none (built once: scoring runs for every unit of a province)."""
    return JiangsuScoreConfig()


@hookimpl
def odr_plugin_info() -> PluginInfo:
    return PluginInfo(
        name=NAME,
        version=VERSION,
        title="江苏ODR评价（和解、满意、投诉下降；虚假反馈与超时扣分） / Jiangsu score",
        description="Settlement and satisfaction, a bonus for fewer complaints than the previous period, "
        "deductions for untrue feedback found in spot checks and for breaches.",
        families=(Family.SCORING,),
        config=JiangsuScoreConfig,
    )


@hookimpl
def odr_score_enterprise(scope: Scope, indicators: Indicators) -> ScoreResult:
    cfg = scope.config(NAME)
    return score(indicators, cfg if cfg is not None else _default_config())
