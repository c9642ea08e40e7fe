"""The demo complaints of one unit, generated from its plan: when each entered ODR, was contacted,
got feedback, closed or left ODR, its rating, subject and amount.

Contract: :func:`plan_cases` is deterministic for a given ``rng`` state and ``now``; of ``count``
cases the first ``plan.open`` are still running (entered within the last day), the next
``plan.gave_up`` left ODR without feedback, then ``plan.settlement_rate`` of the rest closed settled
and the others left ODR on an unsettled feedback (Art. 13); finished cases entered 13 to :data:`DAYS`
days before ``now``.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass

from core.complaints import states as S
from odr.demo.units import UnitPlan

DAYS = 90
"""How many days of history the demo has."""


@dataclass
class Case:
    id: uuid.UUID
    unit: uuid.UUID
    plan: UnitPlan
    state: str
    created: dt.datetime
    entered: dt.datetime
    contacted: dt.datetime | None
    feedback_at: dt.datetime | None
    settled: bool | None
    closed: dt.datetime | None
    left_at: dt.datetime | None
    rating: int | None
    subject: str
    amount: float


def plan_cases(plan: UnitPlan, unit_id: uuid.UUID, count: int, now: dt.datetime, rng: random.Random) -> list[Case]:
    opened = min(plan.open, count)
    gave_up = min(plan.gave_up, count - opened)
    with_feedback = count - opened - gave_up
    settled = round(with_feedback * plan.settlement_rate)
    out = []
    for i in range(count):
        subject = plan.subjects[i % len(plan.subjects)]
        amount = float(rng.choice((39, 89, 129, 199, 299, 499, 899, 1299, 2999)))
        if i < opened:  # still running: entered within the last day
            entered = now - dt.timedelta(hours=rng.uniform(2, 20))
            contacted = entered + dt.timedelta(hours=1) if i % 3 else None
            state = S.CONTACTED if contacted else S.WITH_ENTERPRISE
            if contacted and i % 2 == 0:
                state = S.NEGOTIATING
            out.append(Case(uuid.uuid4(), unit_id, plan, state, entered - dt.timedelta(minutes=30), entered,
                             contacted, None, None, None, None, None, subject, amount))
            continue
        entered = now - dt.timedelta(days=rng.uniform(13, DAYS), hours=0)
        late_contact = rng.random() < plan.late_contact_share
        contact_hours = rng.uniform(50, 80) if late_contact else rng.uniform(2, 40)
        if rng.random() < 0.03:
            contact_hours = rng.uniform(100, 150)  # late under any policy
        contacted = entered + dt.timedelta(hours=contact_hours)
        created = entered - dt.timedelta(hours=rng.uniform(1, 30))
        if i < opened + gave_up:  # the consumer gave up on the negotiation: ordinary complaint route
            left_at = contacted + dt.timedelta(days=rng.uniform(1, 4))
            out.append(Case(uuid.uuid4(), unit_id, plan, S.LEFT_ODR, created, entered, contacted, None, None,
                             None, left_at, None, subject, amount))
            continue
        lo, hi = plan.cycle_days
        cycle = rng.uniform(lo, hi) if rng.random() < 0.75 else rng.uniform(7.5, 11.5)
        cycle = max(cycle, contact_hours / 24 + 0.8)
        closed = entered + dt.timedelta(days=cycle)
        feedback_at = closed - dt.timedelta(hours=rng.uniform(3, 18))
        is_settled = (i - opened - gave_up) < settled
        if is_settled:
            rating = rng.choice((5, 5, 5, 4, 4, 4, 3, 2)) if rng.random() < 0.85 else None
            out.append(Case(uuid.uuid4(), unit_id, plan, S.CLOSED, created, entered, contacted, feedback_at, True,
                             closed, None, rating, subject, amount))
        else:  # feedback says not settled: the case leaves ODR (Art. 13)
            rating = rng.choice((1, 2, 2, 3)) if rng.random() < 0.5 else None
            out.append(Case(uuid.uuid4(), unit_id, plan, S.LEFT_ODR, created, entered, contacted, feedback_at, False,
                             None, closed, rating, subject, amount))
    return out
