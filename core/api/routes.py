"""The core's HTTP surface: every core area's route handlers, as one list the composition root mounts.

Contract: :func:`route_handlers` returns the health check, the login (behind the per-address login
rate limit, store ``rate_limit``) and the controllers of every core area (policy, notifications,
complaints, deadlines, enterprises, policy replay, reports, evaluation, imports, notification channels
and deliveries, the case-events feed), public ones included. It
knows neither the console (``admin_ui``) nor the tenancy layer's endpoints (``tenants.api``): the
composition root (:mod:`odr.app`) mounts those beside it.
"""

from __future__ import annotations

from litestar import Router
from litestar.middleware.rate_limit import RateLimitConfig

from core.api.auth import AuthController
from core.api.health import health
from core.api.policy import PolicyController
from core.complaints.api import ComplaintController, PublicConsumerController
from core.deadlines.api import DeadlinesController
from core.enterprises.api import EnterpriseController, PublicEnterpriseController
from core.evaluation.api import EvaluationController, PublicEvaluationController
from core.imports.api import ImportController
from core.notifications.api import NotificationController
from core.notifications.delivery_api import ChannelPreferenceController, DeliveryController
from core.policy_replay.api import PolicyReplayController
from core.reports.api import CoverageTargetController, ReportController
from core.settings import Settings

LOGIN_PATH = "/api/auth/login"


def route_handlers(settings: Settings) -> list:
    """The core API's route handlers; the login limited to ``ODR_LOGIN_RATE_PER_MINUTE`` per address."""
    rate_limit = RateLimitConfig(
        rate_limit=("minute", settings.login_rate_per_minute),
        check_throttle_handler=lambda request: request.url.path == LOGIN_PATH,
        store="rate_limit",
    )
    return [
        health,
        Router(path="/", route_handlers=[AuthController], middleware=[rate_limit.middleware]),
        PolicyController, NotificationController, ComplaintController, PublicConsumerController, DeadlinesController,
        EnterpriseController, PublicEnterpriseController, PolicyReplayController, ReportController,
        CoverageTargetController, EvaluationController, PublicEvaluationController, ImportController,
        ChannelPreferenceController, DeliveryController,
    ]
