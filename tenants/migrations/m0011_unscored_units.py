"""Evaluation units left unscored by a failing scoring plugin, and the audited decision to publish anyway.

- ``evaluation_results.score_failure`` (jsonb): why the unit's scoring plugin failed (``plugin``,
  ``hook``, ``error`` type, ``detail`` for an answer out of contract, ``at``); NULL when it answered.
  Kept also when another plugin answered in its place.
- ``evaluations.unscored``: units with enough complaints to be scored (``min_handled``) that got no
  score because every scoring plugin active at their node failed. Runs stored before this migration
  count 0.
- ``evaluations.unscored_accepted_by`` / ``_at`` / ``_reason``: who decided to publish a run with
  unscored units, when and why (the publication refuses such a run without that decision).
"""

from core.db.migrations import sql_migration

ID = "0011"
DESCRIPTION = "evaluation: why a unit is unscored; runs count them; publishing one needs an audited decision"

forwards = sql_migration(
    ID,
    DESCRIPTION,
    "ALTER TABLE evaluation_results ADD COLUMN score_failure jsonb",
    "ALTER TABLE evaluations ADD COLUMN unscored integer NOT NULL DEFAULT 0",
    "ALTER TABLE evaluations ADD COLUMN unscored_accepted_by text",
    "ALTER TABLE evaluations ADD COLUMN unscored_accepted_at timestamptz",
    "ALTER TABLE evaluations ADD COLUMN unscored_accepted_reason text",
)
