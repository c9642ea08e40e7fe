"""Signed webhook channel: POSTs each queued notification (and the case-event batches of a node's
event subscription) as JSON to the URL configured for the node.

Every request carries ``X-ODR-Timestamp`` (Unix seconds), ``X-ODR-Signature`` =
``sha256=HMAC-SHA256(secret, timestamp + "." + body)`` (see ``odr_plugin_api.verify_webhook``) and
``Idempotency-Key`` (equal for every retry of one delivery). A 2xx answer is a delivery; anything else,
a timeout or a refused connection is raised as :class:`DeliveryFailed` and retried by the platform
with back-off, then dead-lettered. Requests go through the platform's checked client (``net``): a URL
that resolves to an internal address is refused (dead-lettered at once) unless the operator allows it.
"""

from __future__ import annotations

import time
from typing import Annotated

import msgspec

from odr_plugin_api import (
    ChannelMessage,
    ChannelReceipt,
    DeliveryFailed,
    DestinationRefused,
    EndpointUrl,
    Family,
    HttpAnswer,
    Network,
    PluginInfo,
    Scope,
    Secret,
    hookimpl,
    webhook_signature,
)
from odr_plugin_api.channels import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

NAME = "odr_webhook"
VERSION = "1.0.0"


class WebhookConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[EndpointUrl, msgspec.Meta(pattern=r"^https?://[^\s]+$", max_length=2000)] = "https://receiver.invalid/odr"
    """Where to POST (the bureau system's receiver; an internal address only when the operator allows it)."""
    secret: Annotated[Secret, msgspec.Meta(max_length=200)] = ""
    """HMAC-SHA256 key shared with the receiver (empty: requests are signed with an empty key; set one)."""
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 10.0
    """How long to wait for the receiver's answer."""
    kinds: list[str] = []
    """Notification kinds to send (empty: all). Case-event batches of the node's subscription are always sent."""


class WebhookBody(msgspec.Struct, frozen=True, kw_only=True):
    """The JSON body of a webhook request."""

    idempotency_key: str
    tenant: str
    node: str
    recipient: str
    kind: str
    text: str
    payload: dict
    attempt: int
    created_at: str | None


@hookimpl
def odr_plugin_info() -> PluginInfo:
    return PluginInfo(
        name=NAME,
        version=VERSION,
        title="签名Webhook / Signed webhook",
        description="Notifications and case-event batches as signed JSON POSTs (HMAC-SHA256) to the bureau's system.",
        families=(Family.CHANNEL,),
        config=WebhookConfig,
    )


class WebhookRequest(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    body: bytes
    headers: dict[str, str]


def request_for(message: ChannelMessage, cfg: WebhookConfig, now: float | None = None) -> WebhookRequest:
    body = msgspec.json.encode(WebhookBody(
        idempotency_key=message.idempotency_key, tenant=message.tenant, node=message.node,
        recipient=message.recipient, kind=message.kind, text=message.text, payload=message.payload,
        attempt=message.attempt, created_at=message.created_at.isoformat() if message.created_at else None,
    ))
    timestamp = str(int(time.time() if now is None else now))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: webhook_signature(cfg.secret, timestamp, body),
        IDEMPOTENCY_HEADER: message.idempotency_key,
        "User-Agent": f"odr-webhook/{VERSION}",
    }
    return WebhookRequest(url=cfg.url, body=body, headers=headers)


@hookimpl
def odr_channel_send(scope: Scope, message: ChannelMessage, net: Network) -> ChannelReceipt:
    cfg: WebhookConfig = scope.config(NAME, WebhookConfig())
    if cfg.kinds and message.kind != "case_events" and message.kind not in cfg.kinds:
        return ChannelReceipt(status="skipped", detail=f"kind {message.kind} not subscribed")
    request = request_for(message, cfg)
    try:
        answer: HttpAnswer = net.request("POST", request.url, body=request.body, headers=request.headers,
                                         timeout=cfg.timeout_seconds)
    except DestinationRefused:
        raise
    except (OSError, TimeoutError, ValueError) as exc:
        raise DeliveryFailed(f"connection failed ({type(exc).__name__})") from None
    status = answer.status
    if not 200 <= status < 300:
        raise DeliveryFailed(f"HTTP {status}")
    return ChannelReceipt(status="sent", detail=f"HTTP {status}")
