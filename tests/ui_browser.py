"""Support for the browser tests: Debian's chromium driven by Playwright (never a downloaded browser), the
platform served for real (``python -m odr.cli serve``, granian) on the session's test database, and
screenshots kept as test artefacts.

- Chromium: ``/usr/bin/chromium`` (``ODR_TEST_CHROMIUM`` to override). ``python3 deploy/dev.py test``
  installs it with apt-get when run as root; missing (no root), the browser tests are skipped with that
  reason, and fail in CI (``CI=true``).
- Screenshots go to ``$ODR_TEST_ARTIFACTS`` or ``test-artifacts/`` (gitignored), under ``ui/``.
- :func:`personal_data` finds what must never be on a public page: phone numbers, ID card numbers,
  the demo history's consumer names (测试用户NNNN) and any name or phone passed in.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.servers import APT_SKIP

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
DEMO_CONSUMER = re.compile(r"测试用户\d{4}")
_RANDOM = re.compile(  # random tokens, not data: the CSRF token and UUIDs (ids in links)
    r'(?:name="_csrf_token" value|name="csrf-token" content)="[^"]*"'
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def personal_data(html: str, known: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Phone numbers, ID numbers, demo consumer names and the ``known`` names / phones found in ``html``
    (the CSRF token and UUIDs removed first: random, so they could look like a number by chance)."""
    text = _RANDOM.sub("", html)
    found = PHONE.findall(text) + ID_NUMBER.findall(text) + DEMO_CONSUMER.findall(text)
    return found + [k for k in known if k and k in text]


def chromium_path() -> str:
    """The Debian chromium binary, or skip (fail in CI) with the reason."""
    wanted = os.environ.get("ODR_TEST_CHROMIUM", "/usr/bin/chromium")
    found = wanted if os.path.exists(wanted) else shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"chromium is not installed ({wanted}): `python3 deploy/dev.py test` as root installs it "
                        "with apt-get")
        pytest.skip(APT_SKIP.format(what="chromium", packages="chromium fonts-wqy-zenhei"))
    return found


def artifacts_dir() -> Path:
    base = Path(os.environ.get("ODR_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    path = base / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``odr serve`` (granian, one worker) in a subprocess on a free port; its log kept in a file."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="odr-ui-server-")
        self.log_path = Path(self.dir) / "server.log"
        full = {**os.environ, **env, "ODR_PORT": str(self.port), "ODR_HOST": "127.0.0.1", "ODR_DATA_DIR": self.dir,
                "ODR_WORKERS": "1", "ODR_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
        self.log = open(self.log_path, "w+b")
        self.proc = subprocess.Popen([sys.executable, "-m", "odr.cli", "serve"], cwd=ROOT, env=full,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start:\n" + self.tail())

    def tail(self, chars: int = 4000) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def errors(self) -> list[str]:
        """Lines of the server log that report an error (the tests assert there are none)."""
        return [line for line in self.tail(200_000).splitlines() if re.search(r"\bERROR\b|Traceback", line)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def cleanup(self) -> None:
        """Remove the server's data directory (its log included)."""
        shutil.rmtree(self.dir, ignore_errors=True)


async def login(page, base: str, username: str, password: str = "demo12315") -> None:
    """Sign in through the login form."""
    await page.goto(base + "/ui/login")
    await page.fill("#f-username", username)
    await page.fill("#f-password", password)
    await page.click("main form button[type=submit]")
    await page.wait_for_load_state("load")
    assert "/ui/login" not in page.url, f"login as {username} failed: {page.url}"


async def shot(page, name: str) -> Path:
    path = artifacts_dir() / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
