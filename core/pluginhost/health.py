"""Per plugin, per jurisdiction node: failures, overruns and a circuit breaker (in this process).

Contract:
- Every failed call (an exception, an overrun of the time budget, an isolated worker that died) is
  recorded with :meth:`HealthBoard.failed` under (plugin, tenant, node); a good answer with
  :meth:`HealthBoard.succeeded`. A trusted in-process plugin's overrun is recorded too but does not
  count towards the breaker: its answer was used, and a loaded machine must not switch a trusted
  policy off.
- ``breaker_failures`` failures within ``breaker_window_seconds`` open the breaker: the plugin is
  skipped at that node (the next implementation, ultimately the default, decides) for
  ``breaker_cooldown_seconds``; then calls are let through again (half-open): the first answer closes
  the breaker, the first failure opens it again for another cool-down.
- A built-in default is never skipped (it is the last resort); its record is kept all the same.
- :meth:`HealthBoard.get` is the documented accessor: the :class:`PluginHealth` of a plugin at a
  node (None when it never failed there). Records hold no personal data: the reason names the hook
  and the kind of failure (an exception's type, never its message).
- The record is per process (each web worker, the timer and delivery workers keep their own).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque

import msgspec

from core.pluginhost.limits import PluginLimits

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class PluginHealth(msgspec.Struct, kw_only=True):
    """How a plugin has fared at one jurisdiction node in this process."""

    plugin: str
    tenant: str
    node: str
    failures: int = 0
    """Calls that raised or whose isolated worker died (since the process started)."""
    overruns: int = 0
    """Calls that exceeded their time budget."""
    breaker: str = CLOSED
    """``closed`` (called), ``open`` (skipped until ``open_until``) or ``half_open`` (one trial call)."""
    reason: str = ""
    """The last failure, e.g. ``odr_deadline_policy overran its 250 ms budget``."""
    at: dt.datetime | None = None
    """When the last failure happened (UTC)."""
    open_until: dt.datetime | None = None
    """While the breaker is open: when the next trial call is let through (UTC)."""


class HealthBoard:
    def __init__(self, limits: PluginLimits) -> None:
        self.limits = limits
        self._records: dict[tuple[str, str, str], PluginHealth] = {}
        self._recent: dict[tuple[str, str, str], deque[float]] = {}
        self._open_until: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()

    def get(self, plugin: str, tenant: str, node: str) -> PluginHealth | None:
        """The record of ``plugin`` at ``node`` of ``tenant`` (a copy), None when it never failed there."""
        with self._lock:
            rec = self._records.get((plugin, tenant, node))
            if rec is None:
                return None
            self._refresh(rec, (plugin, tenant, node), time.monotonic())
            return msgspec.structs.replace(rec)

    def at_node(self, tenant: str, node: str) -> list[PluginHealth]:
        """Every record of ``node`` of ``tenant``, by plugin."""
        with self._lock:
            keys = sorted(k for k in self._records if k[1] == tenant and k[2] == node)
        return [r for k in keys if (r := self.get(*k)) is not None]

    def within(self, tenant: str, nodes: set[str] | frozenset[str]) -> list[PluginHealth]:
        """Every record of ``tenant`` at one of ``nodes`` (a node and its subtree, for the policy page),
        by plugin and node."""
        with self._lock:
            keys = sorted((k for k in self._records if k[1] == tenant and k[2] in nodes), key=lambda k: (k[0], k[2]))
        return [r for k in keys if (r := self.get(*k)) is not None]

    def records(self) -> list[PluginHealth]:
        """Every record of this process (for ``/health``)."""
        with self._lock:
            keys = sorted(self._records)
        return [r for k in keys if (r := self.get(*k)) is not None]

    def forget(self, plugin: str) -> None:
        """Drop every record of ``plugin`` (it was unregistered)."""
        with self._lock:
            for key in [k for k in self._records if k[0] == plugin]:
                self._records.pop(key, None)
                self._recent.pop(key, None)
                self._open_until.pop(key, None)

    def allow(self, plugin: str, tenant: str, node: str, *, default: bool = False) -> bool:
        """Whether to call ``plugin`` at ``node`` now (False while its breaker is open). The call after
        the cool-down is the half-open trial."""
        key = (plugin, tenant, node)
        with self._lock:
            rec = self._records.get(key)
            if rec is None:
                return True
            self._refresh(rec, key, time.monotonic())
            return default or rec.breaker != OPEN

    def succeeded(self, plugin: str, tenant: str, node: str) -> None:
        key = (plugin, tenant, node)
        if key not in self._records:  # the common case: nothing recorded, no lock taken
            return
        with self._lock:
            rec = self._records[key]
            if rec.breaker != CLOSED:
                rec.breaker, rec.open_until = CLOSED, None
                self._open_until.pop(key, None)
                self._recent.pop(key, None)

    def failed(self, plugin: str, tenant: str, node: str, *, reason: str, overrun: bool = False,
               trip: bool = True) -> PluginHealth:
        """Record a failure (or an overrun); opens the breaker when the window holds enough of them.
        ``trip=False``: counted and shown, but not towards the breaker (a trusted plugin's overrun,
        whose answer was used)."""
        key = (plugin, tenant, node)
        now = time.monotonic()
        with self._lock:
            rec = self._records.get(key)
            if rec is None:
                rec = self._records[key] = PluginHealth(plugin=plugin, tenant=tenant, node=node)
            if overrun:
                rec.overruns += 1
            else:
                rec.failures += 1
            rec.reason, rec.at = reason, dt.datetime.now(dt.timezone.utc)
            if not trip:
                return msgspec.structs.replace(rec)
            recent = self._recent.setdefault(key, deque())
            recent.append(now)
            while recent and recent[0] < now - self.limits.breaker_window_seconds:
                recent.popleft()
            if rec.breaker == HALF_OPEN or len(recent) >= self.limits.breaker_failures:
                self._open_until[key] = now + self.limits.breaker_cooldown_seconds
                rec.breaker = OPEN
                rec.open_until = rec.at + dt.timedelta(seconds=self.limits.breaker_cooldown_seconds)
                recent.clear()
            return msgspec.structs.replace(rec)

    def _refresh(self, rec: PluginHealth, key, now: float) -> None:
        if rec.breaker == OPEN and now >= self._open_until.get(key, 0.0):
            rec.breaker = HALF_OPEN
