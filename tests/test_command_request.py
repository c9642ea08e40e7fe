"""CommandRequest (core.api.requests): the body is read once ``Content-Length`` bytes have arrived,
without waiting for a closing empty message; the body limit and chunked bodies work as in Litestar."""

from __future__ import annotations

import asyncio
import json

from litestar import Litestar, post
from litestar.params import JSONBody

from core.api.requests import CommandRequest


@post("/echo", request_class=CommandRequest, request_max_body_size=64)
async def echo(data: JSONBody[dict]) -> dict:
    return data


APP = Litestar([echo])


async def call(messages: list[dict], headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes, int]:
    """POST /echo with ``messages`` as what the server hands over; returns (status, body, messages read).
    Reading past the given messages blocks, like a server whose client sent nothing more."""
    queue = list(messages)
    read = 0

    async def receive() -> dict:
        nonlocal read
        if not queue:
            await asyncio.sleep(3600)
        read += 1
        return queue.pop(0)

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/echo", "raw_path": b"/echo", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {},
    }
    await asyncio.wait_for(APP(scope, receive, send), 5)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, read


async def test_the_body_is_complete_at_content_length_without_the_closing_message():
    payload = json.dumps({"a": "甲", "n": 1}).encode()
    status, body, read = await call(
        [{"type": "http.request", "body": payload, "more_body": True}],  # granian: the body, then (later) b""
        [(b"content-length", str(len(payload)).encode())],
    )
    assert (status, json.loads(body), read) == (201, {"a": "甲", "n": 1}, 1)


async def test_a_body_in_pieces_and_a_chunked_body_are_read_whole():
    payload = json.dumps({"a": "x" * 20}).encode()
    pieces = [{"type": "http.request", "body": payload[:7], "more_body": True},
              {"type": "http.request", "body": payload[7:], "more_body": True}]
    status, body, read = await call(pieces, [(b"content-length", str(len(payload)).encode())])
    assert (status, json.loads(body), read) == (201, {"a": "x" * 20}, 2)
    closing = [*pieces, {"type": "http.request", "body": b"", "more_body": False}]
    status, body, read = await call(closing, [])  # no Content-Length: read to the closing message
    assert (status, json.loads(body), read) == (201, {"a": "x" * 20}, 3)


async def test_the_body_limit_holds():
    payload = json.dumps({"a": "x" * 100}).encode()
    status, _, read = await call([{"type": "http.request", "body": payload, "more_body": False}],
                                 [(b"content-length", str(len(payload)).encode())])
    assert status == 413 and read == 0  # refused on the announced length, nothing read
    status, _, _ = await call([{"type": "http.request", "body": payload, "more_body": False}], [])
    assert status == 413
