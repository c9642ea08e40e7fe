"""Delivery channels (family ``channel``): what the platform hands a channel plugin and what it expects.

The platform queues one delivery per (notification, channel, recipient) in PostgreSQL and calls the
channel's ``odr_channel_send`` from a worker, outside any request. A delivery is retried with
exponential back-off until the channel returns a :class:`ChannelReceipt` or it has failed the
configured number of times (then it is dead-lettered for the bureau to see). Delivery is
at-least-once: receivers deduplicate on :attr:`ChannelMessage.idempotency_key`.

Personal data: ``subject``, ``text`` and ``params`` carry no consumer's personal data (the platform
composes them from the complaint number, milestone and due moment); ``address`` is the recipient's own
e-mail address or phone. Channels must not log ``address`` or put it in a :class:`DeliveryFailed`
reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Annotated, Any

import msgspec

SIGNATURE_HEADER = "X-ODR-Signature"
TIMESTAMP_HEADER = "X-ODR-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class ChannelMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One delivery to make.

    - ``idempotency_key``: equal for every attempt of the same (notification, channel, recipient);
      put it where the receiver can deduplicate on it (a header, a Message-ID, a gateway's out-id).
    - ``recipient``: the platform's recipient (``account:<id>``, ``enterprise:<id>``, ``node:<code>``,
      ``subscription:<id>`` for a case-events batch).
    - ``address``: e-mail address or phone for channels that declared one (``PluginInfo.address``);
      None for endpoint channels, whose configuration names the endpoint.
    - ``kind``: the notification kind (``deadline_warning``, ``deadline_breached``, ``new_case``, …;
      ``case_events`` for an event-feed batch); ``payload``: the notification's payload (never a
      consumer's personal data) or, for ``case_events``, ``{"events": [...], "next": cursor}``.
    - ``params``: the text's variables (complaint number, milestone, due moment) as strings, for
      template-based gateways.
    """

    idempotency_key: str
    tenant: str
    node: str
    recipient: str
    address: str | None = None
    kind: str
    subject: str = ""
    text: str = ""
    params: dict[str, str] = {}
    payload: dict[str, Any] = {}
    attempt: int = 1
    created_at: dt.datetime | None = None


class ChannelReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """A channel's answer: the message was accepted (``"sent"``) or deliberately not sent
    (``"skipped"``, e.g. no SMS template for this kind). ``detail`` is shown to the bureau (no
    personal data: a gateway's message id, an HTTP status)."""

    status: str = "sent"
    detail: str = ""


class DeliveryFailed(Exception):
    """Raised by a channel for a failure worth retrying; ``str(exc)`` is stored and shown to the bureau,
    so it must hold no personal data (say ``"HTTP 503"``, not the address). Any other exception is
    retried too, recorded by its type only."""


# -- signed webhooks ---------------------------------------------------------------------------------
def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp`` + ``"."`` + ``body`` with ``secret``, as ``"sha256=<hex>"``: the
    value of the :data:`SIGNATURE_HEADER` sent with :data:`TIMESTAMP_HEADER` = ``timestamp`` (Unix
    seconds)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook(secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None,
                   tolerance: float = 300.0) -> bool:
    """A receiver's check: the signature matches and the timestamp is within ``tolerance`` seconds of
    ``now`` (replay protection)."""
    import time

    try:
        age = abs((time.time() if now is None else now) - float(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(webhook_signature(secret, timestamp, body), signature)


# -- SMS gateways --------------------------------------------------------------------------------------
class SmsGatewayConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base configuration of an SMS gateway plugin (Chinese gateways send only pre-approved templates
    with a registered signature): subclass it and add the vendor's endpoint and credentials."""

    sign_name: Annotated[str, msgspec.Meta(max_length=20)] = "12315"
    """The registered SMS signature (签名), shown as 【…】 in front of the message."""
    templates: dict[str, str] = {}
    """Notification kind -> the gateway's approved template id (e.g. ``deadline_breached`` ->
    ``SMS_123456``); kinds without a template are not sent by SMS (skipped, not failed)."""


class SmsRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What a template-based gateway needs: phone, signature, template id and the template's
    parameters (all strings)."""

    phone: str
    sign_name: str
    template_id: str
    params: dict[str, str]
    out_id: str
    """The delivery's idempotency key, for the gateway's own deduplication (外部流水号)."""


def sms_request(message: ChannelMessage, config: SmsGatewayConfig) -> SmsRequest | None:
    """The :class:`SmsRequest` for ``message`` under ``config``, or None when the kind has no template
    (or the message has no phone)."""
    template = config.templates.get(message.kind)
    if not template or not message.address:
        return None
    return SmsRequest(phone=message.address, sign_name=config.sign_name, template_id=template,
                      params=dict(message.params), out_id=message.idempotency_key)
