"""Hostile import files, made on the fly (issue 23): the noisy-neighbour scenario uploads them and the
tests of the import limits read them.

Each XLSX is a real workbook (written by openpyxl) whose first sheet or shared strings are replaced by
a part streamed through ``zipfile``'s deflate, so a file of a few MB expands to gigabytes without the
expansion ever being in memory here. Sizes are parameters: the scenario's full run uses the sizes of
the issue, ``--tiny`` and the tests smaller ones against smaller limits.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator

_SHEET = "xl/worksheets/sheet1.xml"
_STRINGS = "xl/sharedStrings.xml"
_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_STRINGS_TYPE = ('<Override PartName="/xl/sharedStrings.xml" '
                 'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>')
_STRINGS_REL = ('<Relationship Id="rIdStrings" Target="sharedStrings.xml" '
                'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"/>')
CHUNK = 1024 * 1024
HEADER = ["登记编号", "登记时间", "投诉人姓名", "投诉人电话", "被投诉单位名称", "投诉内容"]
"""The national layout's required columns: a bomb's header is readable, so what refuses it is a limit
(a dry run then fails on the way, naming it)."""
_HEADER_ROW = ('<row r="1">' + "".join(f'<c t="inlineStr"><is><t>{h}</t></is></c>' for h in HEADER) + "</row>").encode()
_CSV_HEADER = (",".join(HEADER) + "\n").encode()


def _base() -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(HEADER)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _repeat(head: bytes, unit: bytes, total: int, tail: bytes) -> Iterator[bytes]:
    """``head``, then ``unit`` repeated up to ``total`` bytes in about 1 MiB pieces, then ``tail``."""
    yield head
    piece = unit * max(1, CHUNK // len(unit))
    left = max(0, total - len(head) - len(tail))
    while left > 0:
        part = piece if left >= len(piece) else unit * max(1, left // len(unit))
        yield part
        left -= len(part)
    yield tail


def _workbook(parts: dict[str, Callable[[], Iterator[bytes]]], *, level: int = 9, zip64: bool = True) -> bytes:
    """The base workbook with ``parts`` (member name -> chunks) streamed in instead of its own."""
    base = zipfile.ZipFile(io.BytesIO(_base()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as book:
        for info in base.infolist():
            if info.filename in parts:
                continue
            data = base.read(info.filename)
            if _STRINGS in parts and info.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", _STRINGS_TYPE.encode() + b"</Types>")
            if _STRINGS in parts and info.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace(b"</Relationships>", _STRINGS_REL.encode() + b"</Relationships>")
            book.writestr(info, data)
        for name, chunks in parts.items():
            with book.open(name, "w", force_zip64=zip64) as part:
                for chunk in chunks():
                    part.write(chunk)
    return out.getvalue()


def sheet_bomb(expanded: int = 3 * 1024 ** 3, *, zip64: bool = True) -> bytes:
    """An XLSX whose sheet XML expands to ``expanded`` bytes of identical rows (3 GiB: a file of ~10 MB,
    made in ~20 s; the rows limit or the decompressed limit stops a reader long before)."""
    head = f'<?xml version="1.0" encoding="UTF-8"?><worksheet {_NS}><sheetData>'.encode() + _HEADER_ROW
    row = b'<row><c t="inlineStr"><is><t>0123456789</t></is></c><c t="inlineStr"><is><t>abc</t></is></c></row>'
    return _workbook({_SHEET: lambda: _repeat(head, row, expanded, b"</sheetData></worksheet>")}, zip64=zip64)


def shared_strings_bomb(size: int = 100 * 1024 * 1024) -> bytes:
    """An XLSX with ``size`` bytes of shared strings (about 60 bytes each) and a sheet using the first."""
    head = f'<?xml version="1.0" encoding="UTF-8"?><sst {_NS}>'.encode()
    item = b"<si><t>" + b"x" * 48 + b"</t></si>"
    sheet = (f'<?xml version="1.0" encoding="UTF-8"?><worksheet {_NS}><sheetData><row r="1">'
             '<c r="A1" t="s"><v>0</v></c></row></sheetData></worksheet>').encode()
    return _workbook({_STRINGS: lambda: _repeat(head, item, size, b"</sst>"), _SHEET: lambda: iter([sheet])})


def cell_bomb(chars: int = 100 * 1024 * 1024) -> bytes:
    """An XLSX whose second row holds one cell of ``chars`` characters (100 MiB: a file of ~100 KB)."""
    head = (f'<?xml version="1.0" encoding="UTF-8"?><worksheet {_NS}><sheetData>'.encode() + _HEADER_ROW
            + b'<row r="2"><c r="A2" t="inlineStr"><is><t>')
    tail = b"</t></is></c></row></sheetData></worksheet>"
    return _workbook({_SHEET: lambda: _repeat(head, b"A" * 1024, chars + len(head) + len(tail), tail)})


def lying_bomb(expanded: int = 64 * 1024 * 1024) -> bytes:
    """An XLSX whose sheet member declares 1 KB but inflates to ``expanded`` bytes (its central
    directory and local header rewritten)."""
    data = bytearray(sheet_bomb(expanded, zip64=False))
    book = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = book.getinfo(_SHEET)
    if info.file_size >= 0xFFFFFFFF or info.compress_size >= 0xFFFFFFFF:
        raise ValueError("keep the lying bomb under 4 GiB")
    import struct

    # local header: uncompressed size at offset 22 (zip64 extra, when present, holds the sizes instead)
    offset = info.header_offset
    name_len, extra_len = struct.unpack_from("<HH", data, offset + 26)
    struct.pack_into("<I", data, offset + 22, 1024)
    extra_at = offset + 30 + name_len
    if extra_len >= 20 and struct.unpack_from("<H", data, extra_at)[0] == 1:
        struct.pack_into("<Q", data, extra_at + 4, 1024)
    # central directory entry
    at = data.find(b"PK\x01\x02")
    while at != -1:
        if data[at + 46:at + 46 + len(_SHEET)] == _SHEET.encode():
            struct.pack_into("<I", data, at + 24, 1024)
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


def csv_rows_bomb(rows: int = 300_000) -> bytes:
    """A CSV of ``rows`` tiny rows (the rows limit)."""
    return _CSV_HEADER + b"1,2026-01-01,a,1,b,c\n" * rows


def csv_wide_bomb(columns: int = 100_000) -> bytes:
    """A CSV whose header has ``columns`` columns (the columns limit)."""
    return ",".join(f"c{i}" for i in range(columns)).encode() + b"\n"


def csv_cell_bomb(chars: int = 10 * 1024 * 1024) -> bytes:
    """A CSV whose second line holds one quoted cell of ``chars`` characters (the cell limit)."""
    return _CSV_HEADER + b'"' + b"A" * chars + b'"\n'


BOMBS: dict[str, tuple[str, Callable[..., bytes]]] = {
    "sheet": ("sheet.xlsx", sheet_bomb),
    "shared-strings": ("strings.xlsx", shared_strings_bomb),
    "cell": ("cell.xlsx", cell_bomb),
    "csv-rows": ("rows.csv", csv_rows_bomb),
    "csv-wide": ("wide.csv", csv_wide_bomb),
    "csv-cell": ("cell.csv", csv_cell_bomb),
}
"""Each bomb's file name and maker (its default size: the issue's)."""
