"""Jinshan deadline policy: accept / contact within 2 days, close within 7 natural days (cut from the
national 10 working days). Whether a period ending on a statutory holiday moves to the next working
day is configuration (``holiday_rollover``; Chinese law moves it, so the default is true)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from odr_plugin_api import DeadlineClock, DeadlinePlan, DeadlineRequest, Family, PluginInfo, Scope, hookimpl

NAME = "odr_jinshan_deadline"
VERSION = "1.0.0"


class JinshanDeadlineConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    contact_days: Annotated[int, msgspec.Meta(ge=1, le=30)] = 2
    """Natural days to accept the complaint and contact the consumer."""
    close_days: Annotated[int, msgspec.Meta(ge=1, le=60)] = 7
    """Natural days to close the case."""
    holiday_rollover: bool = True
    """A period ending on a statutory holiday (or a weekend that is no make-up day) moves to the next working day."""


@hookimpl
def odr_plugin_info() -> PluginInfo:
    return PluginInfo(
        name=NAME,
        version=VERSION,
        title="金山区ODR时限（2天联系/7个自然日办结） / Jinshan deadlines",
        description="Contact within 2 days, close within 7 natural days (Jinshan, Shanghai).",
        families=(Family.DEADLINE_POLICY,),
        config=JinshanDeadlineConfig,
    )


@hookimpl
def odr_deadline_policy(scope: Scope, request: DeadlineRequest) -> DeadlinePlan:
    cfg: JinshanDeadlineConfig = scope.config(NAME, JinshanDeadlineConfig())
    return DeadlinePlan(
        policy=NAME,
        version=VERSION,
        contact_days=cfg.contact_days,
        contact_clock=DeadlineClock.NATURAL_DAYS,
        close_days=cfg.close_days,
        close_clock=DeadlineClock.NATURAL_DAYS,
        holiday_rollover=cfg.holiday_rollover,
        legal_basis="上海市金山区电子商务ODR工作机制（2天内受理联系，7个自然日内办结）",
    )
