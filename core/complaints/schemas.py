"""The Structs of the complaint API (requests are strict: unknown fields are refused)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
LongText = Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]
Phone = Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9][0-9-]{5,19}$")]
CreditCode = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")]
Money = Annotated[float, msgspec.Meta(ge=0, le=100_000_000)]


class Strict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class ComplaintIntake(Strict):
    """A complaint filed by a consumer, or forwarded from 12315 by bureau staff.

    The company is named by ``enterprise_id`` or ``credit_code`` (then checked against the ODR
    directory) or just by ``company_name``. ``route``: ``odr`` sends it straight to an ODR unit
    (Art. 23's direct route), ``bureau`` lets the bureau dispatch and screen it. ``node_code`` is the
    bureau node that receives it (default: the ODR unit's reviewing bureau)."""

    company_name: Text
    subject: Text
    description: LongText
    consumer_name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    consumer_phone: Phone
    consumer_address: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    enterprise_id: str | None = None
    credit_code: CreditCode | None = None
    node_code: str | None = None
    category: Annotated[str, msgspec.Meta(max_length=50)] | None = None
    amount_claimed: Money | None = None
    route: Literal["odr", "bureau"] = "bureau"
    idempotency_key: Annotated[str, msgspec.Meta(min_length=8, max_length=100)] | None = None


class DispatchBody(Strict):
    office: str
    note: str | None = None


class AcceptBody(Strict):
    """Screening passed: forward to the ODR unit (``enterprise_id`` names it if intake did not)."""

    enterprise_id: str | None = None
    note: str | None = None


class ReasonBody(Strict):
    reason: Annotated[str, msgspec.Meta(min_length=2, max_length=2000)]


class NoteBody(Strict):
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class SupervisionBody(Strict):
    note: Annotated[str, msgspec.Meta(min_length=2, max_length=2000)]


class SpotCheckBody(SupervisionBody):
    """A spot check (抽查, Art. 17). ``feedback_untrue`` is its finding on the unit's feedback, when it
    examined one: true = seriously untrue (Art. 22(2), counted in the evaluation), false = checked and
    true; omitted when the check did not examine the feedback. The latest finding is the complaint's."""

    feedback_untrue: bool | None = None


class FeedbackBody(Strict):
    """Art. 14: handling time, negotiation process, method, result (settled or not), amount recovered."""

    handling_time: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    process: LongText
    method: Literal["refund", "return_exchange", "repair", "compensation", "apology_explanation", "other"]
    settled: bool
    result: LongText
    amount_recovered: Money = 0.0


class RatingBody(Strict):
    satisfaction: Annotated[int, msgspec.Meta(ge=1, le=5)]
    comment: Annotated[str, msgspec.Meta(max_length=1000)] = ""


ACTION_BODIES: dict[str, type] = {
    "dispatch": DispatchBody,
    "accept": AcceptBody,
    "return": ReasonBody,
    "contact": NoteBody,
    "negotiate": NoteBody,
    "feedback": FeedbackBody,
    "close": NoteBody,
    "leave_odr": ReasonBody,
    "withdraw": NoteBody,
    "rate": RatingBody,
    "urge": SupervisionBody,
    "spot_check": SpotCheckBody,
    "return_visit": SupervisionBody,
    "interview": SupervisionBody,
}


class MessageBody(Strict):
    body: LongText


class ConsumerContact(msgspec.Struct, kw_only=True):
    name: str
    phone: str
    address: str | None
    masked: bool


class ComplaintView(msgspec.Struct, kw_only=True):
    id: str
    number: str
    state: str
    source: str
    company_name: str
    enterprise_id: str | None
    odr_unit: bool
    node_code: str
    category: str | None
    subject: str
    description: str
    amount_claimed: float | None
    consumer: ConsumerContact
    entered_odr_at: dt.datetime | None
    contact_due: dt.datetime | None
    """Due moments (and ``entered_odr_at``) are given in Asia/Shanghai (``+08:00``), as the deadline
    explanation gives them; the other timestamps are UTC."""
    close_due: dt.datetime | None
    deadline_policy: str | None
    deadline_policy_version: str | None
    deadlines_provisional: bool
    """The due moments were counted over days of a year whose State Council holiday notice was not
    known yet (:mod:`core.deadlines.provisional`): they may change once, when it is."""
    contacted_at: dt.datetime | None
    feedback: dict[str, Any] | None
    settled: bool | None
    amount_recovered: float | None
    closed_at: dt.datetime | None
    rating: int | None
    rating_comment: str | None
    breaches: list[str]
    feedback_untrue: bool | None
    """The latest spot check's finding on the feedback (None: none examined it)."""
    created_at: dt.datetime
    updated_at: dt.datetime
    allowed_actions: list[str]


class IntakeResult(msgspec.Struct, kw_only=True):
    complaint: ComplaintView
    created: bool
    odr_notice: str | None
    """Set when the company is an active ODR unit (Art. 23): the consumer is told so."""


class EventView(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    actor_id: str
    actor_role: str
    node_code: str | None
    at: dt.datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str | None


class MessageView(msgspec.Struct, kw_only=True):
    id: str
    author_role: str
    author_id: str
    body: str
    at: dt.datetime
    attachments: list[dict[str, Any]] = []


class ConsumerSignup(Strict):
    username: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{3,40}$")]
    password: Annotated[str, msgspec.Meta(min_length=8, max_length=200)]
    display_name: Annotated[str, msgspec.Meta(max_length=50)] = ""
