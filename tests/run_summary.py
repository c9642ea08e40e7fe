"""What a test run tells the person who ran it: which Valkey server the tests started (the header), and
on the last lines every skip grouped by its reason, with the command that brings what was missing."""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks.valkey_server import ValkeyServerMissing, valkey_server


def pytest_report_header(config: pytest.Config) -> str:
    try:
        return f"valkey: {valkey_server()[1]}"
    except ValkeyServerMissing as error:
        return f"valkey: none ({error})"


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    terminalreporter.write_line(pytest_report_header(config))
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if getattr(r, "when", "") != "teardown"]
    if not skipped:
        return
    reasons = Counter(skip_reason(r) for r in skipped)
    terminalreporter.section(f"{len(skipped)} skipped, by reason", sep="-")
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"{count:5d} skipped: {reason}")
