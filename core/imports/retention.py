"""Retention of uploaded import files: their content is removed ``ODR_IMPORT_RETENTION_DAYS`` after
their last run finished.

Contract:
- A file's content (the export's bytes, the bulk of it) is set to NULL and ``purged_at`` recorded when
  it was uploaded and last active longer ago than the retention: no run of it finished, or moved its
  heartbeat, since (a live run's heartbeat is seconds old, so a running import keeps its file; an
  interrupted one keeps it for the retention, to be resumed). A file never run is purged the same time
  after its upload. The file's row (name, size, checksum, who, when) and its runs stay for the history;
  a preview, run or resume of it then answers 400 naming ``file``.
- One call purges at most ``batch`` files in the caller's tenant transaction, taken ``FOR UPDATE SKIP
  LOCKED``.
"""

from __future__ import annotations

import asyncpg

SWEEP_UPLOADS = """
UPDATE import_files SET content = NULL, purged_at = now() WHERE id IN (
    SELECT f.id FROM import_files f
    WHERE f.purged_at IS NULL AND f.uploaded_at < now() - make_interval(secs => $1)
      AND NOT EXISTS (SELECT 1 FROM import_runs r WHERE r.file_id = f.id
                      AND coalesce(r.finished_at, r.heartbeat_at) >= now() - make_interval(secs => $1))
    ORDER BY f.uploaded_at LIMIT $2 FOR UPDATE OF f SKIP LOCKED)
"""


async def sweep_uploads(conn: asyncpg.Connection, *, retention_days: float, batch: int = 50) -> int:
    """Purge the content of up to ``batch`` uploads idle for more than ``retention_days``; how many."""
    status = await conn.execute(SWEEP_UPLOADS, float(retention_days) * 86400.0, batch)
    return int(status.split()[-1])
