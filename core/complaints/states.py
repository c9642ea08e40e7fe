"""The complaint state machine (DOMAIN.md, "Complaint lifecycle"; Art. 12–14, 17).

Each action names the states it may start from, the state it leads to (None: the state is kept, e.g.
supervision actions and ratings) and the roles that may take it. Who exactly may act (which office,
which enterprise, which consumer) is checked in :mod:`core.complaints.service`.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.auth.principal import Role

REGISTERED = "registered"
DISPATCHED = "dispatched"
WITH_ENTERPRISE = "with_enterprise"
CONTACTED = "contacted"
NEGOTIATING = "negotiating"
FEEDBACK_SUBMITTED = "feedback_submitted"
CLOSED = "closed"
RETURNED = "returned"
LEFT_ODR = "left_odr"
WITHDRAWN = "withdrawn"

STATES = (REGISTERED, DISPATCHED, WITH_ENTERPRISE, CONTACTED, NEGOTIATING, FEEDBACK_SUBMITTED, CLOSED, RETURNED,
          LEFT_ODR, WITHDRAWN)
TERMINAL = frozenset({CLOSED, RETURNED, LEFT_ODR, WITHDRAWN})
IN_ODR = frozenset({WITH_ENTERPRISE, CONTACTED, NEGOTIATING, FEEDBACK_SUBMITTED})
OPEN = frozenset(STATES) - TERMINAL
BUREAU = frozenset({Role.PROVINCE_ADMIN, Role.BUREAU_OFFICER, Role.OFFICE_HEAD})
OFFICE = frozenset({Role.OFFICE_HEAD, Role.BUREAU_OFFICER, Role.PROVINCE_ADMIN})
SPECIALIST = frozenset({Role.ENTERPRISE_SPECIALIST})
CONSUMER = frozenset({Role.CONSUMER})


@dataclass(frozen=True)
class Action:
    name: str
    sources: frozenset[str]
    target: str | None
    roles: frozenset[Role]
    description: str


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("dispatch", frozenset({REGISTERED}), DISPATCHED, frozenset({Role.PROVINCE_ADMIN, Role.BUREAU_OFFICER}),
               "dispatch to the competent office (所) by jurisdiction"),
        Action("accept", frozenset({DISPATCHED}), WITH_ENTERPRISE, OFFICE,
               "screened: meets the acceptance conditions and the company is an ODR unit; forwarded to it"),
        Action("return", frozenset({REGISTERED, DISPATCHED}), RETURNED, OFFICE, "screened out, with a reason"),
        Action("contact", frozenset({WITH_ENTERPRISE}), CONTACTED, SPECIALIST,
               "the enterprise contacted the consumer (Art. 12)"),
        Action("negotiate", frozenset({CONTACTED}), NEGOTIATING, SPECIALIST, "negotiation under way (Art. 13)"),
        Action("feedback", frozenset({CONTACTED, NEGOTIATING}), FEEDBACK_SUBMITTED, SPECIALIST,
               "handling time, process, method, result and amount recovered (Art. 14)"),
        Action("close", frozenset({FEEDBACK_SUBMITTED}), CLOSED, OFFICE, "the office reviews the feedback and closes (办结)"),
        Action("leave_odr", frozenset({WITH_ENTERPRISE, CONTACTED, NEGOTIATING, FEEDBACK_SUBMITTED}), LEFT_ODR,
               OFFICE | CONSUMER, "not settled: leaves ODR as an ordinary complaint to the bureau (Art. 13)"),
        Action("withdraw", frozenset({REGISTERED, DISPATCHED, WITH_ENTERPRISE, CONTACTED, NEGOTIATING}), WITHDRAWN,
               CONSUMER, "the consumer withdraws"),
        Action("rate", frozenset({FEEDBACK_SUBMITTED, CLOSED}), None, CONSUMER,
               "the consumer rates the feedback, 1–5 with a comment (Art. 14)"),
        Action("urge", OPEN, None, BUREAU, "supervision: urge (督办) (Art. 17)"),
        Action("spot_check", frozenset(STATES), None, BUREAU, "supervision: spot check (抽查) (Art. 17)"),
        Action("return_visit", frozenset(STATES), None, BUREAU, "supervision: return visit to the consumer (回访)"),
        Action("interview", frozenset(STATES), None, BUREAU, "supervision: administrative interview (约谈)"),
    )
}
