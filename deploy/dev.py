#!/usr/bin/env python3
"""The README's two commands, on any machine with Python 3.11+ and nothing else set up.

  python3 deploy/dev.py run [odr args]      set up .venv from the lock file, run the platform with demo tenants
  python3 deploy/dev.py test [pytest args]  set up .venv and run the whole test suite
  python3 deploy/dev.py setup [VENV]        only set up the environment (default .venv; the tests use another)
  python3 deploy/dev.py lock                re-resolve both lock files after changing dependencies (needs uv)
  python3 deploy/dev.py dist [DIR]          build the wheels a plugin vendor installs (odr-plugin-api, pytest-odr)
                                            into DIR (default dist/), offline, with the locked hatchling

Only the standard library is used here. The environment is made in three steps, each checked by hash:

1. ``python3 -m venv``: the interpreter's own pip (``ensurepip``; Python 3.11.7 brings pip 23.2.1, which
   cannot install a hash-pinned lock in which a package asks for an extra, such as ``pydantic[email]``);
2. that pip installs the pinned pip of ``deploy/bootstrap.lock`` (``--require-hashes``, nothing else);
3. the pinned pip installs ``requirements.lock`` (``--require-hashes``), then the platform and every
   plugin distribution in ``plugins/`` editable without dependencies, so entry points are registered
   exactly as a vendor's package would register them.

pip runs with the machine's pip configuration files switched off (``PIP_CONFIG_FILE`` = ``os.devnull``,
every other ``PIP_*`` variable dropped). Of that configuration only what says how to reach the package
index is carried over (``PIP_PASSED_ON``: the index URL of a mirror, proxy, certificates, trusted hosts,
timeout, retries, cache); constraint files, extra indexes, find-links and the like are not, because the
lock alone decides what is installed and every file is checked against its hash. Re-running is cheap: no
pip runs (no network work) while the lock files and the pyproject files are unchanged.

Both ``run`` and ``test`` vendor the web console's front-end assets when they are missing: htmx and
ECharts from the npm registry at the exact versions of ``admin_ui/package.json`` (``npm ci``, which
checks each package against the integrity hash in ``admin_ui/package-lock.json``), copied into
``admin_ui/static/vendor/`` (gitignored). Without npm the console still works (every page works
without JavaScript); a warning says what is missing. ``test`` also installs Debian's ``chromium`` (and
a CJK font for readable screenshots) for the browser tests and Debian's ``pgbouncer`` for the pgbouncer
fault scenario when they are missing and this runs as root with apt-get; otherwise those tests are
skipped with that reason (and fail in CI).
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"
BOOTSTRAP_IN = ROOT / "deploy" / "bootstrap.in"
BOOTSTRAP_LOCK = ROOT / "deploy" / "bootstrap.lock"
# pip settings carried over from the machine's configuration: how to reach the index, nothing about what
# to install (the lock decides that).
PIP_PASSED_ON = ("index-url", "proxy", "cert", "client-cert", "trusted-host", "timeout", "retries",
                 "cache-dir", "no-cache-dir")
HINT = ("check that the package index can be reached (a mirror: PIP_INDEX_URL=...; a proxy: "
        "PIP_PROXY=... or HTTPS_PROXY=...), then run the same command again")


class SetupError(Exception):
    """A step of the set-up failed; the message says what to do, in one line."""


def local_projects() -> list[Path]:
    return [ROOT] + sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))


def fingerprint() -> str:
    h = hashlib.sha256(BOOTSTRAP_LOCK.read_bytes())
    h.update(LOCK.read_bytes())
    for project in local_projects():
        h.update((project / "pyproject.toml").read_bytes())
    return h.hexdigest()


def pinned_pip() -> str:
    """The pip version of ``deploy/bootstrap.lock``."""
    for line in BOOTSTRAP_LOCK.read_text().splitlines():
        if line.startswith("pip=="):
            return line.split("==", 1)[1].split()[0]
    raise SetupError(f"{BOOTSTRAP_LOCK} pins no pip version; restore it from git")


def machine_pip_settings(python: Path) -> dict[str, str]:
    """The machine's pip settings (files and ``PIP_*`` variables) that say how to reach the index.

    Read with ``pip config list`` as the machine has it; later sources win (global, then the
    ``install`` section, then the environment), as in pip itself.
    """
    out = subprocess.run([str(python), "-m", "pip", "config", "list"], capture_output=True, text=True)
    found: dict[str, tuple[int, str]] = {}
    rank = {"global": 0, "install": 1, ":env:": 2}
    for line in out.stdout.splitlines():
        name, sep, raw = line.partition("=")
        section, _, key = name.rpartition(".")
        if not sep or key not in PIP_PASSED_ON or section not in rank:
            continue
        try:
            value = str(ast.literal_eval(raw))
        except (ValueError, SyntaxError):
            continue
        if key not in found or rank[section] >= found[key][0]:
            found[key] = (rank[section], value)
    return {key: value for key, (_, value) in found.items()}


def pip_environment(python: Path) -> dict[str, str]:
    """The environment pip runs in: no configuration files, no ``PIP_*`` variable but those passed on."""
    settings = machine_pip_settings(python)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    for key, value in settings.items():
        env["PIP_" + key.upper().replace("-", "_")] = value
    return env


def pip_version(python: Path) -> str:
    out = subprocess.run([str(python), "-c", "import pip; print(pip.__version__)"], capture_output=True,
                         text=True)
    return out.stdout.strip()


def run_pip(python: Path, env: dict[str, str], what: str, *args: str) -> None:
    code = subprocess.call([str(python), "-m", "pip", "install", "--quiet", *args], env=env)
    if code:
        raise SetupError(f"{what} failed (pip exit {code}, its message is above): {HINT}")


def ensure_env(venv: Path = VENV) -> Path:
    """Make ``venv`` hold exactly the locked packages and the local projects; return its ``bin``."""
    if sys.version_info < (3, 11):
        raise SetupError(f"Python 3.11 or newer is required (this is {sys.version.split()[0]}): "
                         "run this file with a newer python3")
    python = venv / "bin" / "python"
    if not python.exists():
        code = subprocess.call([sys.executable, "-m", "venv", str(venv)])
        if code or not python.exists():
            raise SetupError(f"creating the virtual environment {venv} failed: install the interpreter's venv "
                             "module (Debian: apt-get install python3-venv) and run the same command again")
    stamp = venv / ".odr-installed"
    if stamp.exists() and stamp.read_text() == fingerprint():
        return venv / "bin"
    env = pip_environment(python)
    if pip_version(python) != pinned_pip():
        run_pip(python, env, f"installing pip {pinned_pip()} from deploy/bootstrap.lock",
                "--require-hashes", "--no-deps", "-r", str(BOOTSTRAP_LOCK))
        if pip_version(python) != pinned_pip():
            raise SetupError(f"pip in {venv} is {pip_version(python) or 'missing'} after installing "
                             f"{pinned_pip()}: remove {venv} and run the same command again")
    run_pip(python, env, "installing requirements.lock", "--require-hashes", "-r", str(LOCK))
    editables = [arg for project in local_projects() for arg in ("-e", str(project))]
    run_pip(python, env, "installing the platform and its plugins from the tree",
            "--no-deps", "--no-build-isolation", *editables)
    stamp.write_text(fingerprint())
    return venv / "bin"


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


def ensure_test_packages() -> None:
    """Install the Debian packages the tests need when missing (root with apt-get only): chromium and a
    CJK font for the browser tests, pgbouncer for the pgbouncer fault scenario (tests/test_faults.py)."""
    missing = []
    if not (os.path.exists(os.environ.get("ODR_TEST_CHROMIUM", "/usr/bin/chromium")) or shutil.which("chromium")):
        missing += BROWSER_PACKAGES
    if not (shutil.which("pgbouncer") or os.path.exists("/usr/sbin/pgbouncer")):
        missing.append("pgbouncer")
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(f"note: {', '.join(missing)} not installed and this is not root with apt-get: the tests that "
              f"need them will be skipped (`sudo python3 deploy/dev.py test` installs them)", file=sys.stderr)
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.call(["apt-get", "update", "-qq"], env=env)
    code = subprocess.call(["apt-get", "install", "-y", "-qq", *missing], env=env, stdout=subprocess.DEVNULL)
    if code:
        print(f"warning: apt-get install {' '.join(missing)} failed ({code})", file=sys.stderr)


def lock() -> int:
    """Resolve requirements.lock (hashes, every platform) from the pyproject files, and
    deploy/bootstrap.lock from deploy/bootstrap.in; local packages are left out (they are installed
    from the tree)."""
    names = [
        line.split("=", 1)[1].strip().strip('"')
        for project in local_projects()
        for line in (project / "pyproject.toml").read_text().splitlines()
        if line.startswith("name = ")
    ]
    common = ["--generate-hashes", "--universal", "--python-version", "3.11", "--no-header", "--quiet"]
    cmd = ["uv", "pip", "compile", "pyproject.toml", "--group", "dev", *common, "-o", str(LOCK)]
    for name in names:
        cmd += ["--no-emit-package", name]
    return (subprocess.call(cmd, cwd=ROOT)
            or subprocess.call(["uv", "pip", "compile", str(BOOTSTRAP_IN), *common, "-o", str(BOOTSTRAP_LOCK)],
                               cwd=ROOT))


DIST_PROJECTS = ("plugins/odr-plugin-api", "plugins/pytest-odr")
"""What a plugin vendor installs: the plugin API and the vendor kit (see plugins/pytest-odr/README.md)."""


def dist(target: Path, bin_dir: Path) -> int:
    """Build the wheels of :data:`DIST_PROJECTS` into ``target`` with the environment's pip and locked
    hatchling (no build isolation, no index: nothing is downloaded); print the wheels' paths."""
    target.mkdir(parents=True, exist_ok=True)
    python = bin_dir / "python"
    env = {**pip_environment(python), "PIP_NO_INDEX": "1"}
    code = subprocess.call([str(python), "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(target), *(str(ROOT / p) for p in DIST_PROJECTS)], env=env, cwd=ROOT)
    if code:
        print(f"error: building the wheels failed ({code})", file=sys.stderr)
        return code
    for wheel in sorted(target.glob("*.whl")):
        print(wheel)
    return 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "test", "setup", "lock", "dist"):
        print(__doc__)
        return 2
    action, rest = sys.argv[1], sys.argv[2:]
    if action == "lock":
        return lock()
    try:
        if action == "setup":
            ensure_env(Path(rest[0]).resolve() if rest else VENV)
            return 0
        bin_dir = ensure_env()
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if action == "dist":
        return dist(Path(rest[0]).resolve() if rest else ROOT / "dist", bin_dir)
    ensure_vendor()
    if action == "test":
        ensure_test_packages()
    os.chdir(ROOT)
    if action == "run":
        args = [str(bin_dir / "odr"), *(rest or ["demo"])]
    else:
        args = [str(bin_dir / "python"), "-m", "pytest", *rest]
    os.execv(args[0], args)


if __name__ == "__main__":
    sys.exit(main())
