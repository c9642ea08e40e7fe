"""The dependency rule between the layers (README, "How it is built"; contracts in pyproject.toml,
``[tool.importlinter]``), read from the imports by import-linter: it holds on the tree, and a copy of
the tree in which the core imports the console again is refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"
LAYERS = ("odr", "admin_ui", "tenants", "core")


def _lint(cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([str(LINT), "--no-cache", "--config", str(cwd / "pyproject.toml")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 6 kept, 0 broken." in result.stdout, result.stdout


def test_the_core_importing_the_console_breaks_the_contracts(tmp_path):
    for package in LAYERS:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "node_modules", "static", "templates"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "core" / "app.py").write_text('"""The violation: the core knows a screen again."""\n\n'
                                              "from admin_ui.app import ui_route_handlers  # noqa: F401\n")
    result = _lint(tmp_path, extra_path=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Contracts: 4 kept, 2 broken." in result.stdout, result.stdout
    assert "core.app -> admin_ui.app" in result.stdout, result.stdout
