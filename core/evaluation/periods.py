"""Evaluation periods: monthly, quarterly or yearly, each starting on the first day of its month,
quarter or year (a wrong start is a 400 naming ``starts_on``; one period per kind and start, a second
is a 409); defined by the provincial admin, listed to every bureau role of the province."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import asyncpg

from core.auth.principal import Principal
from core.db.engine import tenant_transaction
from core.enterprises.common import FieldError
from core.evaluation import schemas as S
from core.evaluation.access import require_bureau, require_province_admin
from core.runtime import Platform

TZ = ZoneInfo("Asia/Shanghai")
PERIOD_COLUMNS = """id, kind, label, starts_on, ends_on, status, final_evaluation_id, created_by, created_at,
                     closed_by, closed_at"""


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


MONTHS = {S.PeriodKind.MONTHLY: 1, S.PeriodKind.QUARTERLY: 3, S.PeriodKind.YEARLY: 12}


def period_span(kind: S.PeriodKind, starts_on: dt.date) -> tuple[dt.date, str]:
    """(last day, label) of the period of ``kind`` starting on ``starts_on``; FieldError when
    ``starts_on`` is not the first day of a month / quarter / year."""
    if starts_on.day != 1 or (kind is S.PeriodKind.QUARTERLY and starts_on.month % 3 != 1) or (
        kind is S.PeriodKind.YEARLY and starts_on.month != 1
    ):
        first = {"monthly": "a month", "quarterly": "a quarter (Jan, Apr, Jul, Oct)", "yearly": "a year"}[kind.value]
        raise FieldError("starts_on", f"a {kind.value} period starts on the first day of {first}")
    ends_on = add_months(starts_on, MONTHS[kind]) - dt.timedelta(days=1)
    if kind is S.PeriodKind.MONTHLY:
        label = f"{starts_on:%Y-%m}"
    elif kind is S.PeriodKind.QUARTERLY:
        label = f"{starts_on.year}-Q{(starts_on.month - 1) // 3 + 1}"
    else:
        label = str(starts_on.year)
    return ends_on, label


def day_start(day: dt.date) -> dt.datetime:
    """Start of ``day`` in Asia/Shanghai."""
    return dt.datetime.combine(day, dt.time(), TZ)


def period_of(row: asyncpg.Record) -> S.Period:
    return S.Period(
        id=str(row["id"]), kind=S.PeriodKind(row["kind"]), label=row["label"], starts_on=row["starts_on"],
        ends_on=row["ends_on"], status=row["status"],
        final_evaluation_id=str(row["final_evaluation_id"]) if row["final_evaluation_id"] else None,
        created_by=row["created_by"], created_at=row["created_at"], closed_by=row["closed_by"],
        closed_at=row["closed_at"],
    )


async def create_period(platform: Platform, tenant: str, principal: Principal, body: S.PeriodCreate) -> S.Period:
    require_province_admin(principal, tenant)
    await platform.tenant(tenant)
    ends_on, label = period_span(body.kind, body.starts_on)
    async with tenant_transaction(tenant) as conn:
        row = await conn.fetchrow(
            f"""INSERT INTO evaluation_periods (kind, label, starts_on, ends_on, created_by)
                VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, starts_on) DO NOTHING RETURNING {PERIOD_COLUMNS}""",
            body.kind.value, label, body.starts_on, ends_on, principal.id,
        )
        if row is None:
            raise FieldError("starts_on", f"the {body.kind.value} period {label} already exists", 409)
    return period_of(row)


async def list_periods(platform: Platform, tenant: str, principal: Principal) -> list[S.Period]:
    require_bureau(principal, tenant)
    await platform.tenant(tenant)
    async with tenant_transaction(tenant) as conn:
        rows = await conn.fetch(f"SELECT {PERIOD_COLUMNS} FROM evaluation_periods ORDER BY starts_on DESC, kind")
    return [period_of(r) for r in rows]
