"""Isolated worker processes for plugins from outside the platform's own distributions.

The supervisor and the worker are the plugin API's (:mod:`odr_plugin_api.sandbox`,
:mod:`odr_plugin_api.sandbox_worker`), so that the vendor kit runs a vendor's plugin exactly as the
platform does; this module makes a plugin's worker under the platform's settings
(:class:`~core.pluginhost.limits.PluginLimits`). See :mod:`odr_plugin_api.sandbox` for the contract:
clean environment (no ``ODR_*`` variable, no database URL), scratch directory, RLIMIT_AS/RLIMIT_CPU,
no network for policy families, killed on overrun and started again.
"""

from __future__ import annotations

from core.pluginhost.limits import PluginLimits
from odr_plugin_api.sandbox import IsolatedWorker, PluginOverrun, WorkerDied

__all__ = ["IsolatedWorker", "PluginOverrun", "WorkerDied", "worker_for"]


def worker_for(plugin: str, target: str, limits: PluginLimits, *, deny_network: bool) -> IsolatedWorker:
    """The (not yet started) worker of ``plugin``, imported from ``target``, under ``limits``."""
    return IsolatedWorker(plugin, target, deny_network=deny_network, memory_mb=limits.worker_memory_mb,
                          cpu_seconds=limits.worker_cpu_seconds, start_seconds=limits.worker_start_seconds,
                          net_allow=limits.net_allow)
