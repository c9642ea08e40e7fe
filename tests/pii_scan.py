"""Personal data never logged (issue 12, scenario 7), checked over the whole test session.

Every log record that any code of this process writes while the suite runs (the root logger at INFO
or lower; the message, its arguments and any traceback, formatted) is scanned for a mainland mobile
number (11 digits, 13x-19x, not part of a longer number), for each consumer address the tests and
the demo file complaints with, and for each plugin secret the tests configure (a string constant of
the tests whose name ends in ``SECRET``, e.g. a webhook's signing key: secrets are never logged). A
finding fails the session (exit status 1) and is reported masked.
The summary line says how many records were scanned.

Not covered here: logs of the subprocesses some tests start (the console server, the fault
benchmark's servers) — their log files are left to the tests that start them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
"""Ids are random, not data: eleven digits inside one may look like a mobile number."""
_ADDRESS_IN_SOURCE = re.compile(r"consumer_address[\"']?\s*[:=]\s*\"([^\"]{6,})\"")
_SECRET_IN_SOURCE = re.compile(r"^[A-Z_]*SECRET\w*\s*=\s*\"([^\"]{8,})\"", re.MULTILINE)


def known_addresses() -> set[str]:
    """Consumer addresses filed by the tests, benchmarks and demo (read from their sources)."""
    found: set[str] = set()
    for folder in ("tests", "benchmarks", "odr", "tenants"):
        for path in (ROOT / folder).rglob("*.py"):
            found.update(_ADDRESS_IN_SOURCE.findall(path.read_text(errors="replace")))
    return found


def known_secrets() -> set[str]:
    """Plugin secrets the tests configure (module constants named ``*SECRET*`` in tests/)."""
    found: set[str] = set()
    for path in (ROOT / "tests").rglob("*.py"):
        found.update(_SECRET_IN_SOURCE.findall(path.read_text(errors="replace")))
    return found


def mask(text: str) -> str:
    return PHONE.sub(lambda m: m.group(0)[:3] + "****" + m.group(0)[-4:], text)


class Scanner(logging.Handler):
    def __init__(self, addresses: set[str], secrets: set[str] = frozenset()) -> None:
        super().__init__(logging.INFO)
        self.addresses = sorted(addresses)
        self.secrets = sorted(secrets)
        self.records = 0
        self.findings: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a record that cannot be formatted is not ours to judge
            return
        self.records += 1
        what = []
        if PHONE.search(UUID.sub("<id>", text)):
            what.append("phone number")
        what += [f"address {a[:4]}…" for a in self.addresses if a in text]
        what += [f"plugin secret {s[:3]}…" for s in self.secrets if s in text]
        if what:
            for secret in self.secrets:
                text = text.replace(secret, "********")
            self.findings.append(f"{record.name} {record.levelname}: {', '.join(what)}: {mask(text)[:160]}")


SCANNER: Scanner | None = None


def attach() -> None:
    """Put the scanner on the root logger (again: a logging configuration, e.g. the app's, may have
    replaced the root's handlers or raised its level since)."""
    root = logging.getLogger()
    if SCANNER is not None and SCANNER not in root.handlers:
        root.addHandler(SCANNER)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)


def pytest_configure(config: pytest.Config) -> None:
    global SCANNER
    SCANNER = Scanner(known_addresses(), known_secrets())
    attach()


def pytest_runtest_setup(item: pytest.Item) -> None:
    attach()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    attach()  # after the test's fixtures, which may have configured logging


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if SCANNER is None:
        return
    logging.getLogger().removeHandler(SCANNER)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    line = (f"personal data in logs: {SCANNER.records} records scanned for phone numbers and "
            f"{len(SCANNER.addresses)} consumer addresses, {len(SCANNER.secrets)} plugin secrets,"
            f" {len(SCANNER.findings)} found")
    if reporter is not None:
        reporter.write_line(line)
        for finding in SCANNER.findings[:20]:
            reporter.write_line("  " + finding)
    if SCANNER.findings and session.exitstatus == 0:
        session.exitstatus = 1
