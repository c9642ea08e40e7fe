"""The policy replay package's entry points (what :mod:`core.policy_replay.api` calls).

Contract:

- :func:`recompute_deadlines` (from :mod:`.deadlines`): recompute the due moments of the open in-ODR
  complaints under a node with the policy active now; one tenant transaction, ``dry_run`` writes nothing.
- :func:`replay`: what a candidate plugin, activated hypothetically at a node, would change, in its
  family — deadline policy (:mod:`.deadlines`), classification (:mod:`.classification`) or scoring
  (:mod:`.scoring`). Nothing is saved: the hypothetical activation exists only in memory and the reads
  run in a read-only tenant transaction that is rolled back explicitly (:mod:`.common`).
- :class:`UnsupportedPlugin`: the 400 for a plugin that cannot be replayed.

The names below are re-exported so that callers keep importing them from here.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

from core.policy_replay.classification import CLASSIFICATION_NOTE, UNITS_SQL, replay_classification
from core.policy_replay.common import (
    FAMILIES,
    FAMILIES_SUPPORTED,
    Hypothetical,
    UnsupportedPlugin,
    candidate_activations,
    candidate_family,
    invalid,
    rolled_back,
    validate_candidate,
)
from core.policy_replay.deadlines import MAX_DETAIL, RECOMPUTED, REPLAY_NOTE, outcome, recompute_deadlines, replay_deadlines
from core.policy_replay.schemas import ClassificationReplayResult, ReplayResult, ScoringReplayResult
from core.policy_replay.scoring import INDICATORS_SQL, SCORING_NOTE, indicators_from_row, replay_scoring, score_ranks
from core.runtime import Node, Platform
from odr_plugin_api import Family
from odr_plugin_api.secrets import keep_secrets, secret_fields

__all__ = [
    "CLASSIFICATION_NOTE", "FAMILIES", "FAMILIES_SUPPORTED", "Hypothetical", "INDICATORS_SQL", "MAX_DETAIL",
    "RECOMPUTED", "REPLAY_NOTE", "SCORING_NOTE", "UNITS_SQL", "UnsupportedPlugin", "candidate_activations",
    "candidate_family", "indicators_from_row", "outcome", "recompute_deadlines", "replay", "score_ranks",
    "validate_candidate",
]

_RUNNERS = {
    Family.DEADLINE_POLICY: replay_deadlines,
    Family.CLASSIFICATION: replay_classification,
    Family.SCORING: replay_scoring,
}


async def replay(
    platform: Platform, tenant: str, node: Node, *, plugin: str, config: dict | None,
    since: dt.date | None = None, until: dt.date | None = None, now: Callable[[], dt.datetime] | None = None,
) -> ReplayResult | ClassificationReplayResult | ScoringReplayResult:
    """Compare the current policy with ``plugin`` (``config``) activated hypothetically at ``node``,
    in the plugin's family: a deadline policy over the complaints of the node's subtree that entered ODR
    (between ``since`` and ``until``, Asia/Shanghai days, inclusive); a classification scheme over the
    subtree's ODR units; a scoring formula over the units' indicators of that period. Writes nothing."""
    family = candidate_family(platform, plugin)
    config_type = platform.host.infos[plugin].config
    if secret_fields(config_type):  # as a save would: a secret left out (or masked) is the one in force
        policy = await platform.policy(tenant, node.code)
        config = keep_secrets(config_type, config or {}, next((c.config for c in policy.choices if c.plugin == plugin), None))
    _, stored = validate_candidate(platform, plugin, config)
    if since is not None and until is not None and since > until:
        raise invalid("until", f"{until} is before since ({since})")
    return await rolled_back(platform, tenant, node, plugin, stored, since, until, now, _RUNNERS[family])
