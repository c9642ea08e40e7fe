"""Evaluation formulas for ODR units (Art. 20), each a plugin of its own entry point: the national
indicator set with weights per enterprise class (:mod:`odr_scoring_formulas.national`,
``odr_national_score``) and Jiangsu's formula (:mod:`odr_scoring_formulas.jiangsu`, ``odr_jiangsu_score``)."""

from __future__ import annotations

import math

from odr_plugin_api.indicators import satisfaction_share


def clamp01(x: float | None) -> float | None:
    """``x`` clamped to 0..1; None (and NaN) stays None."""
    if x is None or math.isnan(x):
        return None
    return min(1.0, max(0.0, x))


satisfaction_scaled = satisfaction_share
"""Consumer rating 1..5 mapped linearly to 0..1 (1 -> 0, 5 -> 1): the plugin API's definition."""
