"""One exporter for every report: columns (key, Chinese and English label, kind) and rows -> CSV or XLSX
that open cleanly in spreadsheet software (Excel, WPS, LibreOffice, Numbers) with the Chinese intact.

- CSV: UTF-8 with a byte-order mark (Excel then reads UTF-8, not the local code page), CRLF line ends,
  one bilingual header row (``企业分类 enterprise_class``), the rows, the total row (if any) last.
- XLSX (xlsxwriter): sheet 1 the same header and rows (header frozen, auto-filter, widths fitted, rates
  as percentages, amounts with two decimals, the total row bold); sheet 2 "说明 about" the report's
  title, tenant, node, period and time zone.
- Values: None -> empty cell; booleans -> 是 / 否; text always written as text (never as a formula),
  and in CSV a text starting with ``= + - @`` (or a tab / CR) gets a leading apostrophe, so a company
  name typed by a consumer cannot become a formula (CSV injection).
- File names: an ASCII ``filename`` (``class-table_jiangsu_320200_2026-01-01_now.xlsx``) plus the
  RFC 5987 ``filename*`` with the Chinese title.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import Any

import xlsxwriter
from litestar import Response

from core.files import download_headers
from core.reports.common import Column

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TOTAL_LABEL = "合计 total"


def header(col: Column) -> str:
    return f"{col.zh} {col.en}"


def _plain(col: Column, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _rows_with_total(columns: Sequence[Column], rows: Iterable[dict[str, Any]]) -> list[tuple[bool, dict[str, Any]]]:
    """(is_total, row) pairs; the total row's first text column reads 合计 total."""
    out = []
    first_text = next((c.key for c in columns if c.kind == "text"), columns[0].key)
    for row in rows:
        if row.get("is_total"):
            row = {**row, first_text: TOTAL_LABEL}
            out.append((True, row))
        else:
            out.append((False, row))
    return out


def to_csv(columns: Sequence[Column], rows: Iterable[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([header(c) for c in columns])
    for _, row in _rows_with_total(columns, rows):
        values = []
        for c in columns:
            v = _plain(c, row.get(c.key))
            if isinstance(v, str) and v.startswith(_FORMULA_START) and c.kind == "text":
                v = "'" + v
            values.append(v)
        writer.writerow(values)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _width(value: Any) -> int:
    text = str(value)
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)  # CJK characters are two columns wide


def to_xlsx(
    columns: Sequence[Column], rows: Iterable[dict[str, Any]], *, title: str, about: Sequence[tuple[str, Any]] = ()
) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                        "strings_to_numbers": False})
    book.set_properties({"title": title, "author": "12315 ODR"})
    head = book.add_format({"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#DDEBF7", "border": 1})
    formats: dict[tuple[str, bool], Any] = {}

    def fmt(kind: str, bold: bool):
        key = (kind, bold)
        if key not in formats:
            spec: dict[str, Any] = {"bold": bold}
            if kind == "rate":
                spec["num_format"] = "0.00%"
            elif kind == "money":
                spec["num_format"] = "#,##0.00"
            elif kind in ("days", "float"):
                spec["num_format"] = "0.00"
            elif kind == "int":
                spec["num_format"] = "0"
            formats[key] = book.add_format(spec)
        return formats[key]

    sheet = book.add_worksheet("报表 report")
    widths = [max(_width(c.zh), _width(c.en)) + 2 for c in columns]
    for x, c in enumerate(columns):
        sheet.write_string(0, x, header(c), head)
    pairs = _rows_with_total(columns, rows)
    for y, (is_total, row) in enumerate(pairs, start=1):
        for x, c in enumerate(columns):
            value = row.get(c.key)
            cell = fmt(c.kind, is_total)
            if value is None:
                sheet.write_blank(y, x, None, cell)
            elif isinstance(value, bool):
                sheet.write_string(y, x, "是" if value else "否", cell)
            elif isinstance(value, (int, float)) and c.kind != "text":
                sheet.write_number(y, x, value, cell)
            else:
                text = _plain(c, value)
                sheet.write_string(y, x, str(text), cell)
                widths[x] = max(widths[x], min(_width(text) + 2, 60))
    for x, w in enumerate(widths):
        sheet.set_column(x, x, min(max(w, 8), 60))
    sheet.set_row(0, 32)
    sheet.freeze_panes(1, 0)
    if pairs:
        sheet.autofilter(0, 0, len(pairs), len(columns) - 1)
    info = book.add_worksheet("说明 about")
    info.set_column(0, 0, 24)
    info.set_column(1, 1, 60)
    for y, (label, value) in enumerate([("报表 report", title), *about]):
        info.write_string(y, 0, label, head)
        info.write_string(y, 1, "" if value is None else str(_plain(Column("", "", ""), value)))
    book.close()
    return buffer.getvalue()


def attachment(content: bytes, fmt: str, filename: str, title_zh: str) -> Response:
    """``content`` as a download: ``filename`` (ASCII) and ``filename*`` (UTF-8, the Chinese title)."""
    return Response(content, media_type=MEDIA_TYPES[fmt],
                    headers=download_headers(f"{title_zh}_{filename}", ascii_name=filename))
