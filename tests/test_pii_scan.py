"""The session's log scan for personal data (tests/pii_scan.py) is not blind: a phone number or a
consumer address written to a log is found (and taken back here, so that the session stays green)."""

from __future__ import annotations

import logging

from tests import pii_scan


def test_a_logged_phone_number_or_address_is_found():
    scanner = pii_scan.SCANNER
    assert scanner is not None and len(scanner.addresses) >= 3
    before = len(scanner.findings)
    log = logging.getLogger("tests.pii_probe")
    log.info("consumer called from %s", "13700001111")
    log.warning("sent to %s", sorted(scanner.addresses)[0])
    log.info("complaint 20261204-0000001 masked 137****1111, amount 128.00, number 12345678901234")
    found = scanner.findings[before:]
    del scanner.findings[before:]
    assert len(found) == 2, found
    assert "phone number" in found[0] and "137****1111" in found[0] and "13700001111" not in found[0]
    assert "address" in found[1]


def test_a_logged_plugin_secret_is_found_and_reported_masked():
    scanner = pii_scan.SCANNER
    assert scanner is not None and "test-webhook-secret" in scanner.secrets
    before = len(scanner.findings)
    logging.getLogger("tests.pii_probe").warning("webhook configured with %s", "test-webhook-secret")
    found = scanner.findings[before:]
    del scanner.findings[before:]
    assert len(found) == 1 and "plugin secret" in found[0] and "test-webhook-secret" not in found[0], found
