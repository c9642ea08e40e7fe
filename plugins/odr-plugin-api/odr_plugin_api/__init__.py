"""Public plugin API of the ODR platform.

A plugin is an importable module (or object) with functions marked ``@hookimpl`` whose names match the
hook specifications in :mod:`odr_plugin_api.hookspecs`. It is shipped as its own distribution with an
entry point in the ``odr.plugins`` group, and it describes itself through ``odr_plugin_info``.

Everything a plugin may rely on is exported here; anything else in the platform may change.
"""

from odr_plugin_api.markers import PROJECT_NAME, hookimpl, hookspec
from odr_plugin_api.types import (
    ClassificationResult,
    DayInfo,
    DeadlineClock,
    DeadlinePlan,
    DeadlineRequest,
    EnterpriseFacts,
    Family,
    Indicators,
    PluginInfo,
    Scope,
    ScoreResult,
)

__all__ = [
    "PROJECT_NAME",
    "ClassificationResult",
    "DayInfo",
    "DeadlineClock",
    "DeadlinePlan",
    "DeadlineRequest",
    "EnterpriseFacts",
    "Family",
    "Indicators",
    "PluginInfo",
    "Scope",
    "ScoreResult",
    "hookimpl",
    "hookspec",
]
