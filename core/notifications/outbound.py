"""The platform's outbound network client: every request a channel plugin makes goes through it.

Contract (the plugin-side view is :mod:`odr_plugin_api.net`):
- :class:`Outbound` (the checked client of :mod:`odr_plugin_api.net_client`, its checks described
  there) is built once per process from ODR_OUTBOUND_ALLOW_HOSTS (:meth:`Outbound.from_settings`)
  and handed to ``odr_channel_send`` as ``net`` by the delivery worker. It is plain blocking code,
  called in the worker's thread pool (never on the event loop) and safe to share between threads.
- :func:`check_config` is the save-time check of a channel configuration: each field marked
  ``EndpointUrl`` / ``EndpointHost`` whose host resolves now to a refused address raises
  ``msgspec.ValidationError`` at that field (so the API answers 400 naming it); a host that does not
  resolve at save time is accepted (the delivery checks again).

An isolated channel plugin (run in another process) is given the same client, built there from the
same allow-list (:mod:`odr_plugin_api.sandbox_worker`).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import msgspec

from odr_plugin_api.net import DestinationRefused, endpoint_fields
from odr_plugin_api.net_client import CheckedNetwork, refused_kind  # noqa: F401 (refused_kind re-exported)

SAVE_RESOLVE_SECONDS = 3.0
"""How long the save-time check waits for DNS before accepting the configuration unchecked."""


class Outbound(CheckedNetwork):
    """The platform's checked client, from the settings."""

    @classmethod
    def from_settings(cls, settings: Any) -> "Outbound":
        return cls(frozenset((settings.outbound_allow_hosts or "").split(",")))


def _destination(kind: str, value: str, config: dict[str, Any]) -> tuple[str, int] | None:
    if kind == "url":
        try:
            parts = urlsplit(value)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return None
        return (parts.hostname, port) if parts.hostname else None
    port = config.get("port")
    return (value, port if isinstance(port, int) else 0) if value else None


async def check_config(outbound: Outbound, config_type: type | None, config: Any) -> None:
    """The save-time check of a decoded channel configuration (see the module docs)."""
    fields = endpoint_fields(config_type)
    if not fields or config is None:
        return
    values = msgspec.to_builtins(config)
    loop = asyncio.get_running_loop()
    for name, kind in fields.items():
        value = values.get(name)
        target = _destination(kind, value, values) if isinstance(value, str) else None
        if target is None:
            continue
        host, port = target
        try:
            await asyncio.wait_for(loop.run_in_executor(None, outbound.resolve, host, port), SAVE_RESOLVE_SECONDS)
        except DestinationRefused as exc:
            raise msgspec.ValidationError(f"{exc} - at `$.{name}`") from None
        except (OSError, asyncio.TimeoutError, ValueError):  # UnicodeError too
            continue  # not resolvable now: the delivery checks again
