"""Evaluation formulas for ODR units (Art. 20), each a plugin of its own entry point: the national
indicator set with weights per enterprise class (:mod:`odr_scoring_formulas.national`,
``odr_national_score``) and Jiangsu's formula (:mod:`odr_scoring_formulas.jiangsu`, ``odr_jiangsu_score``)."""

from __future__ import annotations

import math


def clamp01(x: float | None) -> float | None:
    """``x`` clamped to 0..1; None (and NaN) stays None."""
    if x is None or math.isnan(x):
        return None
    return min(1.0, max(0.0, x))


def satisfaction_scaled(s: float | None) -> float | None:
    """Consumer rating 1..5 mapped linearly to 0..1 (1 -> 0, 5 -> 1)."""
    if s is None or math.isnan(s):
        return None
    return min(1.0, max(0.0, (s - 1.0) / 4.0))
