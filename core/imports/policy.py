"""Deadlines of an imported case from the policy in force when it was received.

The plugin activations at a past moment are the current records with every audited change made since
(``odr.plugin_activation_audit``, one row per save with the old and new state) undone, newest first.
The manifest's choices (saved when the province was onboarded) count as in force since the start.
The audit holds secret configuration fields masked: a past configuration takes them from the later
record (the value in force after it), which only hooks that read their own secrets could notice.
Within one import every received time falls into an *epoch* (the number of audited changes at or
before it); the effective policy, hook scope and calendar are computed once per epoch and node, then
the deadline plugin is asked and the due moments counted exactly as for a filed complaint
(:func:`core.deadlines.service.decide_deadlines`).
"""

from __future__ import annotations

import bisect
import datetime as dt
from typing import Any

import msgspec

from core.db.engine import shared_fetch
from core.deadlines.service import ComplaintDeadlines, decide_deadlines
from core.pluginhost.activations import ACTIVATIONS_SQL, Activation, activations_from_rows, effective_policy, make_scope
from core.runtime import Platform
from odr_plugin_api.secrets import keep_secrets, secret_fields

AUDIT_SQL = """SELECT a.at, a.node_code, a.plugin, a.old FROM odr.plugin_activation_audit a
JOIN odr.tenants t ON t.slug = a.tenant
WHERE a.tenant = $1 AND a.at > t.created_at ORDER BY a.at, a.id"""
"""The audited changes after onboarding (the manifest's choices, saved in the onboarding transaction,
are the province's rules from the start)."""


def _decoded(value: Any) -> dict | None:
    if value is None:
        return None
    return msgspec.json.decode(value) if isinstance(value, (str, bytes)) else value


class PolicyHistory:
    """A tenant's activations at any moment since its start, and the deadlines they give."""

    def __init__(self, platform: Platform, tenant: str, current: list[Activation], audit: list[Any]) -> None:
        self.platform = platform
        self.tenant = tenant
        self.current = current
        self.audit = audit
        self.times = [r["at"] for r in audit]
        self._epochs: dict[int, list[Activation]] = {}
        self._scopes: dict[tuple[int, str], tuple[Any, frozenset[str], Any]] = {}

    @classmethod
    async def load(cls, platform: Platform, tenant: str) -> "PolicyHistory":
        current = activations_from_rows(await shared_fetch(ACTIVATIONS_SQL, tenant))
        return cls(platform, tenant, current, list(await shared_fetch(AUDIT_SQL, tenant)))

    def activations_at(self, when: dt.datetime) -> list[Activation]:
        return self._activations(bisect.bisect_right(self.times, when))

    def _activations(self, epoch: int) -> list[Activation]:
        found = self._epochs.get(epoch)
        if found is None:
            state = {(a.node_code, a.plugin): a for a in self.current}
            for row in reversed(self.audit[epoch:]):
                old = _decoded(row["old"])
                key = (row["node_code"], row["plugin"])
                if old is None:
                    state.pop(key, None)
                else:
                    config = old.get("config")
                    info = self.platform.host.infos.get(key[1])
                    if config is not None and info is not None and secret_fields(info.config):
                        # the audit never holds a secret's value: the later record's value stands in
                        later = state.get(key)
                        config = keep_secrets(info.config, config, later.config if later else None)
                    state[key] = Activation(node_code=key[0], plugin=key[1], active=bool(old.get("active")),
                                            config=config, updated_by="", updated_at=row["at"])
            found = self._epochs[epoch] = list(state.values())
        return found

    def _scope(self, epoch: int, node_path: tuple[str, ...]):
        key = (epoch, "/".join(node_path))
        cached = self._scopes.get(key)
        if cached is None:
            host = self.platform.host
            policy = effective_policy(host, self.tenant, node_path, self._activations(epoch))
            scope, active = make_scope(host, policy), policy.active
            memo: dict = {}

            def day_info(day):
                info = memo.get(day)
                if info is None:
                    info, _ = host.call_first("odr_calendar_day", active=active, scope=scope, day=day)
                    memo[day] = info
                return info

            day_info.periods = {}
            cached = self._scopes[key] = (scope, active, day_info)
        return cached

    def deadlines(self, node_path: tuple[str, ...], start: dt.datetime) -> ComplaintDeadlines:
        """The due moments of a case received at ``start`` at the node of ``node_path``, as the policy
        then in force counts them."""
        scope, active, day_info = self._scope(bisect.bisect_right(self.times, start), node_path)
        return decide_deadlines(self.platform.host, scope, active, start, day_info)
