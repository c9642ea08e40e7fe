"""The fresh-machine set-up (issue 11): ``deploy/dev.py`` starts from the pip that the interpreter itself
brings (``ensurepip``; 23.2.1 on Python 3.11.7, which cannot install the lock), whatever the machine's
pip configuration says, and says in one line what to do when it cannot reach the package index.

These tests make real virtual environments with the base interpreter, exactly as a newcomer's first
``python3 deploy/dev.py run`` does, and install the real lock files into them (from pip's cache when the
suite's own set-up has just filled it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "deploy" / "dev.py"
UNREACHABLE = "http://127.0.0.1:9/simple"  # the discard port: nothing listens


def base_python() -> str:
    """The interpreter this suite's virtual environment was made from (a newcomer's ``python3``)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def run(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def locked() -> tuple[dict[str, str], set[str]]:
    """(name -> version of every requirements.lock entry without a platform marker, every name in it)."""
    pins, names = {}, set()
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)\s*(;)?", line)
        if m:
            names.add(canonical(m.group(1)))
            if not m.group(3):
                pins[canonical(m.group(1))] = m.group(2)
    return pins, names


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def bundled_pip() -> str:
    out = subprocess.run([base_python(), "-c", "import ensurepip; print(ensurepip.version())"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def hostile_pip_config(tmp_path: Path) -> dict[str, str]:
    """An environment whose pip configuration would break a plain ``pip install -r requirements.lock``:
    a constraint that forbids a locked version, extra indexes and find-links that point nowhere."""
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("torch<=2.14.1\nmsgspec<0.1\n")
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\n"
        f"constraint = {constraints}\n"
        f"extra-index-url = file:///nonexistent/simple {UNREACHABLE}\n"
        "find-links = /nonexistent/wheels\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env.update(PIP_CONFIG_FILE=str(conf), PIP_CONSTRAINT=str(constraints), PIP_FIND_LINKS="/nonexistent/wheels")
    return env


def test_setup_from_the_bundled_pip_ignores_the_machines_constraints_and_extra_indexes(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = hostile_pip_config(tmp_path)
    started = time.monotonic()
    done = run(base_python(), str(DEV), "setup", str(venv), env=env, timeout=900)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"set-up from pip {bundled_pip()} (ensurepip) with a hostile pip configuration: {took:.1f} s")

    python = venv / "bin" / "python"
    pinned = (ROOT / "deploy" / "bootstrap.lock").read_text().split("==", 1)[1].split()[0]
    version = run(str(python), "-c", "import pip; print(pip.__version__)", env=env, timeout=60).stdout.strip()
    assert version == pinned

    listed = run(str(python), "-m", "pip", "list", "--format=json", env={**env, "PIP_CONFIG_FILE": os.devnull},
                 timeout=120)
    installed = {canonical(d["name"]): d["version"] for d in json.loads(listed.stdout)}
    pins, names = locked()
    assert len(pins) > 50
    wrong = {name: (installed.get(name), want) for name, want in pins.items() if installed.get(name) != want}
    assert wrong == {}, wrong  # msgspec among them despite the constraint msgspec<0.1
    local = {canonical(p.parent.name) for p in (ROOT / "plugins").glob("*/pyproject.toml")}
    bundled = {"pip", "setuptools"}  # what venv itself puts in (setuptools before Python 3.12)
    assert set(installed) - names - bundled - {"odr-platform"} - local == set()  # nothing from elsewhere
    odr = run(str(venv / "bin" / "odr"), "plugins", "list", env=env, timeout=120)
    assert odr.returncode == 0, odr.stderr[-2000:]

    # Nothing changed: a second run does no pip work at all, so an unreachable index does not matter.
    again = run(base_python(), str(DEV), "setup", str(venv), env={**env, "PIP_INDEX_URL": UNREACHABLE},
                timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout == "" and again.stderr == ""


def test_an_unreachable_index_ends_in_one_line_that_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env.update(PIP_INDEX_URL=UNREACHABLE, PIP_RETRIES="0", PIP_TIMEOUT="2")
    done = run(base_python(), str(DEV), "setup", str(tmp_path / "venv"), env=env, timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: installing pip ") and "PIP_INDEX_URL" in last, last
    assert not (tmp_path / "venv" / ".odr-installed").exists()
