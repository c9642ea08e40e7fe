"""The request class of the JSON command endpoints (complaint intake and actions)."""

from __future__ import annotations

import math
from typing import Any

from litestar import Request
from litestar.exceptions import InternalServerException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import Empty


class CommandRequest(Request[Any, Any, Any]):
    """A request whose :meth:`body` stops reading once the announced ``Content-Length`` has arrived.

    granian hands a body over in one message marked ``more_body`` and then an empty closing one;
    each message is a round trip between granian's Rust thread and the event loop. Stopping at
    ``Content-Length`` (which the server enforces on the wire) saves the second one on every POST.
    Without ``Content-Length`` (chunked), or for streams and forms, Litestar's reading applies. The
    body size limit is enforced as in :meth:`Request.stream`."""

    __slots__ = ()

    async def body(self) -> bytes:
        if self._body is not Empty:
            return self._body
        if (cached := self._connection_state.body) is not Empty:
            self._body = cached
            return cached
        length = self.content_length
        if length is None:
            return await super().body()
        if not self.is_connected:
            raise InternalServerException("stream consumed")
        limit = self.route_handler.resolve_request_max_body_size() or math.inf
        if length > limit:
            raise RequestEntityTooLarge
        chunks: list[bytes] = []
        received = 0
        more = length > 0
        while more:
            event = await self.receive()
            if event["type"] == "http.disconnect":
                raise InternalServerException("client disconnected prematurely")
            if event["type"] != "http.request":
                continue
            chunk = event["body"]
            if chunk:
                received += len(chunk)
                if received > limit:
                    raise RequestEntityTooLarge
                chunks.append(chunk)
            more = event.get("more_body", False)
            if not more:
                self.is_connected = False
            elif received >= length:
                break
        body = self._body = self._connection_state.body = b"".join(chunks)
        return body
