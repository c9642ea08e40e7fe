"""``odr serve`` / ``odr demo`` refuse to start on a port another process holds (granian binds with
SO_REUSEPORT, which would otherwise share the port silently and split the requests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("command", ["serve", "demo"])
@pytest.mark.parametrize("reuseport", [False, True], ids=["plain-listener", "reuseport-listener"])
def test_a_held_port_stops_the_server_at_once_with_one_line_naming_it(tmp_path, command, reuseport):
    holder = socket.socket()
    if reuseport:  # as a running granian holds it
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODR_")}
    env.update({"ODR_HOST": "127.0.0.1", "ODR_PORT": str(port), "ODR_DATA_DIR": str(tmp_path / "data"),
                "ODR_SECRET_KEY": "k" * 40})
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "odr.cli", command], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
    finally:
        holder.close()
    took = time.monotonic() - started
    assert done.returncode == 1, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "ODR_PORT" in lines[0], done.stderr
    assert took < 15, took
    assert not (tmp_path / "data").exists()  # nothing was started (no embedded database made)


def test_a_free_port_is_not_refused():
    from odr.ports import port_in_use

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert port_in_use("127.0.0.1", port) is None
    assert "does not resolve" in port_in_use("no-such-host.invalid", port)
