"""Builders for complaint tests: ODR units (direct rows; the enterprise API has its own tests),
consumer accounts through the public sign-up API."""

from __future__ import annotations

import random
import string
import uuid

from core.auth.accounts import create_account
from core.auth.principal import Role
from core.db.engine import as_platform, tenant_transaction

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def credit_code() -> str:
    return "91" + "".join(random.choice(ALPHABET) for _ in range(16))


async def active_unit(tenant: str, node_code: str, *, name: str | None = None) -> dict:
    """An active ODR unit with one specialist account (password demo12315)."""
    code = credit_code()
    username = "spec-" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    async with tenant_transaction(tenant) as conn:
        eid = await conn.fetchval(
            """INSERT INTO enterprises (name, credit_code, unit_type, node_code, status, approved_at, approved_by)
               VALUES ($1, $2, 'enterprise', $3, 'active', now(), 'tests') RETURNING id""",
            name or f"测试电商{code[-4:]}有限公司",
            code,
            node_code,
        )
        async with as_platform(conn) as pconn:
            await create_account(pconn, username=username, password="demo12315", role=Role.ENTERPRISE_SPECIALIST,
                                 tenant=tenant, enterprise_id=eid, display_name="ODR专员")
    return {"id": str(eid), "credit_code": code, "specialist": username}


async def consumer(client, tenant: str) -> str:
    username = f"c-{uuid.uuid4().hex[:10]}"
    r = await client.post(f"/public/{tenant}/consumers", json={"username": username, "password": "demo12315-pw", "display_name": "张三"})
    assert r.status_code == 201, r.text
    return username
