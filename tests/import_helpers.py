"""A throw-away province for the import tests: a province, a city, two districts and an office, ODR units
with valid credit codes in one district, and accounts at each level."""

from __future__ import annotations

import random

from core.auth.accounts import create_account
from core.auth.principal import Role
from core.db.engine import as_platform, tenant_transaction
from benchmarks.import_sample import valid_credit_code
from tenants.manifest import DemoAccount, Manifest, NodeSpec
from tenants.onboarding import onboard

DISTRICT, OTHER = "990101", "990102"
DEPARTMENTS = ["测试区市场监督管理局", "另一区市场监督管理局"]
ACCOUNTS = {"province": "imp-admin", "city": "imp-city", "district": "imp-district", "office": "imp-office"}


def manifest(slug: str) -> Manifest:
    return Manifest(slug=slug, name="导入测试省", nodes=[
        NodeSpec(code="990000", name="导入测试省市场监督管理局", level="province"),
        NodeSpec(code="990100", parent="990000", name="测试市市场监督管理局", level="city"),
        NodeSpec(code=DISTRICT, parent="990100", name=DEPARTMENTS[0], level="district"),
        NodeSpec(code=OTHER, parent="990100", name=DEPARTMENTS[1], level="district"),
        NodeSpec(code="990101-01", parent=DISTRICT, name="测试所", level="office"),
    ], demo_accounts=[
        DemoAccount(username=f"{ACCOUNTS['province']}-{slug}", password="demo12315", role="province_admin", node="990000"),
        DemoAccount(username=f"{ACCOUNTS['city']}-{slug}", password="demo12315", role="bureau_officer", node="990100"),
        DemoAccount(username=f"{ACCOUNTS['district']}-{slug}", password="demo12315", role="bureau_officer", node=DISTRICT),
        DemoAccount(username=f"{ACCOUNTS['office']}-{slug}", password="demo12315", role="office_head", node="990101-01"),
    ]).validate()


def account(slug: str, level: str) -> str:
    return f"{ACCOUNTS[level]}-{slug}"


async def import_province(platform, slug: str, *, units: int = 5, seed: int = 7) -> list[tuple[str, str]]:
    """Onboard the province; (name, credit code) of its active ODR units (in the district)."""
    await onboard(manifest(slug), host=platform.host, actor="tests", demo=True)
    rng = random.Random(seed)
    made = []
    async with tenant_transaction(slug) as conn:
        for i in range(units):
            code, name = valid_credit_code(rng), f"导入测试电商{i}有限公司"
            eid = await conn.fetchval(
                """INSERT INTO enterprises (name, credit_code, unit_type, node_code, status, approved_at, approved_by)
                   VALUES ($1, $2, 'enterprise', $3, 'active', now(), 'tests') RETURNING id""", name, code, DISTRICT)
            if i == 0:
                async with as_platform(conn):
                    await create_account(conn, username=f"imp-spec-{slug}", password="demo12315",
                                         role=Role.ENTERPRISE_SPECIALIST, tenant=slug, enterprise_id=eid)
            made.append((name, code))
    return made

