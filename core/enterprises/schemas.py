"""The msgspec Structs at the boundary of the ODR-unit (enterprise) domain.

Personal data: liaison names and phones appear only in :class:`Liaison` (shown to the reviewing
bureau and to the unit's own specialists) and never in the public :class:`DirectoryUnit`.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated, Literal

import msgspec
from litestar.datastructures import UploadFile

CREDIT_CODE_RE = r"^[0-9A-HJ-NPQRTUWXY]{18}$"
PHONE_RE = r"^\+?[0-9][0-9 ()-]{4,24}$"
USERNAME_RE = r"^[a-z0-9][a-z0-9._-]{2,39}$"

CreditCode = Annotated[str, msgspec.Meta(pattern=CREDIT_CODE_RE, description="18-character unified social credit code")]
UnitName = Annotated[str, msgspec.Meta(min_length=2, max_length=200)]
PersonName = Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
Phone = Annotated[str, msgspec.Meta(pattern=PHONE_RE, description="phone number: digits, spaces, +, -, ( )")]
Username = Annotated[str, msgspec.Meta(pattern=USERNAME_RE, description="3-40 chars: a-z 0-9 . _ -")]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
LongText = Annotated[str, msgspec.Meta(max_length=4000)]
Reason = Annotated[str, msgspec.Meta(max_length=4000)]

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
DOCUMENT_KINDS = ("application_letter", "commitment", "business_licence", "consumer_protection_statement")
CONDITIONS = ("fixed_place", "staff_available", "computer_online", "dedicated_phone", "written_procedure")
LIAISON_ROLES = ("person_in_charge", "staff")


class UnitType(str, enum.Enum):
    """Art. 25: besides enterprises, associations, social organisations and government departments can
    join; a host unit (e.g. a shopping mall) handles disputes for its member merchants."""

    ENTERPRISE = "enterprise"
    INDUSTRY_ASSOCIATION = "industry_association"
    SOCIAL_ORGANISATION = "social_organisation"
    GOVERNMENT_DEPARTMENT = "government_department"
    HOST_UNIT = "host_unit"


class RevocationGround(str, enum.Enum):
    """Art. 22 grounds (also used for a suspension)."""

    DELIBERATE_DELAY_OR_REFUSAL = "deliberate_delay_or_refusal"
    UNTRUE_FEEDBACK = "untrue_feedback"
    LOW_SETTLEMENT_RATE = "low_settlement_rate"
    ABNORMAL_OR_BLACKLISTED = "abnormal_or_blacklisted"
    SERIOUS_VIOLATION = "serious_violation"
    OTHER_FAILURE = "other_failure"


LiaisonRole = Literal["person_in_charge", "staff"]
ReviewMethod = Literal["written", "site_inspection", "comprehensive"]


# -- application (multipart form, Art. 6-8) ----------------------------------------------------------
class ApplicationForm(msgspec.Struct, kw_only=True):
    """An application for ODR status, sent as ``multipart/form-data``.

    The five Art. 6 conditions are declared as booleans and must all be true. The four Art. 8 documents
    are files (PDF, JPEG or PNG, at most 5 MiB each; the type is found from the content).
    """

    name: UnitName
    credit_code: CreditCode
    unit_type: UnitType
    node_code: Annotated[str, msgspec.Meta(max_length=40, description="the reviewing district (county) bureau")]
    host_unit_id: uuid.UUID | None = None
    industry: ShortText | None = None
    employees: Annotated[int, msgspec.Meta(ge=0)] | None = None
    annual_revenue_cny: Annotated[float, msgspec.Meta(ge=0)] | None = None
    business_scope: LongText | None = None
    address: ShortText | None = None
    # Art. 6 conditions
    fixed_place: bool
    staff_available: bool
    computer_online: bool
    dedicated_phone: bool
    written_procedure: bool
    # Art. 15 liaisons; the usernames are the specialist accounts opened on approval
    person_in_charge_name: PersonName
    person_in_charge_phone: Phone
    person_in_charge_username: Username
    staff_name: PersonName
    staff_phone: Phone
    staff_username: Username
    # Art. 8 documents
    application_letter: UploadFile
    commitment: UploadFile
    business_licence: UploadFile
    consumer_protection_statement: UploadFile


class Document(msgspec.Struct, frozen=True, kw_only=True):
    """A checked upload, ready to store."""

    kind: str
    filename: str
    content_type: str
    size: int
    sha256: str
    content: bytes


class LiaisonInput(msgspec.Struct, frozen=True, kw_only=True):
    role: LiaisonRole
    name: str
    phone: str
    username: str


class NewApplication(msgspec.Struct, frozen=True, kw_only=True):
    """A validated application as the service takes it (no files left open)."""

    name: str
    credit_code: str
    unit_type: UnitType
    node_code: str
    host_unit_id: uuid.UUID | None
    industry: str | None
    employees: int | None
    annual_revenue_cny: float | None
    business_scope: str | None
    address: str | None
    conditions: dict[str, bool]
    liaisons: tuple[LiaisonInput, ...]
    documents: tuple[Document, ...]


# -- views -------------------------------------------------------------------------------------------
class DocumentInfo(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_at: dt.datetime


class Liaison(msgspec.Struct, frozen=True, kw_only=True):
    """A filed liaison (personal data: reviewing bureau and the unit itself only)."""

    id: uuid.UUID
    role: LiaisonRole
    name: str
    phone: str
    has_account: bool
    filed_at: dt.datetime


class ApplicationSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    name: str
    credit_code: str
    unit_type: str
    node_code: str
    route: Literal["self", "recommended"]
    status: Literal["submitted", "approved", "rejected"]
    submitted_at: dt.datetime


class ApplicationDetail(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    name: str
    credit_code: str
    unit_type: str
    host_unit_id: uuid.UUID | None
    node_code: str
    industry: str | None
    employees: int | None
    annual_revenue_cny: float | None
    business_scope: str | None
    address: str | None
    route: Literal["self", "recommended"]
    recommended_by: str | None
    submitted_by: str
    submitted_at: dt.datetime
    status: Literal["submitted", "approved", "rejected"]
    conditions: dict[str, bool]
    requested_usernames: dict[str, str]
    review_method: str | None
    reviewer: str | None
    reviewed_at: dt.datetime | None
    rejection_reason: str | None
    standing: dict | None
    documents: list[DocumentInfo]
    liaisons: list[Liaison]


class Submitted(msgspec.Struct, frozen=True, kw_only=True):
    """Answer to an application: keep the ids to follow it up."""

    application_id: uuid.UUID
    enterprise_id: uuid.UUID
    status: str = "submitted"


class Review(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A review decision (Art. 9). ``reason`` is required to reject."""

    decision: Literal["approve", "reject"]
    method: ReviewMethod
    reason: Reason | None = None


class InitialCredential(msgspec.Struct, frozen=True, kw_only=True):
    """A specialist account opened on approval; the password is shown this once only."""

    role: LiaisonRole
    username: str
    password: str


class Unit(msgspec.Struct, frozen=True, kw_only=True):
    """An ODR unit as the bureau sees it (no personal data)."""

    id: uuid.UUID
    name: str
    credit_code: str
    unit_type: str
    host_unit_id: uuid.UUID | None
    node_code: str
    industry: str | None
    employees: int | None
    annual_revenue_cny: float | None
    business_scope: str | None
    address: str | None
    status: str
    classification: dict | None
    breach_count: int
    approved_at: dt.datetime | None
    approved_by: str | None
    status_changed_at: dt.datetime | None
    status_changed_by: str | None
    deciding_bureau: str | None
    revocation_ground: str | None
    revocation_detail: str | None
    created_at: dt.datetime


class ReviewOutcome(msgspec.Struct, frozen=True, kw_only=True):
    application_id: uuid.UUID
    decision: Literal["approve", "reject"]
    standing: dict
    unit: Unit
    initial_credentials: list[InitialCredential] = []


class UnitDetail(msgspec.Struct, frozen=True, kw_only=True):
    unit: Unit
    liaisons: list[Liaison]
    open_liaison_changes: list["LiaisonChange"]


# -- liaisons (Art. 15) ------------------------------------------------------------------------------
class LiaisonChangeRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Report that a liaison changed (on ``changed_on``, default today): the new one must be filed
    within 5 working days."""

    role: LiaisonRole
    changed_on: dt.date | None = None


class LiaisonFiling(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """File the new liaison. With ``username`` a new specialist account is opened for them (the
    predecessor's account is closed); without it the role's account carries over."""

    name: PersonName
    phone: Phone
    username: Username | None = None


class LiaisonChange(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    enterprise_name: str
    node_code: str
    role: LiaisonRole
    changed_on: dt.date
    due_at: dt.datetime
    filed_at: dt.datetime | None
    status: Literal["open", "filed", "overdue"]
    deadline_explanation: dict | None = None


class LiaisonFiled(msgspec.Struct, frozen=True, kw_only=True):
    change: LiaisonChange
    liaison: Liaison
    initial_credentials: list[InitialCredential] = []


# -- status (Art. 22) --------------------------------------------------------------------------------
class StatusDecision(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Suspend or revoke an ODR unit on an Art. 22 ground."""

    ground: RevocationGround
    detail: Reason | None = None


class Reinstatement(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    detail: Reason | None = None


# -- public directory (Art. 23) ----------------------------------------------------------------------
class DirectoryClass(msgspec.Struct, frozen=True, kw_only=True):
    scheme: str
    code: str
    label: str


class DirectoryMember(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    credit_code: str
    unit_type: str
    district: str


class DirectoryUnit(msgspec.Struct, frozen=True, kw_only=True):
    """One published ODR unit. Deliberately has no field for any person's name or phone."""

    id: uuid.UUID
    name: str
    credit_code: str
    unit_type: str
    node_code: str
    district: str
    classification: DirectoryClass | None
    members: list[DirectoryMember] = []
    approved_on: dt.date | None = None
    """The day (Asia/Shanghai) the unit was approved as an ODR unit."""


class PublicNode(msgspec.Struct, frozen=True, kw_only=True):
    """A jurisdiction node as published (for the directory's district filter)."""

    code: str
    parent_code: str | None
    level: str
    name: str
    name_en: str
