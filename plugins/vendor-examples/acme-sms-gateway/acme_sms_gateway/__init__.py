"""Example vendor SMS gateway (channel family): posts a template send request to the vendor's HTTP API.

Chinese SMS gateways send only pre-approved templates under a registered signature; the platform's
``SmsGatewayConfig`` holds the signature and the kind -> template id map, this plugin adds the vendor's
endpoint and credentials. The request body is JSON
``{"app_key", "phone", "sign_name", "template_id", "params", "out_id"}`` signed with
``X-Acme-Signature = HMAC-SHA256(app_secret, timestamp + "." + body)``; the gateway answers
``{"code": "OK", "message_id": ...}`` or an error code. ``out_id`` is the delivery's idempotency key.
"""

from __future__ import annotations

import time
from typing import Annotated

import msgspec

from odr_plugin_api import (
    API_VERSION,
    ChannelMessage,
    ChannelReceipt,
    DeliveryFailed,
    DestinationRefused,
    EndpointUrl,
    Family,
    Network,
    PluginInfo,
    Scope,
    Secret,
    SmsGatewayConfig,
    hookimpl,
    sms_request,
    webhook_signature,
)

NAME = "acme_sms_gateway"
VERSION = "1.0.0"


class AcmeSmsConfig(SmsGatewayConfig, kw_only=True, forbid_unknown_fields=True):
    endpoint: Annotated[EndpointUrl, msgspec.Meta(pattern=r"^https?://[^\s]+$")] = "https://sms.acme.invalid/sms/send"
    """The vendor's send API."""
    app_key: str = ""
    """Account key at the vendor."""
    app_secret: Secret = ""
    """Signing secret at the vendor (write-only: never shown once saved)."""
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 10.0
    """How long to wait for the gateway."""


class GatewayAnswer(msgspec.Struct, kw_only=True):
    code: str
    message_id: str = ""


@hookimpl
def odr_plugin_info() -> PluginInfo:
    return PluginInfo(
        name=NAME,
        version=VERSION,
        api_version=API_VERSION,
        title="Acme短信网关（示例） / Acme SMS gateway (example)",
        description="SMS by template id and parameters through the Acme gateway's HTTP API (a vendor example).",
        families=(Family.CHANNEL,),
        config=AcmeSmsConfig,
        address="phone",
    )


@hookimpl
def odr_channel_send(scope: Scope, message: ChannelMessage, net: Network) -> ChannelReceipt:
    cfg: AcmeSmsConfig = scope.config(NAME, AcmeSmsConfig())
    request = sms_request(message, cfg)
    if request is None:
        return ChannelReceipt(status="skipped", detail=f"no SMS template for {message.kind}")
    body = msgspec.json.encode({"app_key": cfg.app_key, **msgspec.to_builtins(request)})
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Acme-Timestamp": timestamp,
        "X-Acme-Signature": webhook_signature(cfg.app_secret, timestamp, body),
    }
    try:  # through the platform's checked client (net), never a connection of the plugin's own
        answer = net.request("POST", cfg.endpoint, body=body, headers=headers, timeout=cfg.timeout_seconds)
    except DestinationRefused:
        raise
    except (OSError, TimeoutError, ValueError) as exc:
        raise DeliveryFailed(f"gateway unreachable ({type(exc).__name__})") from None
    if not 200 <= answer.status < 300:
        raise DeliveryFailed(f"HTTP {answer.status}")
    raw = answer.body
    try:
        result = msgspec.json.decode(raw, type=GatewayAnswer)
    except msgspec.DecodeError:
        raise DeliveryFailed("gateway answer unreadable") from None
    if result.code != "OK":
        raise DeliveryFailed(f"gateway code {result.code[:40]}")
    return ChannelReceipt(status="sent", detail=result.message_id[:100])
