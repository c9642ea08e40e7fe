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

Both ``run`` and ``test`` vendor the web console's front-end assets when they are missing: htmx and
ECharts from the npm registry at the exact versions of ``admin_ui/package.json`` (``npm ci``, which
checks each package against the integrity hash in ``admin_ui/package-lock.json``), copied into
``admin_ui/static/vendor/`` (gitignored). Without npm the console still works (every page works
without JavaScript); a warning says what is missing. ``test`` also installs Debian's ``chromium`` (and
a CJK font for readable screenshots) for the browser tests when it is missing and this runs as root
with apt-get; otherwise those tests are skipped with that reason (and fail in CI).
"""

from __future__ import annotations

import hashlib
import os
import shutil
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


UI = ROOT / "admin_ui"
VENDOR = {  # file in admin_ui/node_modules -> name in admin_ui/static/vendor
    "htmx.org/dist/htmx.min.js": "htmx.min.js",
    "echarts/dist/echarts.min.js": "echarts.min.js",
}
BROWSER_PACKAGES = ["chromium", "fonts-wqy-zenhei"]


def ensure_vendor() -> None:
    """Copy htmx and ECharts into admin_ui/static/vendor/ when missing (``npm ci`` from the lock first)."""
    target = UI / "static" / "vendor"
    missing = [name for name in VENDOR.values() if not (target / name).exists()]
    if not missing:
        return
    if not all((UI / "node_modules" / src).exists() for src in VENDOR):
        npm = shutil.which("npm")
        if npm is None:
            print(f"warning: npm not found; {', '.join(missing)} not vendored (the console works without JavaScript)",
                  file=sys.stderr)
            return
        code = subprocess.call([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=UI)
        if code:
            print(f"warning: npm ci failed ({code}); {', '.join(missing)} not vendored", file=sys.stderr)
            return
    target.mkdir(parents=True, exist_ok=True)
    for src, name in VENDOR.items():
        shutil.copyfile(UI / "node_modules" / src, target / name)


def ensure_chromium() -> None:
    """Install Debian's chromium for the browser tests when missing (root with apt-get only)."""
    if os.path.exists(os.environ.get("ODR_TEST_CHROMIUM", "/usr/bin/chromium")) or shutil.which("chromium"):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print("note: chromium is not installed; the browser tests will be skipped (apt-get install chromium)", file=sys.stderr)
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.call(["apt-get", "update", "-qq"], env=env)
    code = subprocess.call(["apt-get", "install", "-y", "-qq", *BROWSER_PACKAGES], env=env, stdout=subprocess.DEVNULL)
    if code:
        print(f"warning: apt-get install {' '.join(BROWSER_PACKAGES)} failed ({code})", file=sys.stderr)


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
    ensure_vendor()
    if action == "test":
        ensure_chromium()
    os.chdir(ROOT)
    if action == "run":
        args = [str(bin_dir / "odr"), *(rest or ["demo"])]
    else:
        args = [str(bin_dir / "python"), "-m", "pytest", *rest]
    os.execv(args[0], args)


if __name__ == "__main__":
    sys.exit(main())
