"""A published evaluation for the demo provinces (``odr demo``), so the public results page has content."""

from __future__ import annotations

import datetime as dt

from core.auth.principal import Principal, Role
from core.db.engine import tenant_transaction
from core.evaluation import schemas as S
from core.evaluation import periods, service
from core.runtime import Platform


async def seed_demo_evaluation(platform: Platform, tenant: str) -> S.Evaluation | None:
    """Evaluate and publish the last full month (Asia/Shanghai) when the tenant has no period yet; the
    run is made in the name of ``demo`` as the provincial bureau. None when there was something already."""
    async with tenant_transaction(tenant) as conn:
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM evaluation_periods)"):
            return None
    root = next(n for n in (await platform.nodes(tenant)).values() if n.level == "province")
    admin = Principal(id="demo", username="demo", role=Role.PROVINCE_ADMIN, tenant=tenant, node_path=root.path)
    this_month = dt.datetime.now(periods.TZ).date().replace(day=1)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
    period = await periods.create_period(platform, tenant, admin,
                                         S.PeriodCreate(kind=S.PeriodKind.MONTHLY, starts_on=last_month))
    run = await service.run_evaluation(platform, tenant, admin, period.id, S.EvaluationSettings())
    return await service.publish(platform, tenant, admin, run.id)
