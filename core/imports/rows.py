"""One row of an export, checked: :class:`ImportRow` or the :class:`Problem` s that refuse it.

Checks (each problem names the row's line and the field, as the mapping names it): registration number
present (at most 64 characters); received time a date-time (``2026-03-01 10:20[:30]``, ``2026/03/01``,
``2026年3月1日 10:20``, ISO 8601, or an XLSX date cell; without an offset: Asia/Shanghai) and not in
the future; consumer name (≤ 50), phone (as the intake's), company name, description (≤ 5,000)
present; no text with a NUL character (PostgreSQL cannot store one); the credit code, when given, a valid unified social credit code (GB 32100 check character);
the amount, when given, a number from 0 to 100,000,000 (``¥``, ``元`` and thousands separators allowed);
the state a label of the mapping's ``states`` (empty: open); the closing time, when given, a date-time.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from core.imports.credit_code import credit_code_problem
from core.imports.mapping import REQUIRED, ColumnMapping, Columns, ImportState
from core.imports.reading import FileRefused

CHINA = ZoneInfo("Asia/Shanghai")
PHONE_RE = re.compile(r"^\+?[0-9][0-9-]{5,19}$")
_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d",
            "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日", "%Y%m%d%H%M%S", "%Y.%m.%d %H:%M", "%Y.%m.%d")


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """Why a row is refused: its line in the file, the field (the mapping's name) and what is wrong."""

    line: int
    field: str
    problem: str


class ImportRow(msgspec.Struct, kw_only=True):
    """A row that passed every check that needs no database."""

    line: int
    registration_number: str
    received_at: dt.datetime
    channel: str | None
    consumer_name: str
    consumer_phone: str
    consumer_address: str | None
    company_name: str
    credit_code: str | None
    category: str | None
    amount: float | None
    subject: str
    description: str
    handling_department: str | None
    state: ImportState
    exported_state: str | None
    closed_at: dt.datetime | None


class ColumnIndex(msgspec.Struct, frozen=True, kw_only=True):
    """Field -> the index of its column in the file (fields without a column are absent)."""

    index: dict[str, int]
    headers: dict[str, str]

    def cell(self, cells: list[Any], name: str) -> Any:
        i = self.index.get(name)
        if i is None or i >= len(cells):
            return None
        value = cells[i]
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value


def column_index(header: list[str], mapping: ColumnMapping) -> ColumnIndex:
    """Where each field is in a file with ``header``; :class:`FileRefused` naming ``columns.<field>``
    when a required field has no column."""
    positions = {h: i for i, h in reversed(list(enumerate(header))) if h}
    index: dict[str, int] = {}
    headers: dict[str, str] = {}
    for name in Columns.__struct_fields__:
        for h in getattr(mapping.columns, name):
            if h in positions:
                index[name] = positions[h]
                headers[name] = h
                break
        else:
            if name in REQUIRED:
                wanted = " / ".join(getattr(mapping.columns, name))
                raise FileRefused(f"columns.{name}", f"no column headed {wanted} in the file")
    return ColumnIndex(index=index, headers=headers)


def parse_time(value: Any) -> dt.datetime:
    """An aware date-time from a cell; ``ValueError`` saying what was expected."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=CHINA)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), CHINA)
    text = str(value).strip()
    try:  # the common layouts (2026-03-01 10:20:30, ISO 8601) at C speed
        moment = dt.datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=CHINA)
    except ValueError:
        pass
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=CHINA)
        except ValueError:
            pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a date-time (e.g. 2026-03-01 10:20)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=CHINA)


def parse_amount(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        amount = Decimal(str(value))
    else:
        text = str(value).strip().replace(",", "").replace("，", "").replace("¥", "").replace("￥", "").replace("元", "")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{str(value)[:40]!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError("not a number")
    if amount < 0:
        raise ValueError(f"negative ({amount})")
    if amount > 100_000_000:
        raise ValueError("more than 100,000,000")
    return float(amount)


def cell_text(value: Any) -> str | None:
    """A cell as stripped text (None when empty; a whole number typed in a spreadsheet without ``.0``)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a phone or code typed as a number in a spreadsheet
    text = str(value).strip()
    return text or None


def parse_row(line: int, cells: list[Any], columns: ColumnIndex, mapping: ColumnMapping,
              now: dt.datetime) -> ImportRow | list[Problem]:
    """The row checked (see the module), or every problem found in it."""
    problems: list[Problem] = []

    def bad(field: str, problem: str) -> None:
        problems.append(Problem(line=line, field=field, problem=problem))

    def text(field: str, *, required: bool = False, max_length: int = 200) -> str | None:
        value = cell_text(columns.cell(cells, field))
        if value is None:
            if required:
                bad(field, f"missing ({columns.headers.get(field, field)})")
            return None
        if len(value) > max_length:
            bad(field, f"longer than {max_length} characters")
            return None
        if "\x00" in value:
            bad(field, "contains a NUL character")
            return None
        return value

    number = text("registration_number", required=True, max_length=64)
    received = None
    raw = columns.cell(cells, "received_at")
    if raw is None:
        bad("received_at", f"missing ({columns.headers.get('received_at')})")
    else:
        try:
            received = parse_time(raw)
            if received > now:
                bad("received_at", "in the future")
        except ValueError as exc:
            bad("received_at", str(exc))
    name = text("consumer_name", required=True, max_length=50)
    phone = text("consumer_phone", required=True, max_length=20)
    if phone is not None and not PHONE_RE.match(phone):
        bad("consumer_phone", "not a phone number")
    address = text("consumer_address")
    company = text("company_name", required=True)
    code = text("credit_code", max_length=40)
    if code is not None:
        code = code.replace(" ", "").upper()
        problem = credit_code_problem(code)
        if problem:
            bad("credit_code", f"not a unified social credit code: {problem}")
    category = text("category", max_length=50)
    amount = None
    raw = columns.cell(cells, "amount")
    if raw is not None:
        try:
            amount = parse_amount(raw)
        except ValueError as exc:
            bad("amount", str(exc))
    description = text("description", required=True, max_length=5000)
    subject = text("subject") or (description[:40] if description else None)
    department = text("handling_department")
    exported_state = text("state", max_length=50)
    state: ImportState = "open"
    if exported_state is not None:
        found = mapping.states.get(exported_state)
        if found is None:
            bad("state", f"{exported_state!r} is not a state of the mapping")
        else:
            state = found
    closed_at = None
    raw = columns.cell(cells, "closed_at")
    if raw is not None:
        try:
            closed_at = parse_time(raw)
        except ValueError as exc:
            bad("closed_at", str(exc))
    channel = text("channel", max_length=50)
    if problems:
        return problems
    return ImportRow(
        line=line, registration_number=number, received_at=received, channel=channel, consumer_name=name,
        consumer_phone=phone, consumer_address=address, company_name=company, credit_code=code,
        category=category, amount=amount, subject=subject, description=description,
        handling_department=department, state=state, exported_state=exported_state, closed_at=closed_at,
    )
