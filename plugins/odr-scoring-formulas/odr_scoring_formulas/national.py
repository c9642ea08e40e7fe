"""National evaluation formula: the Art. 20 indicators, weighted per enterprise class.

Art. 20 of the national interim measures (2018) asks each province to evaluate ODR enterprises "by
enterprise type and scale" on indicators such as settlement rate (和解率), consumer satisfaction (满意度)
and handling cycle (处理周期); the deadline articles (Art. 12 contact, Art. 13 settle) add the on-time
rates. Each indicator is mapped to 0..1:

- ``settlement_rate``, ``on_time_contact_rate``, ``on_time_close_rate``: the rate itself (clamped to 0..1);
- ``satisfaction``: the 1..5 rating, (s - 1) / 4;
- ``handling_cycle``: 1 at or below ``cycle_full_marks_days`` (3), 0 at or above ``cycle_zero_days`` (10),
  linear in between (shorter is better).

score = 100 * Σ wᵢ·vᵢ / Σ wᵢ over the *available* indicators: a missing satisfaction or cycle (None)
drops out and the remaining weights are re-normalised. The weights come from ``weights[class]`` for the
indicators' ``enterprise_class`` (e.g. "A" or "large"), else ``weights["default"]``. ``parts`` gives each
indicator's weighted contribution in points (they add up to the score, up to rounding to 2 decimals).
If every available indicator has weight 0 the formula cannot score and answers None. Deterministic.

Default weights (this plugin's proposal; the measures fix none): default 35/25/15/10/15 (settlement,
satisfaction, cycle, on-time contact, on-time close); large-volume classes ("A", "large") 30/20/20/15/15,
timeliness counting more where many complaints arrive; small classes ("C", "small", "micro")
40/30/10/10/10, the outcome for the consumer counting more.
"""

from __future__ import annotations

import functools
from typing import Annotated

import msgspec

from odr_plugin_api import Family, Indicators, PluginInfo, Scope, ScoreResult, hookimpl
from odr_scoring_formulas import clamp01, satisfaction_scaled

NAME = "odr_national_score"
VERSION = "1.0.0"
INDICATORS = ("settlement_rate", "satisfaction", "handling_cycle", "on_time_contact_rate", "on_time_close_rate")

Weight = Annotated[float, msgspec.Meta(ge=0, le=100)]
ClassCode = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class Weights(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Relative weights (only their ratios matter)."""

    settlement_rate: Weight = 0.35
    satisfaction: Weight = 0.25
    handling_cycle: Weight = 0.15
    on_time_contact_rate: Weight = 0.10
    on_time_close_rate: Weight = 0.15

    def __post_init__(self) -> None:
        if sum(getattr(self, i) for i in INDICATORS) <= 0:
            raise ValueError("weights: at least one weight must be positive")


LARGE = Weights(settlement_rate=0.30, satisfaction=0.20, handling_cycle=0.20, on_time_contact_rate=0.15, on_time_close_rate=0.15)
SMALL = Weights(settlement_rate=0.40, satisfaction=0.30, handling_cycle=0.10, on_time_contact_rate=0.10, on_time_close_rate=0.10)


def default_weights() -> dict[str, Weights]:
    return {"default": Weights(), "A": LARGE, "large": LARGE, "C": SMALL, "small": SMALL, "micro": SMALL}


class NationalScoreConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    weights: Annotated[dict[ClassCode, Weights], msgspec.Meta(min_length=1, max_length=50)] = msgspec.field(
        default_factory=default_weights
    )
    """Weights per enterprise class code; ``default`` (required) for any other class."""
    cycle_full_marks_days: Annotated[float, msgspec.Meta(ge=0, le=60)] = 3.0
    """Average handling cycle (days) at or below which the cycle indicator is 1."""
    cycle_zero_days: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0
    """Average handling cycle (days) at or above which the cycle indicator is 0."""

    def __post_init__(self) -> None:
        if "default" not in self.weights:
            raise ValueError('weights: a "default" entry is required')
        if self.cycle_full_marks_days >= self.cycle_zero_days:
            raise ValueError("cycle_full_marks_days must be below cycle_zero_days")


def cycle_value(days: float | None, cfg: NationalScoreConfig) -> float | None:
    if days is None or days != days:  # None or NaN
        return None
    if days <= cfg.cycle_full_marks_days:
        return 1.0
    if days >= cfg.cycle_zero_days:
        return 0.0
    return (cfg.cycle_zero_days - days) / (cfg.cycle_zero_days - cfg.cycle_full_marks_days)


def score(indicators: Indicators, cfg: NationalScoreConfig) -> ScoreResult | None:
    weights = cfg.weights.get(indicators.enterprise_class or "", cfg.weights["default"])
    values = {
        "settlement_rate": clamp01(indicators.settlement_rate) or 0.0,
        "satisfaction": satisfaction_scaled(indicators.satisfaction),
        "handling_cycle": cycle_value(indicators.avg_cycle_days, cfg),
        "on_time_contact_rate": clamp01(indicators.on_time_contact_rate) or 0.0,
        "on_time_close_rate": clamp01(indicators.on_time_close_rate) or 0.0,
    }
    available = [i for i in INDICATORS if values[i] is not None]
    total = sum(getattr(weights, i) for i in available)
    if total <= 0:
        return None
    contributions = {i: 100.0 * getattr(weights, i) * values[i] / total for i in available}
    value = min(100.0, max(0.0, sum(contributions.values())))
    return ScoreResult(
        formula=NAME,
        version=VERSION,
        score=round(value, 2),
        parts={i: round(c, 2) for i, c in contributions.items()},
    )


@functools.cache
def _default_config() -> NationalScoreConfig:
    """The configuration where a bureau saved none (built once: scoring runs for every unit of a province)."""
    return NationalScoreConfig()


@hookimpl
def odr_plugin_info() -> PluginInfo:
    return PluginInfo(
        name=NAME,
        version=VERSION,
        title="全国ODR效能评价（和解率、满意度、处理周期、按时联系/办结率） / National Art. 20 score",
        description="Settlement rate, satisfaction, handling cycle, on-time contact and close rates, weighted per enterprise class.",
        families=(Family.SCORING,),
        config=NationalScoreConfig,
    )


@hookimpl
def odr_score_enterprise(scope: Scope, indicators: Indicators) -> ScoreResult | None:
    cfg = scope.config(NAME)
    return score(indicators, cfg if cfg is not None else _default_config())
