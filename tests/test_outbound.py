"""Channels never reach the platform's own network: the checked outbound client refuses loopback,
link-local (cloud metadata), private, shared, multicast, reserved and unspecified destinations after
DNS resolution and on every redirect, unless the operator allows the host by name
(ODR_OUTBOUND_ALLOW_HOSTS; the tests allow 127.0.0.1 for their local receivers); a refused delivery is
dead-lettered at once with its reason, and a configuration naming such a destination is refused at
save time with 400 naming the field. Real sockets, real local receivers, the real delivery worker."""

from __future__ import annotations

import ipaddress
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.db.engine import tenant_transaction
from core.notifications.delivery_worker import DeliveryWorker
from core.notifications.outbound import Outbound, refused_kind
from odr_plugin_api import DestinationRefused
from tests.conftest import login
from tests.receivers import HttpReceiver, SmtpReceiver
from tests.test_delivery import FENGJING, SECRET, T, activate, deliveries
from tests.test_timers import until

REFUSED = ["127.0.0.1", "127.9.9.9", "::1", "169.254.169.254", "fe80::1", "10.1.2.3", "172.16.0.1", "192.168.1.1",
           "fc00::1", "fd12::1", "100.64.0.1", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "240.0.0.1",
           "255.255.255.255", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1",
           "192.0.2.1", "198.18.0.1"]
PUBLIC = ["8.8.8.8", "1.1.1.1", "203.119.25.1", "2400:3200::1", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", REFUSED)
def test_internal_addresses_are_refused(address):
    assert refused_kind(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_not(address):
    assert refused_kind(ipaddress.ip_address(address)) is None


def test_requests_to_internal_destinations_are_refused_unless_the_host_is_allowed_by_name():
    receiver = HttpReceiver()
    try:
        for url in (receiver.url(), receiver.url().replace("127.0.0.1", "localhost"),
                    receiver.url().replace("127.0.0.1", "[::ffff:127.0.0.1]")):
            with pytest.raises(DestinationRefused, match="loopback"):
                Outbound().request("POST", url, body=b"x", timeout=5)
        with pytest.raises(DestinationRefused):  # allowed on another port only
            Outbound(frozenset({f"127.0.0.1:{receiver.port + 1}"})).request("POST", receiver.url(), body=b"x", timeout=5)
        with pytest.raises(DestinationRefused):
            Outbound(frozenset({"127.0.0.1"})).connect("localhost", receiver.port)  # allowed by name: not another name
        assert receiver.received() == []
        for allow in ("127.0.0.1", f"127.0.0.1:{receiver.port}"):
            answer = Outbound(frozenset({allow})).request("POST", receiver.url(), body=b"allowed", timeout=5)
            assert answer.status == 200
        assert [r["body"] for r in receiver.received()] == [b"allowed", b"allowed"]
        sock = Outbound(frozenset({"localhost"})).connect("localhost", receiver.port, 5)
        assert sock.getpeername()[0] in ("127.0.0.1", "::1")  # connected to the checked address itself
        sock.close()
    finally:
        receiver.close()


def test_the_email_channel_connects_to_its_smtp_host_only_through_the_checked_client():
    from odr_channel_email import EmailConfig, smtp_over

    smtp = SmtpReceiver()
    try:
        for security in ("none", "starttls", "tls"):
            cfg = EmailConfig(host="localhost", port=smtp.port, security=security, timeout_seconds=5)
            with pytest.raises(DestinationRefused, match="loopback"):
                smtp_over(Outbound(frozenset({"127.0.0.1"})), cfg)  # allowed by another name only
        with smtp_over(Outbound(frozenset({"localhost"})), EmailConfig(host="localhost", port=smtp.port,
                                                                      security="none", timeout_seconds=5)) as client:
            assert client.noop()[0] == 250
    finally:
        smtp.close()


class _Redirect:
    """An HTTP server answering every request with ``status`` and ``Location: target``."""

    def __init__(self, target: str, status: int = 307) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status", [302, 307])
def test_every_redirect_is_checked_again(status):
    inner = HttpReceiver()
    hop = _Redirect(inner.url().replace("127.0.0.1", "localhost"), status)
    try:
        allowed = Outbound(frozenset({f"127.0.0.1:{hop.port}"}))  # the first hop only
        with pytest.raises(DestinationRefused, match="localhost"):
            allowed.request("POST", f"http://127.0.0.1:{hop.port}/start", body=b"x", timeout=5)
        assert inner.received() == []
        both = Outbound(frozenset({f"127.0.0.1:{hop.port}", "localhost"}))
        answer = both.request("POST", f"http://127.0.0.1:{hop.port}/start", body=b"x", timeout=5)
        assert answer.status == (501 if status == 302 else 200)  # 302: a GET, which the receiver does not serve
        assert len(inner.received()) == (0 if status == 302 else 1)
    finally:
        hop.close()
        inner.close()


@pytest.mark.parametrize("plugin, config, field", [
    ("odr_webhook", {"url": "http://169.254.169.254/latest/meta-data/"}, "config.url"),
    ("odr_webhook", {"url": "http://10.0.0.7:8080/hook"}, "config.url"),
    ("odr_webhook", {"url": "https://localhost/hook"}, "config.url"),
    ("odr_webhook", {"url": "http://[::ffff:192.168.0.1]/hook"}, "config.url"),
    ("odr_email", {"host": "192.168.10.2", "port": 25}, "config.host"),
    ("odr_email", {"host": "localhost", "port": 587}, "config.host"),
])
async def test_saving_a_channel_that_points_inside_is_refused_naming_the_field(client, demo, plugin, config, field):
    officer = await login(client, "js-officer")
    url = f"/api/tenants/{T}/policy/{FENGJING}/plugins/{plugin}"
    before = (await client.get(f"/api/tenants/{T}/policy/{FENGJING}", headers=officer)).json()
    r = await client.put(url, json={"active": True, "config": {**config, "secret": SECRET} if plugin == "odr_webhook"
                                    else config}, headers=officer)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and "refused" in r.json()["detail"]
    assert (await client.get(f"/api/tenants/{T}/policy/{FENGJING}", headers=officer)).json() == before
    # an allowed host (the tests allow 127.0.0.1) and a host that does not resolve now are accepted
    for ok in ("http://127.0.0.1:9/hook", "https://receiver.invalid/hook") if plugin == "odr_webhook" else ():
        r = await client.put(url, json={"active": False, "config": {"url": ok}}, headers=officer)
        assert r.status_code == 200, r.text


async def test_a_delivery_to_an_internal_destination_is_dead_lettered_at_once_and_never_sent(demo):
    receiver = HttpReceiver()
    marker = f"ssrf-{uuid.uuid4().hex[:8]}"
    sender = DeliveryWorker(demo, poll_seconds=0.1, retry_seconds=0.2, max_attempts=5, lease_seconds=2, name="d-ssrf")
    try:
        # saved past the API's check (as if the name resolved elsewhere at save time): the send checks again
        await activate(demo, FENGJING, "odr_webhook", {"url": receiver.url().replace("127.0.0.1", "localhost"),
                                                       "secret": SECRET})
        async with tenant_transaction(T) as conn:
            await conn.execute("""INSERT INTO notifications (recipient, kind, payload)
                                  VALUES ('node:' || $1, 'deadline_breached', jsonb_build_object('complaint_number', $2::text))""",
                               FENGJING, marker)
        sender.start()
        dead = await until(lambda: deliveries("node_code = $1 AND state = 'dead' AND message->'payload'->>'complaint_number' = $2",
                                              FENGJING, marker), timeout=20, what="dead-lettered delivery")
        assert [d["attempts"] for d in dead] == [1]
        assert "refused" in dead[0]["last_error"] and "loopback" in dead[0]["last_error"]
        assert receiver.received() == []
    finally:
        await sender.stop()
        await activate(demo, FENGJING, "odr_webhook", None, active=False)
        receiver.close()


async def test_the_consoles_policy_form_refuses_an_internal_destination_next_to_the_field(demo):
    from odr.app import create_app
    from tests.console_helpers import TOKEN, signed_in

    console = await signed_in(create_app(demo, manage_lifecycle=False), "js-officer")
    page = await console.get(f"/ui/policy?node={FENGJING}")
    form = {"_csrf_token": TOKEN.search(page.text).group(1), "active": "on", "cfg.url": "http://169.254.169.254/latest",
            "cfg.secret": SECRET, "cfg.timeout_seconds": "4", "cfg.kinds": ""}
    refused = await console.post(f"/ui/policy/{FENGJING}/plugins/odr_webhook", data=form)
    assert refused.status_code == 400 and 'id="cfg-odr_webhook-url-err"' in refused.text
    assert "link-local" in refused.text
