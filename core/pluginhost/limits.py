"""The limits every plugin call runs under: time budgets per hook family, the circuit breaker's
thresholds and the isolated workers' resource limits (all from settings, ``ODR_PLUGIN_*``).

Contract: :meth:`PluginLimits.budget` is the wall-clock budget of one call of a hook, in seconds;
hooks that talk to the outside world (a channel's send, a notification, a standing check against a
registry) get the longer ``send_budget_ms``, every policy hook (calendar, deadline policy,
classification, scoring) ``budget_ms``.
"""

from __future__ import annotations

import msgspec

from odr_plugin_api import Family

NETWORK_HOOKS = frozenset({"odr_channel_send", "odr_notify", "odr_check_enterprise_standing"})
"""Hooks whose plugins may need the network (through the host's client) and a longer budget."""
NETWORK_FAMILIES = frozenset({Family.CHANNEL, Family.NOTIFICATION, Family.STANDING_CHECK})
"""Families whose isolated workers keep network access; every other isolated worker has none."""


class PluginLimits(msgspec.Struct, frozen=True, kw_only=True):
    budget_ms: float = 250.0
    """Budget of one policy hook call (calendar day, deadline policy, classification, scoring)."""
    send_budget_ms: float = 10_000.0
    """Budget of one call of a hook in :data:`NETWORK_HOOKS`."""
    breaker_failures: int = 5
    """Failures or overruns of one plugin at one node within ``breaker_window_seconds`` that open its breaker."""
    breaker_window_seconds: float = 60.0
    breaker_cooldown_seconds: float = 30.0
    """How long an open breaker skips the plugin before one trial call (half-open)."""
    worker_memory_mb: int = 1024
    """RLIMIT_AS of an isolated worker process."""
    worker_cpu_seconds: int = 600
    """RLIMIT_CPU of an isolated worker process over its life (then it is killed and restarted)."""
    worker_start_seconds: float = 10.0
    """How long an isolated worker may take to start and load its plugin."""

    net_allow: tuple[str, ...] = ()
    """ODR_OUTBOUND_ALLOW_HOSTS, for the ``net`` client of isolated channel plugins."""

    def budget(self, hook: str) -> float:
        """The wall-clock budget of one call of ``hook``, in seconds."""
        return (self.send_budget_ms if hook in NETWORK_HOOKS else self.budget_ms) / 1000.0

    @classmethod
    def from_settings(cls, settings) -> "PluginLimits":
        return cls(
            budget_ms=settings.plugin_budget_ms,
            send_budget_ms=settings.plugin_send_budget_ms,
            breaker_failures=settings.plugin_breaker_failures,
            breaker_window_seconds=settings.plugin_breaker_window_seconds,
            breaker_cooldown_seconds=settings.plugin_breaker_cooldown_seconds,
            worker_memory_mb=settings.plugin_worker_memory_mb,
            worker_cpu_seconds=settings.plugin_worker_cpu_seconds,
            net_allow=tuple(h.strip() for h in (settings.outbound_allow_hosts or "").split(",") if h.strip()),
        )
