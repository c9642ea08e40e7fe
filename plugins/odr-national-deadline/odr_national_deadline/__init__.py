"""National 2018 deadline policy (default of the ``deadline_policy`` family).

Interim Measures for ODR Enterprises on the National 12315 Internet Platform (2018): contact the
consumer within 3 working days (Art. 12), settle within 10 working days (Art. 13).
"""

from __future__ import annotations

from odr_plugin_api import DeadlineClock, DeadlinePlan, DeadlineRequest, Family, PluginInfo, Scope, hookimpl

NAME = "odr_national_deadline"
VERSION = "1.0.0"


@hookimpl
def odr_plugin_info() -> PluginInfo:
    return PluginInfo(
        name=NAME,
        version=VERSION,
        title="全国12315平台ODR暂行办法时限 / National 2018 ODR deadlines",
        description="3 working days to contact (Art. 12), 10 working days to settle (Art. 13).",
        families=(Family.DEADLINE_POLICY,),
        default=True,
    )


@hookimpl(trylast=True)
def odr_deadline_policy(scope: Scope, request: DeadlineRequest) -> DeadlinePlan:
    return DeadlinePlan(
        policy=NAME,
        version=VERSION,
        contact_days=3,
        contact_clock=DeadlineClock.WORKING_DAYS,
        close_days=10,
        close_clock=DeadlineClock.WORKING_DAYS,
        holiday_rollover=False,
        legal_basis="全国12315互联网平台在线消费纠纷解决企业管理暂行办法 第十二条、第十三条",
    )
