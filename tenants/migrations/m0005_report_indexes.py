"""Support for the reports (core/reports) on provinces with millions of complaints.

- The class table reads the 90th-percentile handling cycle from a histogram: ``complaint_facts`` grouped
  by (class, ``cycle_seconds / 600``), then the one ten-minute bucket holding the percentile re-read to
  the minute. Without statistics on that expression PostgreSQL takes its number of groups for the
  number of distinct ``cycle_seconds`` (about one per complaint) and plans a single-process aggregate,
  several times slower; the extended statistics give it the real number. The second pass reads the
  bucket through ``complaint_facts_cycle_idx`` (closed complaints only; with ``entered_odr_at`` so that a
  period is checked in the index, not by combining it with the index on ``entered_odr_at``).
- The merchants report counts complaints per ODR unit and, for companies that are no ODR unit, per name
  as filed; it then reads the details of the top ones only: by ``enterprise_id`` (existing index) and
  by name through ``complaint_facts_nonunit_name_idx`` (only the complaints without a unit are in it).
  The ndistinct statistics on its key (unit, or name for the others) let the first pass run in
  parallel (without them PostgreSQL expects millions of groups).
"""

from core.db.migrations import sql_migration

ID = "0005"
DESCRIPTION = "report support: statistics on the cycle buckets and the merchant key; cycle and non-unit name indexes"

forwards = sql_migration(
    ID,
    DESCRIPTION,
    "CREATE STATISTICS complaint_facts_cycle_buckets ON ((cycle_seconds / 600)) FROM complaint_facts",
    "CREATE INDEX complaint_facts_cycle_idx ON complaint_facts (cycle_seconds, entered_odr_at) WHERE cycle_seconds IS NOT NULL",
    """CREATE STATISTICS complaint_facts_company_key (ndistinct)
       ON enterprise_id, (CASE WHEN enterprise_id IS NULL THEN btrim(company_name) END) FROM complaint_facts""",
    "CREATE INDEX complaint_facts_nonunit_name_idx ON complaint_facts (btrim(company_name)) WHERE enterprise_id IS NULL",
    "ANALYZE complaint_facts",
)
