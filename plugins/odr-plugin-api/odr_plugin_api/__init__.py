"""Public plugin API of the ODR platform.

A plugin is an importable module (or object) with functions marked ``@hookimpl`` whose names match the
hook specifications in :mod:`odr_plugin_api.hookspecs`. It is shipped as its own distribution with an
entry point in the ``odr.plugins`` group, and it describes itself through ``odr_plugin_info``.

Everything a plugin may rely on is exported here; anything else in the platform may change.
"""

from odr_plugin_api.channels import (
    ChannelMessage,
    ChannelReceipt,
    DeliveryFailed,
    SmsGatewayConfig,
    SmsRequest,
    sms_request,
    verify_webhook,
    webhook_signature,
)
from odr_plugin_api.markers import PROJECT_NAME, hookimpl, hookspec
from odr_plugin_api.contracts import ContractViolation, check_answer
from odr_plugin_api.net import DestinationRefused, EndpointHost, EndpointUrl, HttpAnswer, Network
from odr_plugin_api.secrets import SECRET_MASK, Secret
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
from odr_plugin_api.versioning import API_VERSION

__version__ = API_VERSION
"""The distribution's version (semantic versioning; CHANGELOG.md says what each version changed)."""

__all__ = [
    "API_VERSION",
    "ContractViolation",
    "check_answer",
    "PROJECT_NAME",
    "SECRET_MASK",
    "Secret",
    "ChannelMessage",
    "ChannelReceipt",
    "DeliveryFailed",
    "DestinationRefused",
    "EndpointHost",
    "EndpointUrl",
    "HttpAnswer",
    "Network",
    "SmsGatewayConfig",
    "SmsRequest",
    "sms_request",
    "verify_webhook",
    "webhook_signature",
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
