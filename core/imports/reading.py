"""Reading an export file: CSV (UTF-8 with or without BOM, or GB 18030 as older Excel saves it) or XLSX
(the first sheet), as a header and rows numbered by their line in the file (the header is line 1, as a
spreadsheet shows it). Cells are strings, numbers or datetimes (XLSX) or None; fully empty rows are
skipped (their line numbers are not reused).

Every file is hostile until read (issue 23): the :class:`ImportLimits` are checked WHILE the file is
streamed, never after it was loaded, and the first one exceeded raises :class:`LimitExceeded` naming
it and its setting:
- the file's size (``ODR_IMPORT_MAX_UPLOAD_MB``);
- XLSX: each zip member's declared size and ratio before it is opened, and the bytes actually inflated
  as they are (all members together at most ``ODR_IMPORT_MAX_DECOMPRESSED_MB``, the shared strings at
  most ``ODR_IMPORT_MAX_SHARED_STRINGS_MB``, any other part than the first sheet and the shared strings
  at most :data:`OTHER_PART_BYTES`, each member's ratio at most ``ODR_IMPORT_MAX_RATIO``);
- rows (``ODR_IMPORT_MAX_ROWS`` after the header), columns (``ODR_IMPORT_MAX_COLUMNS``), characters of
  one cell (``ODR_IMPORT_MAX_CELL_CHARS``), shared strings (``ODR_IMPORT_MAX_SHARED_STRINGS``).
The sheet and the shared strings are parsed as a stream, refusing a DTD (:func:`_iterparse`): a row's
cells are counted as each ends, so a row of a million cells stops at the columns limit; every row,
shared string and part before the sheet's data is cleared once read; the workbook's small parts are read
by openpyxl (with ``defusedxml``).
The wall time (``ODR_IMPORT_MAX_SECONDS``) and the memory are bounded by the process reading
(:mod:`core.imports.isolation`): the web process never parses a file itself.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import msgspec

from core.files import FileTooLarge

MiB = 1024 * 1024
MAX_BYTES = 64 * MiB
"""The door's hard cap on an upload request (the route's body limit); ODR_IMPORT_MAX_UPLOAD_MB below it
is what a file may be."""
OTHER_PART_BYTES = 16 * MiB
"""Any part of an XLSX other than its first sheet and its shared strings (styles, workbook, relations)."""
SHOWN_CHARS = 200
"""Characters of a cell an answer shows (:func:`shown`)."""


class FileRefused(ValueError):
    """The file as a whole cannot be read (``field`` names what is wrong: ``file``, ``format``, ``columns.X``)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class LimitExceeded(FileRefused, FileTooLarge):
    """A limit of :class:`ImportLimits` was exceeded while the file was read: ``limit`` is its setting
    (``ODR_IMPORT_MAX_ROWS``), ``value`` the limit as the message shows it (``200,000 rows``); the
    message says what was found: ``file: more than 200,000 rows (limit ODR_IMPORT_MAX_ROWS: 200,000 rows)``.
    A :class:`~core.files.FileTooLarge`: answered 413 naming ``file``."""

    def __init__(self, limit: str, value: str, where: str = "", *, found: str | None = None) -> None:
        self.found = f"{found or 'more than ' + value}{where}"
        super().__init__("file", f"{self.found} (limit {limit}: {value})")
        self.limit = limit
        self.value = value


class ImportLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What an import file may be (the ``ODR_IMPORT_MAX_*`` settings; :meth:`of`)."""

    upload_bytes: int = 20 * MiB
    decompressed_bytes: int = 200 * MiB
    ratio: float = 200.0
    rows: int = 200_000
    columns: int = 100
    cell_chars: int = 32 * 1024
    shared_strings: int = 1_000_000
    shared_strings_bytes: int = 64 * MiB
    seconds: float = 120.0
    memory_bytes: int = 1024 * MiB

    @classmethod
    def of(cls, settings) -> "ImportLimits":
        return cls(upload_bytes=int(settings.import_max_upload_mb * MiB),
                   decompressed_bytes=int(settings.import_max_decompressed_mb * MiB),
                   ratio=settings.import_max_ratio, rows=settings.import_max_rows, columns=settings.import_max_columns,
                   cell_chars=settings.import_max_cell_chars, shared_strings=settings.import_max_shared_strings,
                   shared_strings_bytes=int(settings.import_max_shared_strings_mb * MiB),
                   seconds=settings.import_max_seconds, memory_bytes=int(settings.import_worker_memory_mb * MiB))


DEFAULT_LIMITS = ImportLimits()


def _mib(n: int) -> str:
    return f"{n / MiB:g} MiB"


def shown(value: Any) -> Any:
    """A cell as an answer may echo it: text longer than :data:`SHOWN_CHARS` cut there with "…"."""
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        return value[:SHOWN_CHARS] + "…"
    return value


class Table(msgspec.Struct, kw_only=True, dict=True):
    """The file's header and a fresh iterator over its rows on each :meth:`rows` call (an XLSX's shared
    strings read once)."""

    format: str
    header: list[str]
    content: bytes
    limits: ImportLimits = DEFAULT_LIMITS
    sample: list[tuple[int, list[Any]]] = []
    """The first rows, when they were read with the header (a preview's; :mod:`core.imports.isolation`)."""

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        """(line, cells) of every non-empty row after the header (limits checked as they are read)."""
        it = _rows(self.format, self.content, self.limits, self)
        next(it, None)  # the header
        for line, cells in it:
            if any(c is not None and (not isinstance(c, str) or c.strip()) for c in cells):
                yield line, cells

    def estimated_rows(self) -> int | None:
        """The rows after the header as the XLSX sheet's dimension records them (None for a CSV, or when
        the workbook records none)."""
        if self.format != "xlsx":
            return None
        with _Workbook(self.content, self.limits, self) as book:
            rows = book.dimension_rows()
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


def _rows_limit(line: int, limits: ImportLimits) -> None:
    if line > limits.rows + 1:
        raise LimitExceeded("ODR_IMPORT_MAX_ROWS", f"{limits.rows:,} rows")


def _columns_limit(count: int, limits: ImportLimits, line: int) -> None:
    if count > limits.columns:
        raise LimitExceeded("ODR_IMPORT_MAX_COLUMNS", f"{limits.columns:,} columns", f" on line {line}")


def _cell_limit(value: Any, limits: ImportLimits, line: int) -> None:
    if isinstance(value, str) and len(value) > limits.cell_chars:
        raise LimitExceeded("ODR_IMPORT_MAX_CELL_CHARS", f"{limits.cell_chars:,} characters in a cell",
                            f" on line {line}")


def _csv_rows(content: bytes, limits: ImportLimits) -> Iterator[tuple[int, list[Any]]]:
    reader = csv.reader(io.StringIO(_decode(content), newline=""))
    before = csv.field_size_limit(limits.cell_chars + 1)  # the csv module stops a longer field itself
    try:
        for cells in reader:
            line = reader.line_num
            _rows_limit(line, limits)
            _columns_limit(len(cells), limits, line)
            for c in cells:
                _cell_limit(c, limits, line)
            yield line, [c if c != "" else None for c in cells]
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise LimitExceeded("ODR_IMPORT_MAX_CELL_CHARS", f"{limits.cell_chars:,} characters in a cell",
                                f" on line {reader.line_num}") from None
        raise FileRefused("file", f"not readable as CSV on line {reader.line_num + 1}: {exc}") from None
    finally:
        csv.field_size_limit(before)


# -- XLSX -------------------------------------------------------------------------------------------

class _Inflated(io.RawIOBase):
    """A zip member's stream counting what it inflates against the member's cap, the archive's total
    and the ratio, as it is read."""

    def __init__(self, raw, info: zipfile.ZipInfo, cap: int, cap_limit: tuple[str, str], book: "_Guarded") -> None:
        self.raw, self.info, self.cap, self.cap_limit, self.book = raw, info, cap, cap_limit, book
        self.out = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.raw.read(len(buffer))
        except zipfile.BadZipFile:
            if getattr(self.raw, "_compress_left", 0) > 0:  # stopped at its declared size, data left
                raise LimitExceeded("ODR_IMPORT_MAX_DECOMPRESSED_MB", _mib(self.book.limits.decompressed_bytes), found=(
                    f"{self.info.filename} inflates to more than the {self.info.file_size:,} bytes it declares")) from None
            raise
        n = len(data)
        buffer[:n] = data
        self.out += n
        self.book.inflated += n
        limits = self.book.limits
        if self.out > self.cap:
            raise LimitExceeded(*self.cap_limit)
        if self.book.inflated > limits.decompressed_bytes:
            raise LimitExceeded("ODR_IMPORT_MAX_DECOMPRESSED_MB", f"{_mib(limits.decompressed_bytes)} decompressed")
        if self.out > MiB:
            consumed = self.info.compress_size - getattr(self.raw, "_compress_left", 0)
            if self.out > limits.ratio * max(consumed, 1):
                raise LimitExceeded("ODR_IMPORT_MAX_RATIO", f"{limits.ratio:g} times", found=(
                    f"{self.info.filename} inflates to more than {limits.ratio:g} times its compressed size"))
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


class _Guarded(zipfile.ZipFile):
    """The workbook's archive: every member opened through :class:`_Inflated`, after its declared
    size and ratio were checked."""

    def __init__(self, content: bytes, limits: ImportLimits) -> None:
        super().__init__(io.BytesIO(content))
        self.limits = limits
        self.inflated = 0
        self.caps: dict[str, tuple[int, tuple[str, str]]] = {}
        declared = sum(i.file_size for i in self.infolist())
        if declared > limits.decompressed_bytes:
            raise LimitExceeded("ODR_IMPORT_MAX_DECOMPRESSED_MB", f"{_mib(limits.decompressed_bytes)} decompressed",
                                f" (the archive declares {_mib(declared)})")

    def cap(self, name: str, size: int, limit: tuple[str, str]) -> None:
        self.caps[name] = (size, limit)

    def open(self, name, mode="r", pwd=None, **kwargs):
        if mode != "r":
            raise ValueError("read only")
        info = name if isinstance(name, zipfile.ZipInfo) else self.getinfo(name)
        cap, limit = self.caps.get(info.filename, (OTHER_PART_BYTES, (
            "ODR_IMPORT_MAX_DECOMPRESSED_MB", f"{_mib(OTHER_PART_BYTES)} in a part other than the sheet")))
        if info.file_size > cap:
            raise LimitExceeded(*limit, f" ({info.filename} declares {_mib(info.file_size)})")
        if info.file_size > MiB and info.file_size > self.limits.ratio * max(info.compress_size, 1):
            raise LimitExceeded("ODR_IMPORT_MAX_RATIO", f"{self.limits.ratio:g} times", found=(
                f"{info.filename} declares more than {self.limits.ratio:g} times its compressed size"))
        return io.BufferedReader(_Inflated(super().open(info, "r", pwd), info, cap, limit, self), 64 * 1024)


class _Workbook:
    """The first sheet of an XLSX, read through openpyxl's parts (workbook, styles, cell types) over a
    :class:`_Guarded` archive; shared strings and the sheet are streamed here, one element at a time."""

    def __init__(self, content: bytes, limits: ImportLimits, table: "Table | None" = None) -> None:
        from openpyxl.reader.excel import ExcelReader

        self.limits = limits
        try:
            archive = _Guarded(content, limits)
        except LimitExceeded:
            raise
        except Exception as exc:  # zipfile.BadZipFile, ...
            raise FileRefused("file", f"not a readable XLSX workbook ({type(exc).__name__})") from None
        book = self

        class Reader(ExcelReader):
            def __init__(self) -> None:  # noqa: D401 - the archive is ours, not opened by openpyxl
                self.archive = archive
                self.valid_files = archive.namelist()
                self.read_only, self.keep_vba, self.data_only = True, False, True
                self.keep_links, self.rich_text = False, False
                self.shared_strings = []

            def read_strings(self) -> None:
                ct = self.package.find(_SHARED_STRINGS)
                if ct is not None:
                    book.strings_path = ct.PartName[1:]
                    archive.cap(book.strings_path, limits.shared_strings_bytes, (
                        "ODR_IMPORT_MAX_SHARED_STRINGS_MB", f"{_mib(limits.shared_strings_bytes)} of shared strings"))
                    cached = getattr(table, "_strings", None)
                    self.shared_strings = cached if cached is not None else book.read_strings(book.strings_path)
                    if table is not None:
                        table._strings = self.shared_strings

            def read_worksheets(self) -> None:  # only the first sheet's place; nothing of any sheet is read
                for _sheet, rel in self.parser.find_sheets():
                    book.sheet_path = rel.target
                    break

            def read_properties(self) -> None:
                pass

            def read_custom(self) -> None:
                pass

            def read_theme(self) -> None:
                pass

        self.archive = archive
        self.sheet_path: str | None = None
        self.strings_path: str | None = None
        try:
            reader = Reader()
            reader.read()
        except (LimitExceeded, MemoryError):
            archive.close()
            raise
        except Exception as exc:
            archive.close()
            cause = exc.__cause__ or exc.__context__ or exc
            if isinstance(cause, LimitExceeded):
                raise cause from None
            raise FileRefused("file", f"not a readable XLSX workbook ({type(exc).__name__})") from None
        self.wb = reader.wb
        self.strings = reader.shared_strings
        if self.sheet_path is None:
            archive.close()
            raise FileRefused("file", "the workbook has no sheet")
        if self.sheet_path.startswith("/"):
            self.sheet_path = self.sheet_path[1:]
        archive.cap(self.sheet_path, limits.decompressed_bytes, (
            "ODR_IMPORT_MAX_DECOMPRESSED_MB", f"{_mib(limits.decompressed_bytes)} decompressed"))

    def __enter__(self) -> "_Workbook":
        return self

    def __exit__(self, *exc) -> None:
        self.archive.close()

    def read_strings(self, path: str) -> list[str]:
        """The shared strings, each checked as it ends (count, length); each ``<si>`` cleared once read."""
        from openpyxl.cell.text import Text

        strings: list[str] = []
        limits = self.limits
        with self.archive.open(path) as src:
            for _event, element in _iterparse(src):
                if element.tag != _SI:
                    continue
                if len(strings) >= limits.shared_strings:
                    raise LimitExceeded("ODR_IMPORT_MAX_SHARED_STRINGS", f"{limits.shared_strings:,} shared strings")
                text = Text.from_tree(element).content.replace("x005F_", "")
                element.clear()
                _cell_limit(text, limits, 0)
                strings.append(text)
        return strings

    def dimension_rows(self) -> int | None:
        """The last row of the sheet's recorded dimension (read up to ``<sheetData>``, no further)."""
        from openpyxl.utils.cell import range_boundaries

        try:
            with self.archive.open(self.sheet_path) as src:
                for _event, element in _iterparse(src):
                    if element.tag in (_C, _ROW, _SHEET_DATA):  # the data began: no dimension before it
                        return None
                    if element.tag == _DIMENSION:
                        return range_boundaries(element.get("ref", ""))[3]
        except (LimitExceeded, MemoryError):
            raise
        except Exception:  # no readable dimension: no estimate
            return None
        return None

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        """(row number, cells) of the sheet's rows as they are parsed: a row's cells counted as each ends
        (the columns limit), the row's number, cells' columns and lengths checked when it ends; a row is
        cleared once read, and so is anything before ``<sheetData>``; nothing after it is parsed."""
        from openpyxl.worksheet._reader import WorkSheetParser

        wb, limits = self.wb, self.limits
        with self.archive.open(self.sheet_path) as src:
            parser = WorkSheetParser(src, self.strings, data_only=True, epoch=wb.epoch,
                                     date_formats=wb._date_formats, timedelta_formats=wb._timedelta_formats)
            pending = 0
            for _event, element in _iterparse(src):
                tag = element.tag
                if tag == _C:
                    pending += 1
                    if pending > limits.columns:
                        _columns_limit(pending, limits, parser.row_counter + 1)
                elif tag == _ROW:
                    r = element.get("r")
                    parser.row_counter = int(r) if r and r.isdigit() else parser.row_counter + 1
                    parser.col_counter = 0
                    _rows_limit(parser.row_counter, limits)
                    cells: list[Any] = []
                    for c in element:
                        if c.tag != _C:
                            continue
                        cell = parser.parse_cell(c)
                        column, value = cell["column"], cell["value"]
                        _columns_limit(column, limits, parser.row_counter)
                        _cell_limit(value, limits, parser.row_counter)
                        if column > len(cells):
                            cells.extend([None] * (column - len(cells)))
                        cells[column - 1] = value
                    element.clear()
                    pending = 0
                    yield parser.row_counter, cells
                elif tag == _SHEET_DATA:
                    return
                elif tag in _BEFORE_DATA:
                    element.clear()


_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_SHARED_STRINGS = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
_SI, _ROW, _C, _SHEET_DATA, _DIMENSION = (_MAIN + "si", _MAIN + "row", _MAIN + "c", _MAIN + "sheetData",
                                          _MAIN + "dimension")
_BEFORE_DATA = {_MAIN + t for t in ("sheetPr", "dimension", "sheetViews", "sheetView", "pane", "selection",
                                    "sheetFormatPr", "cols", "col")}
"""What a sheet holds before its data: cleared as each ends (a giant ``<cols>`` does not stay in memory)."""


_ROOT = re.compile(rb"<[A-Za-z_]")


def _iterparse(src):
    """End events of an XLSX part, by the standard library's C parser. No DTD: a document
    type may only come before the root element, so the part's first 64 KiB must hold the root element's
    start and no ``<!DOCTYPE`` before it (expat's own limits bound entity expansion anyway, and
    ElementTree never fetches external entities). ``defusedxml``'s parser, pure Python, took three
    times as long on a 100,000-row sheet."""
    from xml.etree.ElementTree import iterparse

    head = src.peek(64 * 1024)[:64 * 1024]
    root = _ROOT.search(head)
    if root is None or b"<!DOCTYPE" in head[:root.start()]:
        raise FileRefused("file", "an XML part of the workbook declares a document type, or its root element"
                                  " does not start within 64 KiB")
    return iterparse(src, events=("end",))


def _xlsx_rows(content: bytes, limits: ImportLimits, table: Table | None) -> Iterator[tuple[int, list[Any]]]:
    with _Workbook(content, limits, table) as book:
        try:
            yield from book.rows()
        except (LimitExceeded, MemoryError):
            raise
        except Exception as exc:  # a malformed sheet: XML errors, bad references, a DTD
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, LimitExceeded):
                raise cause from None
            raise FileRefused("file", f"not a readable XLSX sheet ({type(exc).__name__})") from None


def _rows(fmt: str, content: bytes, limits: ImportLimits, table: Table | None = None) -> Iterator[tuple[int, list[Any]]]:
    if len(content) > limits.upload_bytes:
        raise LimitExceeded("ODR_IMPORT_MAX_UPLOAD_MB", _mib(limits.upload_bytes))
    return _csv_rows(content, limits) if fmt == "csv" else _xlsx_rows(content, limits, table)


def read_table(filename: str, content: bytes, limits: ImportLimits = DEFAULT_LIMITS) -> Table:
    """The file's table (its header read); :class:`FileRefused` when it is empty, of another format or
    unreadable, :class:`LimitExceeded` when a limit is exceeded on the way. The rows are read (and the
    limits further checked) by :meth:`Table.rows`; :func:`scan` reads them all."""
    fmt = format_of(filename)
    if not content:
        raise FileRefused("file", "empty")
    table = Table(format=fmt, header=[], content=content, limits=limits)
    first = next(_rows(fmt, content, limits, table), None)
    if first is None:
        raise FileRefused("file", "no header row")
    line, cells = first
    table.header = ["" if c is None else str(c).strip() for c in cells] if fmt == "csv" or line == 1 else []
    return table
