"""One scratch directory per test session: every temporary file and directory of the session and of the
processes it starts (embedded PostgreSQL data, web servers' data directories, the benchmarks run with
``--tiny``) is made under it (``TMPDIR`` and :data:`tempfile.tempdir`), and it is removed when the session
ends, after its fixtures have stopped their servers. Without it each run of the suite left gigabytes of
database directories in the system's temporary directory."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_KEY = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    base = tempfile.mkdtemp(prefix="odr-pytest-")
    config.stash[_KEY] = base
    os.environ["TMPDIR"] = base
    tempfile.tempdir = base


def pytest_unconfigure(config: pytest.Config) -> None:
    base = config.stash.get(_KEY, None)
    if base is None:
        return
    tempfile.tempdir = None
    os.environ.pop("TMPDIR", None)
    if os.environ.get("ODR_TEST_KEEP_TMP"):
        print(f"\nthe session's temporary files are kept in {base}")
        return
    shutil.rmtree(base, ignore_errors=True)
