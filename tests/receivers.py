"""Real local receivers for the delivery channels' tests: an HTTP server (webhooks, an SMS gateway's
API) and an SMTP server (aiosmtpd), each on a free loopback port in a thread of its own."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpReceiver:
    """Records every POST (path, headers, body). ``status`` is the answer's status; ``delay`` seconds
    are waited before answering; ``answer`` is the body sent back."""

    def __init__(self, *, status: int = 200, delay: float = 0.0, answer: bytes = b'{"ok": true}') -> None:
        self.status = status
        self.delay = delay
        self.answer = answer
        self.requests: list[dict] = []
        self.arrived: list[bytes] = []
        """Bodies of the requests received so far, answered or not (recorded before the delay)."""
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.arrived.append(body)
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(receiver.answer)))
                    self.end_headers()
                    self.wfile.write(receiver.answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender went away (a killed worker): it counts as received, unanswered

            def log_message(self, *args) -> None:  # keep the test output (and its PII scan) quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def arrivals(self, marker: bytes) -> int:
        """How many requests holding ``marker`` arrived (answered or still being answered)."""
        with self._lock:
            return sum(marker in body for body in self.arrived)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str | None = None) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if path is None or r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on a free port; ``messages`` holds what it accepted."""

    def __init__(self) -> None:
        self.inbox = _Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        return list(self.inbox.messages)

    def close(self) -> None:
        self.controller.stop()
