"""Personal data in answers (issue 12, scenario 7): is a consumer's phone or address in an HTTP answer
shown to someone who does not handle the case?

The decision is made from the data, not from a list of endpoints: every mainland mobile number in the
answer (:data:`tests.pii_scan.PHONE`) and every complaint's consumer address (longer than its masked
prefix) found in the answer is looked up among the complaints of every province, and it is a finding
when the principal who got the answer handles none of the complaints that hold it — handling as
:func:`core.complaints.access.handles` defines it (the consumer who filed it, the enterprise's
specialist while the case is in ODR, the bureau node where it sits), the principal's province included.
The platform operator and anonymous callers handle nothing. What the caller sent in the request itself
(the body, the URL) is not counted: an answer may repeat it to whoever sent it.

Used by the fuzz (``benchmarks/fuzz.py``, through :class:`Lookup` from its worker thread) and the
acceptance walk (``tests/test_odr_walk.py``, :func:`findings` on the test's own loop).
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import asyncpg
import msgspec

from tests.pii_scan import PHONE, mask

_RANDOM = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                     r"|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
"""Ids and timestamps: random or generated, not data (a fuzzed address may happen to be part of one)."""
MIN_ADDRESS = 7
"""Addresses are masked to their first 6 characters: one of 7 or more is unmasked if it is there whole."""

_COLUMNS = ("id, consumer_account_id, enterprise_id, entered_odr_at, state, node_code, node_path, "
            "consumer_phone, consumer_address")


async def _complaints(conn: asyncpg.Connection, phones: list[str], text: str) -> list[dict]:
    """Complaints of every province whose consumer phone is one of ``phones`` or whose address is in ``text``."""
    found = []
    others: dict[str, asyncpg.Connection] = {}
    try:
        for tenant in await conn.fetch(
                """SELECT t.slug, t.schema_name, c.url FROM odr.tenants t JOIN odr.clusters c ON c.name = t.cluster
                   ORDER BY t.slug"""):
            where = conn
            if tenant["url"] is not None:  # a province on another cluster: read it there (its registered URL)
                if tenant["url"] not in others:
                    others[tenant["url"]] = await asyncpg.connect(tenant["url"])
                where = others[tenant["url"]]
            rows = await where.fetch(
                f"""SELECT {_COLUMNS} FROM "{tenant['schema_name']}".complaints
                    WHERE consumer_phone = ANY($1::text[])
                       OR (length(consumer_address) >= {MIN_ADDRESS} AND strpos($2, consumer_address) > 0)""",
                phones, text)
            found += [{**dict(r), "tenant": tenant["slug"]} for r in rows]
    finally:
        for other in others.values():
            await other.close()
    return found


def _handles(principal: dict | None, row: dict) -> bool:
    from core.auth.principal import Principal
    from core.complaints.access import handles

    if principal is None or principal.get("tenant") != row["tenant"]:
        return False
    return handles(msgspec.convert(principal, Principal), row)


async def findings(conn: asyncpg.Connection, principal: dict | None, body: str, *, sent: str = "") -> list[str]:
    """What of ``body`` (an answer to ``principal``; None: anonymous) is a consumer's phone or address of
    a complaint the principal does not handle (each finding masked); ``sent``: the request's own text."""
    body = _RANDOM.sub(" ", body).replace("\x00", "")  # PostgreSQL text holds no NUL (an echo of fuzzed input may)
    phones = sorted({p for p in PHONE.findall(body) if p not in sent})
    if not phones and len(body) < MIN_ADDRESS:
        return []
    out = []
    rows = await _complaints(conn, phones, body)
    by_phone: dict[str, list[dict]] = {}
    by_address: dict[str, list[dict]] = {}
    for row in rows:
        if row["consumer_phone"] in phones:
            by_phone.setdefault(row["consumer_phone"], []).append(row)
        address = row["consumer_address"]
        if address and len(address) >= MIN_ADDRESS and address in body and address not in sent:
            by_address.setdefault(address, []).append(row)
    for phone, holders in by_phone.items():
        if not any(_handles(principal, r) for r in holders):
            out.append(f"phone {mask(phone)} of complaint {holders[0]['tenant']}/{holders[0]['id']} "
                       f"({holders[0]['state']} at {holders[0]['node_code']})")
    for address, holders in by_address.items():
        if not any(_handles(principal, r) for r in holders):
            out.append(f"address {address[:6]}… of complaint {holders[0]['tenant']}/{holders[0]['id']} "
                       f"({holders[0]['state']} at {holders[0]['node_code']})")
    return out


class Lookup:
    """:func:`findings` for synchronous callers (the fuzz's worker thread): its own event loop and one
    connection (a superuser's URL: it reads every province's complaints)."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="pii-lookup")
        self.thread.start()
        self.conn: asyncpg.Connection = self._run(asyncpg.connect(url))
        self.lock = threading.Lock()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def findings(self, principal: dict | None, body: str, *, sent: str = "") -> list[str]:
        with self.lock:
            return self._run(findings(self.conn, principal, body, sent=sent))

    def close(self) -> None:
        try:
            self._run(self.conn.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


def principal_of(authorization: str | None) -> dict | None:
    """The principal a bearer token carries (its ``extras.p``, as the API reads it; the signature was
    checked by the API that answered), or None."""
    import base64
    import json

    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    try:
        payload = authorization.split(" ", 1)[1].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims["extras"]["p"]
    except (IndexError, KeyError, ValueError):
        return None


class AnswerScan:
    """An httpx response hook that judges every answer of an ``httpx.AsyncClient`` at the moment it
    arrives (who handles a case changes as it moves): ``async with AnswerScan(client, url) as scan:``,
    then ``scan.findings`` (empty when nothing leaked) and ``scan.answers`` (how many were judged)."""

    def __init__(self, client: Any, url: str) -> None:
        self.client, self.url = client, url
        self.answers = 0
        self.findings: list[str] = []
        self.conn: asyncpg.Connection | None = None

    async def _judge(self, response: Any) -> None:
        await response.aread()
        request = response.request
        try:
            sent = request.content.decode(errors="replace")
        except Exception:  # a streamed body (multipart form) is not kept: nothing of it is excused
            sent = ""
        principal = principal_of(request.headers.get("authorization"))
        found = await findings(self.conn, principal, response.text, sent=sent + " " + str(request.url))
        self.answers += 1
        who = (principal or {}).get("username") or (principal or {}).get("role") or "anonymous"
        self.findings += [f"{request.method} {request.url.path} to {who}: {f}" for f in found]

    async def __aenter__(self) -> "AnswerScan":
        self.conn = await asyncpg.connect(self.url)
        self.client.event_hooks["response"].append(self._judge)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.client.event_hooks["response"].remove(self._judge)
        await self.conn.close()
