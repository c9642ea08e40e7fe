"""Built-in default of the ``standing_check`` family (Art. 9): no source connected, check manually.

The platform asks this family, before an ODR unit is approved, whether the company is on the
abnormal-operations list (经营异常名录) or a blacklist. No such register is connected by default, so the
honest answer is ``unknown``: the reviewing bureau must check by hand. A province that connects its
register installs and activates its own plugin, which overrides this one (registered ``trylast``).
"""

from __future__ import annotations

from odr_plugin_api import Family, PluginInfo, Scope, hookimpl

NAME = "odr_builtin_standing"
VERSION = "1.0.0"


@hookimpl
def odr_plugin_info() -> PluginInfo:
    return PluginInfo(
        name=NAME,
        version=VERSION,
        title="未接入经营异常名录 / No standing source connected",
        description="Answers 'unknown' for every company: the reviewer checks the abnormal-operations list"
        " and blacklists manually (Art. 9).",
        families=(Family.STANDING_CHECK,),
        default=True,
    )


@hookimpl(trylast=True)
def odr_check_enterprise_standing(scope: Scope, credit_code: str) -> dict:
    return {
        "status": "unknown",
        "detail": "no abnormal-operations/blacklist source is connected; check manually",
        "source": NAME,
    }
