"""Scoring one evaluation run's units: their indicators from the facts, the scoring plugin active at
each node (one scorer per node, its scope and configuration looked up once), and competition ranks
within a class.

Contract: :func:`unit_indicators` gives exactly the :class:`odr_plugin_api.Indicators` a plugin sees
(rates 0.0 where nothing was judged); :func:`rank_within_class` ranks the scored entries of each class,
highest score first, equal scores sharing a rank.
"""

from __future__ import annotations

from collections import defaultdict

import asyncpg
import msgspec

from core.pluginhost.host import PluginFailure, PluginUnavailable
from core.policy_replay.common import competition_ranks
from core.runtime import Platform
from odr_plugin_api import Family, Indicators, Scope, ScoreResult


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def unit_indicators(row: asyncpg.Record) -> Indicators:
    """What the scoring plugin sees. Rates without a denominator are 0.0 (the Struct wants numbers; the
    stored result keeps them NULL), as in the scoring replay."""
    return Indicators(
        handled=row["handled"],
        settlement_rate=rate(row["settled"], row["with_feedback"]) or 0.0,
        satisfaction=row["satisfaction"],
        avg_cycle_days=row["avg_cycle_days"],
        on_time_contact_rate=rate(row["contact_on_time"], row["contact_judged"]) or 0.0,
        on_time_close_rate=rate(row["close_on_time"], row["close_judged"]) or 0.0,
        breaches=row["breaches"],
        untrue_feedback_findings=row["untrue_feedback"],
        complaints_previous_period=row["previous"],
        enterprise_class=row["cls"],
    )


class NodeScorer:
    """The scoring plugins active at one node, resolved once per run."""

    def __init__(self, platform: Platform, scope: Scope, active: frozenset[str]) -> None:
        host = platform.host
        self.host = host
        self.scope = scope
        self.active = active
        self.plugins = sorted(n for n in active if Family.SCORING in host.infos[n].families)
        self._call = host.first_answerer("odr_score_enterprise", active=active)

    def policies(self) -> list[tuple[str, str, str | None]]:
        """(plugin, version, config JSON) of the scoring plugins active here."""
        out = []
        for name in self.plugins:
            cfg = self.scope.configs.get(name)
            if cfg is None and self.host.infos[name].config is not None:
                cfg = self.host.infos[name].config()
            out.append((name, self.host.infos[name].version,
                        None if cfg is None else msgspec.json.encode(msgspec.to_builtins(cfg)).decode()))
        return out

    def score(self, indicators: Indicators) -> tuple[ScoreResult | None, str | None, dict | None]:
        """(score, plugin that gave it, why a scoring plugin failed): the failure (:func:`failure_record`
        of the first plugin that raised or answered out of contract) is kept even when another plugin
        answered in its place; all three are None when no scoring plugin is active here."""
        try:
            answer = self._call(scope=self.scope, indicators=indicators)
        except PluginUnavailable as exc:
            return None, None, failure_record(exc.failures[0]) if exc.failures else None
        return answer.result, answer.plugin, failure_record(answer.failed[0]) if answer.failed else None

    def score_many(self, indicators: list[Indicators]) -> list[tuple[ScoreResult | None, str | None, dict | None]]:
        """:meth:`score` for every unit of the node at once: an isolated scoring plugin gets them in one
        round trip (call it through ``host.off_loop``)."""
        answers = self.host.first_batch_answers("odr_score_enterprise", active=self.active, scope=self.scope,
                                                calls=[{"indicators": i} for i in indicators])
        return [(result, plugin, failure_record(failed[0]) if failed else None) for result, plugin, failed in answers]


def failure_record(failure: PluginFailure) -> dict:
    """What an evaluation result keeps of a scoring failure (``score_failure``): plugin, hook, error
    type, the contract's problems for an answer out of contract, when."""
    return {"plugin": failure.plugin, "hook": failure.hook, "error": failure.error, "detail": failure.detail,
            "at": failure.at.isoformat()}


def rank_within_class(entries: list[dict]) -> None:
    by_class: dict[str, list[dict]] = defaultdict(list)
    for e in entries:
        if e["score"] is not None:
            by_class[e["enterprise_class"] or ""].append(e)
    for members in by_class.values():
        members.sort(key=lambda e: (-e["score"], e["name"], str(e["enterprise_id"])))
        ranks = competition_ranks((id(e), e["score"]) for e in members)
        for e in members:
            e["class_rank"] = ranks[id(e)]
            e["class_size"] = len(members)
