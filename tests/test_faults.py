"""Faults (issue 12), at a CI-sized scale: ``benchmarks/faults.py --tiny`` runs each scenario against a
real server and its own real PostgreSQL and counts, from the tenant's tables, what was acknowledged,
lost, duplicated or half-written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.servers import require_valkey_server

ROOT = Path(__file__).resolve().parent.parent


def run_tiny(scenario: str) -> dict:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "faults.py"), "--tiny", "--json",
                           "--scenario", scenario], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    (figures,) = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\n{scenario}: {figures}")
    return figures


def assert_nothing_acknowledged_was_lost(f: dict) -> None:
    assert f["acknowledged"] > 100, f
    assert f["lost"] == 0 and f["duplicated"] == 0 and f["half_written"] == 0, f
    assert f["present"] == f["acknowledged"] + f["unacknowledged_present"], f
    assert "500" not in f["errors"] and f["server_errors"] == 0, f


def test_a_postgresql_restart_under_intake_load_loses_nothing_and_answers_503_meanwhile():
    f = run_tiny("pg-restart")
    assert_nothing_acknowledged_was_lost(f)
    assert f["errors"].get("503", 0) > 0 and f["retry_after_missing"] == 0, f  # the outage was seen, told as 503
    assert f["health_during_fault"].get("503 database=down", 0) > 0, f
    assert not f["web_restarted"], f  # the same web process recovered by itself
    assert f["recovery_seconds"] is not None and f["recovery_seconds"] < 30, f


def test_a_killed_web_server_loses_no_acknowledged_intake():
    f = run_tiny("kill-web")
    assert_nothing_acknowledged_was_lost(f)
    assert sum(v for k, v in f["errors"].items() if k.startswith("connection")) > 0, f  # the kill was seen
    assert f["recovery_seconds"] is not None, f


def test_valkey_down_keeps_intake_and_every_deadline_due_meanwhile_fires_exactly_once():
    require_valkey_server()  # the scenario starts its own
    f = run_tiny("valkey-down")
    assert_nothing_acknowledged_was_lost(f)
    assert f["intake_success"] >= 0.99, f
    assert f["timers_due_in_fault"] > 0, f  # deadlines really fell due while Valkey was away
    assert f["timers_fired"] == f["timers_due_in_fault"] and f["timers_fired_twice"] == 0, f
    # logins, whose rate limits and lockouts live in Valkey, are refused with 503 meanwhile (never 500,
    # never without their limits), and work again afterwards
    logins = {k: v for k, v in f["health_during_fault"].items() if k.startswith("login ")}
    assert logins.get("login 503", 0) > 0 and logins.get("login after the fault 200") == 1, f
    assert set(logins) == {"login 503", "login after the fault 200"}, f


def test_overload_is_refused_with_503_beyond_the_queue_and_loses_nothing():
    f = run_tiny("overload")  # 64 clients against ODR_INTAKE_QUEUE_MAX=4
    assert_nothing_acknowledged_was_lost(f)
    assert f["errors"].get("503", 0) > 0 and f["retry_after_missing"] == 0, f  # back-pressure, told as 503
    assert set(f["errors"]) == {"503"}, f
    assert f["server_rss_mb"] is not None and f["server_rss_mb"] < 400, f
    assert f["after_success"] is not None and f["after_success"] >= 0.95, f  # a normal load right after: served


def test_a_timer_worker_killed_while_firing_leaves_no_timer_unfired_or_fired_twice():
    require_valkey_server()  # the scenario starts its own
    f = run_tiny("kill-timer")
    assert_nothing_acknowledged_was_lost(f)
    assert f["timers_due_in_fault"] > 100, f  # a burst: the kill lands while they are being fired
    assert f["timers_fired"] == f["timers_due_in_fault"] and f["timers_fired_twice"] == 0, f
