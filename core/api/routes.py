"""The core's HTTP surface: every core area's route handlers, as one list the composition root mounts.

Contract: :func:`route_handlers` returns the health check, the login (behind the per-address login
rate limit, store ``rate_limit``), the consumer sign-up (behind its per-address and per-province
limits, :mod:`core.api.rate_limits`) and the controllers of every core area (policy, notifications,
complaints, deadlines, enterprises, policy replay, reports, evaluation, imports, notification channels
and deliveries, the case-events feed), public ones included. It
knows neither the console (``admin_ui``) nor the tenancy layer's endpoints (``tenants.api``): the
composition root (:mod:`odr.app`) mounts those beside it.
"""

from __future__ import annotations

from litestar import Router

from core.api.auth import AuthController
from core.api.health import health
from core.api.policy import PolicyController
from core.api.rate_limits import login_limit, signup_limits
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
SIGNUP_SUFFIX = "/consumers"  # POST /public/{tenant}/consumers


def route_handlers(settings: Settings) -> list:
    """The core API's route handlers; the login and the consumer sign-up behind their rate limits
    (:mod:`core.api.rate_limits`)."""
    return [
        health,
        Router(path="/", route_handlers=[AuthController],
               middleware=login_limit(settings, lambda request: request.url.path == LOGIN_PATH)),
        Router(path="/", route_handlers=[PublicConsumerController],
               middleware=signup_limits(settings, lambda request: request.method == "POST"
                                        and request.url.path.endswith(SIGNUP_SUFFIX))),
        PolicyController, NotificationController, ComplaintController, DeadlinesController,
        EnterpriseController, PublicEnterpriseController, PolicyReplayController, ReportController,
        CoverageTargetController, EvaluationController, PublicEvaluationController, ImportController,
        ChannelPreferenceController, DeliveryController,
    ]
