"""Outbound network access of channel plugins: the platform's checked client, handed to the hook.

A channel plugin never opens a connection of its own. ``odr_channel_send`` receives ``net`` (a
:class:`Network`, the platform's host-side client) and makes every request through it:

- :meth:`Network.request` for HTTP(S): the host name is resolved, every address is checked, and the
  connection goes to the checked address (no second lookup an attacker's DNS could answer
  differently); TLS still verifies the certificate for the host name. Redirects are followed (at most
  a few), each one resolved and checked again.
- :meth:`Network.connect` for any other protocol (SMTP): a connected TCP socket to a checked address
  of ``host``; wrap it in TLS yourself with ``server_hostname=host``.

Refused are destinations that resolve to an address inside the platform's own network: loopback,
link-local (169.254.0.0/16, among them cloud metadata at 169.254.169.254), private (RFC 1918, fc00::/7),
shared (100.64.0.0/10), unspecified, multicast, reserved, and IPv6 forms embedding such an IPv4 address
(IPv4-mapped, 6to4, NAT64) — unless the operator allows that host by name (ODR_OUTBOUND_ALLOW_HOSTS).
A refusal raises :class:`DestinationRefused`: let it propagate (the delivery is then dead-lettered at
once with its reason, never retried, since retrying cannot help).

Configuration fields that name a destination are marked :data:`EndpointUrl` (a URL) or
:data:`EndpointHost` (a host name; the port is the config's top-level ``port`` field when it has one):
the platform then refuses, with 400 naming the field, to save a configuration whose destination
resolves to a refused address at that moment.
"""

from __future__ import annotations

import socket
from typing import Annotated, Any, Protocol

import msgspec
import msgspec.inspect as mi

from odr_plugin_api.channels import DeliveryFailed


class DestinationRefused(DeliveryFailed):
    """The destination resolves to an address the platform does not send to (see the module docs);
    ``str(exc)`` names the host and why. Not retried: the delivery is dead-lettered at once."""


class HttpAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """A receiver's answer: status, headers (names lower-case) and at most the first 64 KiB of the body."""

    status: int
    headers: dict[str, str] = {}
    body: bytes = b""


class Network(Protocol):
    """The platform's outbound client, passed to ``odr_channel_send`` as ``net``."""

    def request(self, method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 10.0) -> HttpAnswer:
        """Send one HTTP(S) request to a checked destination and return the answer (any status);
        :class:`DestinationRefused` for a refused destination (or redirect), ``OSError`` /
        ``TimeoutError`` when the connection fails."""
        ...

    def connect(self, host: str, port: int, timeout: float = 10.0) -> socket.socket:
        """A TCP connection to a checked address of ``host``; :class:`DestinationRefused` or ``OSError``."""
        ...


EndpointUrl = Annotated[str, msgspec.Meta(extra={"endpoint": "url"})]
"""A configuration field holding a URL the plugin sends to (checked when the configuration is saved)."""
EndpointHost = Annotated[str, msgspec.Meta(extra={"endpoint": "host"})]
"""A configuration field holding a host the plugin connects to (with the config's ``port``, if any)."""


def _endpoint(t: Any) -> str | None:
    if isinstance(t, mi.Metadata):
        return (t.extra or {}).get("endpoint") or _endpoint(t.type)
    if isinstance(t, mi.UnionType):
        return next((kind for x in t.types if (kind := _endpoint(x))), None)
    return None


_FIELDS: dict[type, dict[str, str]] = {}


def endpoint_fields(config_type: type | None) -> dict[str, str]:
    """Top-level fields of ``config_type`` marked :data:`EndpointUrl` / :data:`EndpointHost`:
    encoded name -> ``"url"`` or ``"host"``."""
    if config_type is None:
        return {}
    found = _FIELDS.get(config_type)
    if found is None:
        fields = getattr(mi.type_info(config_type), "fields", ())
        found = _FIELDS[config_type] = {f.encode_name: kind for f in fields if (kind := _endpoint(f.type))}
    return found
