"""E-mail channel: sends each queued notification to the recipient's chosen address over SMTP.

Configuration per node (activated by the bureau like any policy plugin): the SMTP server, its security
(``none``, ``starttls`` or ``tls``), an optional login, and the sender. The message's ``Message-ID`` is
derived from the delivery's idempotency key and also sent as ``X-ODR-Idempotency-Key``, so a retried
delivery carries the same ids. Failures are raised as :class:`DeliveryFailed` naming the SMTP reply
code or the error type, never the address. The connection to the SMTP server is the platform's checked
one (``net.connect``): a host that resolves to an internal address is refused unless the operator
allows it (ODR_OUTBOUND_ALLOW_HOSTS).
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Annotated, Literal

import msgspec

from odr_plugin_api import (
    ChannelMessage,
    ChannelReceipt,
    DeliveryFailed,
    DestinationRefused,
    EndpointHost,
    Family,
    Network,
    PluginInfo,
    Scope,
    Secret,
    hookimpl,
)

NAME = "odr_email"
VERSION = "1.0.0"


class EmailConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: Annotated[EndpointHost, msgspec.Meta(min_length=1, max_length=255)] = "smtp.invalid"
    """SMTP server host (an internal address only when the operator allows it)."""
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 25
    """SMTP server port (25, 587 with STARTTLS, 465 with TLS)."""
    security: Literal["none", "starttls", "tls"] = "starttls"
    """Transport security: none, STARTTLS after connecting, or TLS from the start."""
    username: str = ""
    """SMTP login (empty: no AUTH)."""
    password: Secret = ""
    """SMTP password (write-only: never shown once saved)."""
    sender: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+$")] = "noreply@12315.invalid"
    """The From address."""
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=120)] = 15.0
    """Connection and command timeout."""


@hookimpl
def odr_plugin_info() -> PluginInfo:
    return PluginInfo(
        name=NAME,
        version=VERSION,
        title="电子邮件通知 / E-mail notifications",
        description="Deadline warnings, breaches and new cases by e-mail over SMTP, to each account's chosen address.",
        families=(Family.CHANNEL,),
        config=EmailConfig,
        address="email",
    )


def build_message(message: ChannelMessage, cfg: EmailConfig) -> EmailMessage:
    mail = EmailMessage()
    domain = cfg.sender.rsplit("@", 1)[1]
    digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
    mail["Subject"] = message.subject or message.kind
    mail["From"] = cfg.sender
    mail["To"] = message.address or ""
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = f"<{digest}@{domain}>"
    mail["X-ODR-Idempotency-Key"] = message.idempotency_key
    mail.set_content(message.text or message.subject or message.kind)
    return mail


def smtp_over(net: Network, cfg: EmailConfig) -> smtplib.SMTP:
    """An SMTP client (TLS from the start with ``security="tls"``) whose connection is ``net``'s checked one;
    TLS (and STARTTLS) still verify the certificate for ``cfg.host``."""

    class _Checked(smtplib.SMTP):
        def _get_socket(self, host, port, timeout):  # smtplib's one place that opens the connection
            return net.connect(host, port, timeout)

    class _CheckedTls(smtplib.SMTP_SSL, _Checked):  # SMTP_SSL wraps what _Checked opened
        pass

    if cfg.security == "tls":
        return _CheckedTls(cfg.host, cfg.port, timeout=cfg.timeout_seconds, context=ssl.create_default_context())
    return _Checked(cfg.host, cfg.port, timeout=cfg.timeout_seconds)


@hookimpl
def odr_channel_send(scope: Scope, message: ChannelMessage, net: Network) -> ChannelReceipt:
    cfg: EmailConfig = scope.config(NAME, EmailConfig())
    if not message.address:
        return ChannelReceipt(status="skipped", detail="no e-mail address")
    mail = build_message(message, cfg)
    try:
        smtp = smtp_over(net, cfg)
        with smtp:
            if cfg.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if cfg.username:
                smtp.login(cfg.username, cfg.password)
            refused = smtp.send_message(mail)
    except DestinationRefused:
        raise
    except smtplib.SMTPResponseException as exc:
        raise DeliveryFailed(f"SMTP {exc.smtp_code}") from None
    except smtplib.SMTPRecipientsRefused:
        raise DeliveryFailed("SMTP recipient refused") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryFailed(f"SMTP {type(exc).__name__}") from None
    if refused:
        raise DeliveryFailed("SMTP recipient refused")
    return ChannelReceipt(status="sent", detail=mail["Message-ID"])
