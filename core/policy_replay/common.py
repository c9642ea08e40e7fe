"""What every replay family and the deadline recompute share.

Contract:

- :class:`UnsupportedPlugin` and :func:`invalid` are the package's 400s (``msgspec.ValidationError``
  whose message ends in ``- at `$.field```, which the API turns into a problem naming the field).
- :func:`candidate_family`, :func:`validate_candidate` and :func:`candidate_activations` build the
  hypothetical activation of a candidate plugin at a node, in memory only, as a save would leave it.
- :class:`Hypothetical` answers the effective policy, scope, calendar and deadlines per node under a
  list of activations, outside the platform's caches; :func:`sides` builds the current and the
  candidate side of a replay and refuses (:class:`ActivationConflict`) what a save would refuse.
- :func:`rolled_back` runs a replay in a read-only tenant transaction that is always rolled back, and
  hands the family runner a :class:`ReplayRun` (inputs, both sides, :meth:`ReplayRun.header` — the
  fields every replay answer starts with).
- :func:`subtree_sql` and :func:`entered_odr_between_sql` are the SQL fragments for "under this node"
  and "entered ODR in the period" (Asia/Shanghai days, inclusive); :func:`competition_ranks` is the
  1, 1, 3 ranking used by the deadline and the scoring replays.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Hashable, Iterable, TypeVar

import msgspec

from core.db.engine import tenant_transaction
from core.deadlines.service import ComplaintDeadlines, decide_deadlines
from core.pluginhost.activations import (
    Activation,
    ActivationConflict,
    EffectivePolicy,
    conflicts,
    effective_policy,
    make_scope,
)
from core.runtime import Node, Platform
from odr_plugin_api import DayInfo, Family, Scope
from odr_plugin_api.secrets import mask_config
from odr_plugin_api.types import EXCLUSIVE_FAMILIES

FAMILIES = (Family.DEADLINE_POLICY, Family.CLASSIFICATION, Family.SCORING)
FAMILIES_SUPPORTED = [f.value for f in FAMILIES]

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


def invalid(field: str, problem: str) -> msgspec.ValidationError:
    """A 400 naming ``field`` (the API reads the ``- at `$.field``` suffix)."""
    return msgspec.ValidationError(f"{problem} - at `$.{field}`")


class UnsupportedPlugin(msgspec.ValidationError):
    """The replay cannot use this plugin (not loaded, or outside the supported families): a 400
    naming ``plugin`` that lists ``families_supported``."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem} - at `$.plugin`")
        self.problem = problem
        self.families_supported = list(FAMILIES_SUPPORTED)


# -- SQL fragments -----------------------------------------------------------------------------------
def subtree_sql(first: int, column: str = "node_path") -> str:
    """``column`` is the path of the node passed as parameter ``$first``, or lies below it."""
    return f"({column} = ${first} OR {column} LIKE ${first} || '/%')"


def entered_odr_between_sql(indent: str) -> str:
    """``c.entered_odr_at`` on or after ``$2`` and on or before ``$3`` (Asia/Shanghai days; NULL: open);
    the second line indented by ``indent``."""
    return (
        "AND ($2::date IS NULL OR (c.entered_odr_at AT TIME ZONE 'Asia/Shanghai')::date >= $2)\n"
        f"{indent}AND ($3::date IS NULL OR (c.entered_odr_at AT TIME ZONE 'Asia/Shanghai')::date <= $3)"
    )


def competition_ranks(ordered: Iterable[tuple[K, Any]]) -> dict[K, int]:
    """Competition ranking (1, 1, 3) of ``(key, rank_key)`` pairs already in rank order: equal
    ``rank_key`` values share the rank of the first of them."""
    ranks: dict[K, int] = {}
    previous: tuple[Any, int] | None = None
    for position, (k, rank_key) in enumerate(ordered, start=1):
        if previous is None or rank_key != previous[0]:
            previous = (rank_key, position)
        ranks[k] = previous[1]
    return ranks


# -- the hypothetical policy -------------------------------------------------------------------------
def candidate_family(platform: Platform, plugin: str) -> Family:
    """The replayable family of ``plugin`` (deadline policy first, then classification, then scoring);
    :class:`UnsupportedPlugin` otherwise."""
    info = platform.host.infos.get(plugin)
    if info is None:
        raise UnsupportedPlugin(f"{plugin!r} is not an installed and loaded plugin")
    for family in FAMILIES:
        if family in info.families:
            return family
    families = ", ".join(f.value for f in info.families) or "no family"
    raise UnsupportedPlugin(
        f"{plugin!r} is a {families} plugin; replay supports the {', '.join(FAMILIES_SUPPORTED)} families only"
    )


def validate_candidate(platform: Platform, plugin: str, config: dict | None) -> tuple[Any, dict | None]:
    """The candidate's decoded config and its stored (builtins) form; 400 naming ``plugin`` or
    ``config.<field>``."""
    host = platform.host
    candidate_family(platform, plugin)
    try:
        decoded = host.decode_config(plugin, config)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if "- at `$" in message:
            raise msgspec.ValidationError(message.replace("- at `$", "- at `$.config")) from None
        raise invalid("config", message) from None
    return decoded, (msgspec.to_builtins(decoded) if decoded is not None else None)


def candidate_activations(
    platform: Platform, current: EffectivePolicy, activations: list[Activation], node: Node, plugin: str, config: dict | None
) -> tuple[list[Activation], list[str]]:
    """The loaded activations plus the candidate activated at ``node`` (and the current non-default
    deciders of its exclusive families there deactivated), as a save would leave them. In memory only."""
    host = platform.host
    families = {f for f in host.infos[plugin].families if f in EXCLUSIVE_FAMILIES}
    replaced = sorted(
        c.plugin
        for c in current.choices
        if c.active and not c.default and c.plugin != plugin and families & set(host.infos[c.plugin].families)
    )
    touched = {plugin, *replaced}
    synthetic = [a for a in activations if not (a.node_code == node.code and a.plugin in touched)]
    synthetic.append(Activation(node_code=node.code, plugin=plugin, active=True, config=config, updated_by="replay"))
    synthetic += [Activation(node_code=node.code, plugin=r, active=False, updated_by="replay") for r in replaced]
    return synthetic, replaced


class Hypothetical:
    """Effective policy, scope and a memoised calendar per node under a given list of activations
    (the loaded ones, or those with the candidate added), kept out of the platform's caches."""

    def __init__(self, platform: Platform, tenant: str, activations: list[Activation]) -> None:
        self.platform = platform
        self.tenant = tenant
        self.activations = activations
        self._nodes: dict[str, tuple] = {}

    def policy(self, node: Node) -> EffectivePolicy:
        return self._at(node)[0]

    def scope(self, node: Node) -> tuple[Scope, frozenset[str]]:
        policy, scope, _ = self._at(node)
        return scope, policy.active

    def _at(self, node: Node) -> tuple:
        got = self._nodes.get(node.code)
        if got is None:
            host = self.platform.host
            policy = effective_policy(host, self.tenant, node.path, self.activations)
            scope = make_scope(host, policy)
            memo: dict[dt.date, DayInfo] = {}

            def day_info(day: dt.date, scope=scope, active=policy.active, memo=memo) -> DayInfo:
                info = memo.get(day)
                if info is None:
                    info, _ = host.call_first("odr_calendar_day", active=active, scope=scope, day=day)
                    memo[day] = info
                return info

            got = self._nodes[node.code] = (policy, scope, day_info)
        return got

    def deadlines(self, node: Node, start: dt.datetime) -> ComplaintDeadlines:
        policy, scope, day_info = self._at(node)
        return decide_deadlines(self.platform.host, scope, policy.active, start, day_info)


async def sides(
    platform: Platform, tenant: str, node: Node, plugin: str, stored: dict | None
) -> tuple[dict[str, Node], Hypothetical, Hypothetical, list[str]]:
    """The tenant's nodes, the current and the hypothetical policies and the plugins the candidate
    would switch off at ``node``; :class:`ActivationConflict` where a save would be refused."""
    nodes = await platform.nodes(tenant)
    activations = list(await platform.activations(tenant))  # one snapshot for both sides
    current = Hypothetical(platform, tenant, activations)
    synthetic, replaced = candidate_activations(platform, current.policy(node), activations, node, plugin, stored)
    hypo = Hypothetical(platform, tenant, synthetic)
    subtree = [n for n in nodes.values() if n.path[: len(node.path)] == node.path]
    for n in sorted(subtree, key=lambda x: x.path):  # what a save would refuse, a replay refuses too
        there = hypo.policy(n)
        problems = conflicts(platform.host, there.active, there)
        if problems:
            raise ActivationConflict(
                "; ".join(problems) + f". Activating {plugin} at {node.code} would not be allowed;"
                " deactivate the other plugin first, or replay at that node."
            )
    return nodes, current, hypo, replaced


# -- one replay run ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplayRun:
    """Everything a family runner needs: the request, the (read-only) connection, ``now`` and both
    sides of the comparison."""

    platform: Platform
    conn: Any
    tenant: str
    node: Node
    plugin: str
    stored: dict | None
    """The candidate's configuration as validated."""
    since: dt.date | None
    until: dt.date | None
    now: dt.datetime
    nodes: dict[str, Node]
    current: Hypothetical
    hypo: Hypothetical
    replaced: list[str]

    @property
    def path(self) -> str:
        """The replayed node's path, the ``$1`` of :func:`subtree_sql`."""
        return "/".join(self.node.path)

    def header(self, note: str) -> dict[str, Any]:
        """The fields every replay answer starts with (``family`` aside, a default of each result)."""
        return dict(
            tenant=self.tenant,
            node=self.node.code,
            plugin=self.plugin,
            config=mask_config(self.platform.host.infos[self.plugin].config, self.stored),
            since=self.since,
            until=self.until,
            dry_run=True,
            families_supported=list(FAMILIES_SUPPORTED),
            note=note,
            deactivated=self.replaced,
            evaluated_at=self.now,
        )


class _RolledBack(Exception):
    """Carries the replay's answer out of its transaction, which rolls back on the way."""

    def __init__(self, result: Any) -> None:
        super().__init__("replay: rolled back")
        self.result = result


async def rolled_back(
    platform: Platform, tenant: str, node: Node, plugin: str, stored: dict | None,
    since: dt.date | None, until: dt.date | None, now: Callable[[], dt.datetime] | None,
    runner: Callable[[ReplayRun], Awaitable[R]],
) -> R:
    """``runner``'s answer, computed in a read-only tenant transaction that is rolled back explicitly."""
    try:
        async with tenant_transaction(tenant) as conn:
            await conn.execute("SET TRANSACTION READ ONLY")
            at = (now or (lambda: dt.datetime.now(dt.timezone.utc)))()
            nodes, current, hypo, replaced = await sides(platform, tenant, node, plugin, stored)
            run = ReplayRun(platform=platform, conn=conn, tenant=tenant, node=node, plugin=plugin, stored=stored,
                            since=since, until=until, now=at, nodes=nodes, current=current, hypo=hypo,
                            replaced=replaced)
            raise _RolledBack(await runner(run))  # explicit: nothing of this transaction is ever committed
    except _RolledBack as done:
        return done.result
