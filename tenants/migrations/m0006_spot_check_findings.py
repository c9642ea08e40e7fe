"""Spot-check findings on an ODR unit's feedback (Art. 17 supervision; Art. 22(2) "seriously untrue
feedback").

``complaints.feedback_untrue``: the verdict of the latest spot check that examined the feedback (true:
found seriously untrue; false: checked and true; NULL: no spot check examined it). ``complaint_facts``
carries it, so the evaluation counts a unit's untrue-feedback findings (``untrue_feedback_findings`` of
the scoring plugins' indicators) with the complaint's period, like every other indicator.

The facts' source view, its two sync functions and the update trigger are replaced by migration 0004's
definitions with the new column (appended last, where ``ALTER TABLE`` puts it).
"""

from core.db.migrations import sql_migration
from tenants.migrations import m0004_facts_evaluation as m0004

ID = "0006"
DESCRIPTION = "spot-check findings on feedback: complaints.feedback_untrue, carried into complaint_facts"

FACT_COLUMNS = m0004.FACT_COLUMNS + ", feedback_untrue"

forwards = sql_migration(
    ID,
    DESCRIPTION,
    "ALTER TABLE complaints ADD COLUMN feedback_untrue boolean",
    "ALTER TABLE complaint_facts ADD COLUMN feedback_untrue boolean",
    "DROP TRIGGER complaint_facts_on_update ON complaints",
    *m0004.facts_sync_sql(
        source=m0004.FACT_SOURCE + ",\n           c.feedback_untrue",
        columns=FACT_COLUMNS,
        updates=m0004.FACT_UPDATES + ",\n            feedback_untrue = EXCLUDED.feedback_untrue",
        watched=m0004.WATCHED + ", {0}.feedback_untrue",
        create="CREATE OR REPLACE",
    ),
)
