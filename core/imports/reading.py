"""Reading an export file: CSV (UTF-8 with or without BOM, or GB 18030 as older Excel saves it) or XLSX
(the first sheet, openpyxl in read-only mode), as a header and rows numbered by their line in the file
(the header is line 1, as a spreadsheet shows it). Cells are strings, numbers or datetimes (XLSX) or
None; fully empty rows are skipped (their line numbers are not reused)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import msgspec

MAX_BYTES = 64 * 1024 * 1024


class FileRefused(ValueError):
    """The file as a whole cannot be read (``field`` names what is wrong: ``file``, ``format``, ``columns.X``)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class Table(msgspec.Struct, kw_only=True):
    """The file's header and a fresh iterator over its rows on each :meth:`rows` call."""

    format: str
    header: list[str]
    content: bytes

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        """(line, cells) of every non-empty row after the header."""
        it = _csv_rows(self.content) if self.format == "csv" else _xlsx_rows(self.content)
        next(it, None)  # the header
        for line, cells in it:
            if any(c is not None and (not isinstance(c, str) or c.strip()) for c in cells):
                yield line, cells


    def estimated_rows(self) -> int | None:
        """The rows after the header as the XLSX sheet's dimension records them (None for a CSV, or when
        the workbook records none)."""
        if self.format != "xlsx":
            return None
        import openpyxl

        book = openpyxl.load_workbook(io.BytesIO(self.content), read_only=True, data_only=True)
        try:
            rows = book.worksheets[0].max_row
        finally:
            book.close()
        return rows - 1 if rows else None


def format_of(filename: str) -> str:
    name = filename.lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".xlsx"):
        return "xlsx"
    raise FileRefused("format", "only .csv and .xlsx files can be imported")


def _decode(content: bytes) -> str:
    if content.startswith(b"\xef\xbb\xbf"):
        return content[3:].decode("utf-8")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return content.decode("gb18030")
        except UnicodeDecodeError:
            raise FileRefused("file", "neither UTF-8 nor GB 18030 text") from None


def _csv_rows(content: bytes) -> Iterator[tuple[int, list[Any]]]:
    reader = csv.reader(io.StringIO(_decode(content), newline=""))
    for cells in reader:
        yield reader.line_num, [c if c != "" else None for c in cells]


def _xlsx_rows(content: bytes) -> Iterator[tuple[int, list[Any]]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException...
        raise FileRefused("file", f"not a readable XLSX workbook ({type(exc).__name__})") from None
    try:
        sheet = book.worksheets[0]
        for line, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield line, list(cells)
    finally:
        book.close()


def read_table(filename: str, content: bytes) -> Table:
    """The file's table; :class:`FileRefused` when it is empty, too large, of another format or unreadable."""
    fmt = format_of(filename)
    if not content:
        raise FileRefused("file", "empty")
    if len(content) > MAX_BYTES:
        raise FileRefused("file", f"larger than {MAX_BYTES // (1024 * 1024)} MiB")
    first = next(_csv_rows(content) if fmt == "csv" else _xlsx_rows(content), None)
    if first is None:
        raise FileRefused("file", "no header row")
    header = ["" if c is None else str(c).strip() for c in first[1]]
    return Table(format=fmt, header=header, content=content)
