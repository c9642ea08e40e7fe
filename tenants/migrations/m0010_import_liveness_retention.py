"""Liveness of import runs and retention of deliveries and uploads (housekeeping).

- ``import_runs.heartbeat_at``: moved forward with every committed batch (in the batch's transaction);
  a run still ``running`` whose heartbeat is older than ``ODR_IMPORT_STALE_SECONDS`` is shown as
  *interrupted* (its process died) and may be resumed. Runs recorded before this migration get their
  start time.
- ``import_runs.runner``: the token of the process carrying the run on; a resume takes the run over
  with a new token, and a batch of the old process (if it still lives) then finds the run no longer its
  own and rolls back.
- ``import_runs.mapping``: the column mapping the run reads the file with (a resume reads it the same
  way, whether it came from ``odr import --mapping`` or the tenant's stored one).
- ``import_files.content`` may be NULL: an upload whose runs finished more than
  ``ODR_IMPORT_RETENTION_DAYS`` ago loses its content (``purged_at``), its row and runs stay for the
  history.
- Indexes for the retention sweeps: delivered deliveries by finish time, uploads still holding content.
"""

from core.db.migrations import sql_migration

ID = "0010"
DESCRIPTION = "import run heartbeat, runner and mapping; uploads' content removable; retention indexes"

forwards = sql_migration(
    ID,
    DESCRIPTION,
    "ALTER TABLE import_runs ADD COLUMN heartbeat_at timestamptz",
    "UPDATE import_runs SET heartbeat_at = coalesce(finished_at, started_at)",
    "ALTER TABLE import_runs ALTER COLUMN heartbeat_at SET DEFAULT now()",
    "ALTER TABLE import_runs ALTER COLUMN heartbeat_at SET NOT NULL",
    "ALTER TABLE import_runs ADD COLUMN runner uuid",
    "ALTER TABLE import_runs ADD COLUMN mapping jsonb",
    "ALTER TABLE import_files ALTER COLUMN content DROP NOT NULL",
    "ALTER TABLE import_files ADD COLUMN purged_at timestamptz",
    "CREATE INDEX deliveries_finished_idx ON deliveries (finished_at) WHERE state IN ('delivered', 'skipped')",
    "CREATE INDEX import_files_kept_idx ON import_files (uploaded_at) WHERE purged_at IS NULL",
)
