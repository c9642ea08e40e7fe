"""A small keep-alive HTTP/1.1 load generator on asyncio (loopback only), light enough that the
client does not dominate a 2-core machine. Used by the benchmarks; not a general HTTP client.

Each connection is an :class:`asyncio.Protocol` that sends a request in one write and parses the
response straight from the received bytes (status line, ``Content-Length``, body): no stream
reader, no per-line awaits. One request at a time per connection (no pipelining), so latency is
measured from the write of a request to the last byte of its response.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed: BaseException | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            response = self._parse()
            if response is not None:
                self.waiter.set_result(response)

    def connection_lost(self, exc) -> None:
        self.closed = exc or ConnectionError("connection closed by the server")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(self.closed)

    def _parse(self) -> tuple[int, bytes] | None:
        buf = self.buffer
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buf[:end])
        length = 0
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = lower.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        elif b"\r\ntransfer-encoding:" in lower:
            raise NotImplementedError("chunked responses are not supported by this load generator")
        total = end + 4 + length
        if len(buf) < total:
            return None
        status = int(head[9:12])
        body = bytes(buf[end + 4 : total])
        del buf[:total]
        return status, body


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.protocol: _Protocol | None = None
        self._prefix = f"Host: {host}:{port}\r\n".encode()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.protocol = await loop.create_connection(_Protocol, self.host, self.port)

    @staticmethod
    def head(headers: dict[str, str]) -> bytes:
        """Request header lines (each ending in CRLF) to pass to :meth:`send` as ``extra``."""
        return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()

    async def send(self, method: str, path: str, body: bytes, extra: bytes) -> tuple[int, bytes]:
        p = self.protocol
        if p.closed is not None:
            raise p.closed
        p.waiter = asyncio.get_running_loop().create_future()
        p.transport.write(
            b"%s %s HTTP/1.1\r\n%sContent-Length: %d\r\n%s\r\n%s"
            % (method.encode(), path.encode(), self._prefix, len(body), extra, body)
        )
        return await p.waiter

    async def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        return await self.send(method, path, body, self.head(headers))

    def close(self) -> None:
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.close()


async def drive(
    host: str, port: int, *, requests: int, concurrency: int, make: Callable[[int], tuple[str, str, bytes, dict]]
) -> tuple[float, list[float], dict[int, int]]:
    """Send ``requests`` requests over ``concurrency`` keep-alive connections; return (seconds,
    latencies in ms, status counts). ``make(i)`` gives request ``i``'s (method, path, body, headers)."""
    counter = iter(range(requests))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker() -> None:
        conn = Connection(host, port)
        await conn.open()
        clock = time.perf_counter
        last: dict | None = None  # the header lines are encoded again only when make() gives another dict
        extra = b""
        try:
            for i in counter:
                method, path, body, headers = make(i)
                if headers is not last:
                    last, extra = headers, Connection.head(headers)
                t0 = clock()
                status, _ = await conn.send(method, path, body, extra)
                latencies.append((clock() - t0) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
