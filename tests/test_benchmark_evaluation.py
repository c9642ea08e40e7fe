"""benchmarks/evaluation.py runs end to end at a tiny size against the session's PostgreSQL and prints
its figures; its reproduction check must come out identical. No timing is asserted here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def test_evaluation_benchmark_tiny_runs_and_prints_its_figures(pg_url):
    env = {**os.environ, "ODR_DATABASE_URL": pg_url, "PYTHONUNBUFFERED": "1"}
    env.pop("ODR_VALKEY_URL", None)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "evaluation.py"), "--tiny", "--prefix", "evbt"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr}"
    assert "database: ODR_DATABASE_URL" in out
    assert re.search(r"units / scored: 300 / \d+", out)
    assert "identical: True" in out
    summary = out.split("\nSUMMARY", 1)[1]
    for label in ("evaluation yearly", "evaluation quarterly", "evaluation monthly", "reproduce yearly",
                  "report class-table, province, year 2025"):
        assert re.search(rf"{re.escape(label)} +\| +{NUMBER} s", summary), f"missing {label!r} in:\n{summary}"


async def test_evaluation_benchmark_left_nothing_behind(platform):
    from core.db.engine import platform_transaction

    async with platform_transaction() as conn:
        assert await conn.fetchval("SELECT count(*) FROM odr.tenants WHERE slug = 'evbt'") == 0
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 't_evbt'") == 0
