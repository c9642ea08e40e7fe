"""Each account's choice of delivery channels: on or off per channel, with its e-mail address or phone.

Contract:
- The channels offered are the installed channel plugins that need an address (``PluginInfo.address``
  ``"email"`` or ``"phone"``); endpoint channels (the webhook) are the bureau's, configured per node.
- A choice is saved in the account's tenant with the account's role, node and enterprise (copied from
  the principal), which the delivery worker matches against a notification's recipient
  (``account:``, ``enterprise:`` for specialists, ``node:`` for the bureau users of that node).
- Switching a channel on needs a valid address (e-mail: ``name@domain.tld``; phone: a mainland mobile
  number, 11 digits starting with 1); a bad one is a ValueError naming ``address``. The address is
  personal data: shown to its owner only, never logged.
- Nothing is sent by a channel that the bureau has not activated at the node of the notification.
"""

from __future__ import annotations

import datetime as dt
import re

import asyncpg
import msgspec

from core.auth.principal import Principal
from odr_plugin_api import Family

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")


class ChannelChoice(msgspec.Struct, kw_only=True):
    channel: str
    title: str
    address_kind: str
    """``email`` or ``phone``."""
    enabled: bool = False
    address: str | None = None
    updated_at: dt.datetime | None = None


class ChoiceChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool
    address: str | None = None


def address_channels(host) -> dict[str, tuple[str, str]]:
    """channel plugin -> (title, address kind) of the loaded channels that need an address."""
    return {name: (info.title, info.address) for name, info in sorted(host.infos.items())
            if Family.CHANNEL in info.families and info.address in ("email", "phone")}


def check_address(kind: str, address: str | None, *, enabled: bool) -> str | None:
    value = (address or "").strip()
    if not value:
        if enabled:
            raise ValueError(f"address: an {'e-mail address' if kind == 'email' else 'phone number'} is required to switch this channel on")
        return None
    if kind == "email" and not EMAIL_RE.match(value):
        raise ValueError("address: not an e-mail address (name@domain.tld)")
    if kind == "phone":
        value = value.replace(" ", "").replace("-", "")
        if not PHONE_RE.match(value):
            raise ValueError("address: not a mainland mobile number (11 digits starting with 1)")
    return value


async def choices(conn: asyncpg.Connection, host, principal: Principal) -> list[ChannelChoice]:
    saved = {r["channel"]: r for r in await conn.fetch(
        "SELECT channel, enabled, address, updated_at FROM channel_preferences WHERE account_id = $1::uuid",
        principal.id)}
    out = []
    for name, (title, kind) in address_channels(host).items():
        row = saved.get(name)
        out.append(ChannelChoice(channel=name, title=title, address_kind=kind,
                                 enabled=bool(row and row["enabled"]), address=row["address"] if row else None,
                                 updated_at=row["updated_at"] if row else None))
    return out


async def save_choice(conn: asyncpg.Connection, host, principal: Principal, channel: str,
                      change: ChoiceChange) -> ChannelChoice:
    offered = address_channels(host)
    if channel not in offered:
        raise KeyError(f"channel {channel!r} not found")
    title, kind = offered[channel]
    address = check_address(kind, change.address, enabled=change.enabled)
    row = await conn.fetchrow(
        """INSERT INTO channel_preferences (account_id, channel, enabled, address, account_role, node_code, enterprise_id)
           VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::uuid)
           ON CONFLICT (account_id, channel) DO UPDATE SET enabled = EXCLUDED.enabled, address = EXCLUDED.address,
               account_role = EXCLUDED.account_role, node_code = EXCLUDED.node_code,
               enterprise_id = EXCLUDED.enterprise_id, updated_at = now()
           RETURNING enabled, address, updated_at""",
        principal.id, channel, change.enabled, address, principal.role.value, principal.node, principal.enterprise_id)
    return ChannelChoice(channel=channel, title=title, address_kind=kind, enabled=row["enabled"],
                         address=row["address"], updated_at=row["updated_at"])
