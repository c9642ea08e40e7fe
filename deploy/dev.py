#!/usr/bin/env python3
"""The README's two commands, on any machine with Python 3.11+ and nothing else set up.

  python3 deploy/dev.py run [odr args]      set up .venv from the lock file, run the platform with demo tenants
  python3 deploy/dev.py test [pytest args]  set up .venv and run the whole test suite
  python3 deploy/dev.py lock                re-resolve requirements.lock after changing dependencies (needs uv)

Only the standard library is used here. ``.venv`` gets the hash-pinned packages of
``requirements.lock`` (pip, ``--require-hashes``), then the platform and every plugin distribution in
``plugins/`` installed editable without dependencies, so entry points are registered exactly as a
vendor's package would register them. Re-running is cheap: nothing is installed while the lock and the
pyproject files are unchanged.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"


def local_projects() -> list[Path]:
    return [ROOT] + sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))


def fingerprint() -> str:
    h = hashlib.sha256(LOCK.read_bytes())
    for project in local_projects():
        h.update((project / "pyproject.toml").read_bytes())
    return h.hexdigest()


def ensure_env() -> Path:
    if sys.version_info < (3, 11):
        sys.exit("Python 3.11 or newer is required")
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    stamp = VENV / ".odr-installed"
    if stamp.exists() and stamp.read_text() == fingerprint():
        return VENV / "bin"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.check_call([*pip, "--require-hashes", "-r", str(LOCK)])
    editables = [arg for project in local_projects() for arg in ("-e", str(project))]
    subprocess.check_call([*pip, "--no-deps", "--no-build-isolation", *editables])
    stamp.write_text(fingerprint())
    return VENV / "bin"


def lock() -> int:
    """Resolve requirements.lock (hashes, every platform) from the pyproject files; local packages
    are left out (they are installed from the tree)."""
    names = [
        line.split("=", 1)[1].strip().strip('"')
        for project in local_projects()
        for line in (project / "pyproject.toml").read_text().splitlines()
        if line.startswith("name = ")
    ]
    cmd = ["uv", "pip", "compile", "pyproject.toml", "--group", "dev", "--generate-hashes", "--universal",
           "--python-version", "3.11", "--no-header", "--quiet", "-o", str(LOCK)]
    for name in names:
        cmd += ["--no-emit-package", name]
    return subprocess.call(cmd, cwd=ROOT)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "test", "lock"):
        print(__doc__)
        return 2
    action, rest = sys.argv[1], sys.argv[2:]
    if action == "lock":
        return lock()
    bin_dir = ensure_env()
    os.chdir(ROOT)
    if action == "run":
        args = [str(bin_dir / "odr"), *(rest or ["demo"])]
    else:
        args = [str(bin_dir / "python"), "-m", "pytest", *rest]
    os.execv(args[0], args)


if __name__ == "__main__":
    sys.exit(main())
