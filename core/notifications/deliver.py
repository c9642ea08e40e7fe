"""Record a notification (inside the caller's tenant transaction) and deliver it after commit.

Contract:
- :func:`record` inserts one ``notifications`` row per recipient in the caller's transaction, so a
  rolled-back action leaves no notice. Recipients are strings: ``enterprise:<uuid>`` (the
  enterprise's specialists), ``node:<code>`` (the bureau node; users above it see it too),
  ``account:<uuid>`` (one account).
- ``payload`` must not carry a consumer's personal data (name, phone, address): complaint number,
  milestone and due moment are enough for every recipient to open the case with their own rights.
- :func:`deliver` runs after commit: publishes each row on the bus, then calls the ``odr_notify``
  hook of the plugins active at the node (SMS, WeChat, ...), handing them the platform's checked
  outbound client as ``net`` (:mod:`core.notifications.outbound`). Every failure is logged by type and
  contained: delivery never raises, and the recorded rows stay the source of truth.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import asyncpg
import msgspec

from core.notifications.bus import Bus, Notice

log = logging.getLogger(__name__)


class Outgoing(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded notification waiting for delivery after commit."""

    tenant: str
    node_code: str | None
    kind: str
    recipients: list[str]
    payload: dict[str, Any]
    notices: list[Notice]


async def record(
    conn: asyncpg.Connection,
    *,
    tenant: str,
    kind: str,
    recipients: list[str],
    payload: dict[str, Any],
    node_code: str | None = None,
    complaint_id: uuid.UUID | None = None,
    enterprise_id: uuid.UUID | None = None,
) -> Outgoing:
    rows = await conn.fetch(
        """INSERT INTO notifications (recipient, kind, complaint_id, enterprise_id, payload)
           SELECT r, $2, $3, $4, $5::jsonb FROM unnest($1::text[]) AS r
           RETURNING id, recipient, created_at""",
        recipients,
        kind,
        complaint_id,
        enterprise_id,
        msgspec.json.encode(payload).decode(),
    )
    notices = [
        Notice(
            id=r["id"],
            tenant=tenant,
            recipient=r["recipient"],
            kind=kind,
            complaint_id=str(complaint_id) if complaint_id else None,
            enterprise_id=str(enterprise_id) if enterprise_id else None,
            payload=payload,
            created_at=r["created_at"],
        )
        for r in rows
    ]
    return Outgoing(
        tenant=tenant, node_code=node_code, kind=kind, recipients=recipients, payload=payload, notices=notices
    )


async def deliver(platform, bus: Bus | None, out: Outgoing) -> None:
    """Push ``out`` to connected clients and to the vendor plugins active at its node. Never raises."""
    if bus is not None:
        for notice in out.notices:
            try:
                await bus.publish(notice)
            except Exception as exc:
                log.warning("live push of notification %s failed (%s); it stays recorded", notice.id, type(exc).__name__)
                break
    if out.node_code is None:
        return
    try:
        scope, active = await platform.scope(out.tenant, out.node_code)
    except Exception as exc:
        log.warning("no plugin scope for %s/%s (%s); odr_notify not called", out.tenant, out.node_code, type(exc).__name__)
        return
    if not platform.host.has_active_impl("odr_notify", active):
        return  # no vendor notification plugin here: no thread hop
    try:
        # Vendor plugins may block on the network: keep the event loop free. The host contains and
        # counts each plugin's failure (PluginHost.call_all).
        await asyncio.to_thread(
            platform.host.call_all,
            "odr_notify",
            active=active,
            scope=scope,
            kind=out.kind,
            recipients=list(out.recipients),
            payload=dict(out.payload),
            net=platform.outbound,  # the checked outbound client (core.notifications.outbound)
        )
    except Exception as exc:
        log.error("odr_notify call failed (%s); notification %s stays recorded", type(exc).__name__, out.kind)
