"""Uploaded files and downloads: size limit, type by the whole content (not the declared type, not only
the first bytes), and the headers every download carries.

Contract:
- :func:`check_upload` accepts PDF, JPEG and PNG only, and only when the WHOLE file is of the type its
  first bytes claim (a polyglot is refused): a PNG is walked chunk by chunk (lengths and CRCs) and must
  end at its ``IEND`` chunk; a JPEG's header segments must be well-formed and the file must end at its
  ``EOI`` marker; a PDF must start with ``%PDF-`` and end with ``%%EOF`` (only whitespace after it). No
  image may hold HTML markers (``<html``, ``<script``, ...) in its first :data:`HTML_SCAN_BYTES` bytes,
  where a browser that sniffs would look, and no PDF anywhere. Errors are ``ValueError`` / :class:`FileTooLarge` whose
  message starts with the form field (``"file: ..."``), so the API answers 400/413 naming it. The
  stored name has control characters, path separators and quotes replaced.
- :func:`download_headers` is what every download answers with: RFC 6266 ``Content-Disposition``
  (an ASCII ``filename="..."`` fallback and the UTF-8 ``filename*``, percent-encoded, so a Chinese
  name downloads and ``'``, ``;``, ``<``, ``"`` or a control character never reach the header raw),
  ``X-Content-Type-Options: nosniff``, ``Content-Security-Policy: sandbox`` (an opened file runs no
  script and reaches no origin) and ``Cache-Control: private, no-store``.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from urllib.parse import quote

import msgspec

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
HTML_SCAN_BYTES = 8192
"""How much of the start of a file is searched for HTML markers."""
_PNG = b"\x89PNG\r\n\x1a\n"
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\xff\xd8\xff", "image/jpeg"), (_PNG, "image/png"))
_HTML = re.compile(rb"<\s*(?:html|script|body|head|iframe|svg|!doctype\s+html|\?xml)(?=[\s/>])", re.IGNORECASE)
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\\"]")
_PDF_TAIL_BYTES = 1024
"""``%%EOF`` must be within this many bytes of a PDF's end (the tolerance PDF readers have)."""


class FileTooLarge(ValueError):
    pass


class StoredFile(msgspec.Struct, frozen=True, kw_only=True):
    filename: str
    content_type: str
    size: int
    sha256: str
    content: bytes


def sniff(content: bytes) -> str | None:
    """The type the first bytes claim (PDF, JPEG, PNG), or None; see :func:`structure_problem` for the rest."""
    for magic, kind in _MAGIC:
        if content.startswith(magic):
            return kind
    return None


def _png_problem(content: bytes) -> str | None:
    at = len(_PNG)
    first = True
    while at + 12 <= len(content):
        (length,) = struct.unpack(">I", content[at:at + 4])
        kind = content[at + 4:at + 8]
        end = at + 12 + length
        if end > len(content) or not kind.isalpha():
            return "its PNG chunks are cut or malformed"
        if first and kind != b"IHDR":
            return "it does not start with a PNG header chunk"
        first = False
        (crc,) = struct.unpack(">I", content[end - 4:end])
        if zlib.crc32(content[at + 4:end - 4]) != crc:
            return "a PNG chunk's checksum does not match"
        at = end
        if kind == b"IEND":
            return None if at == len(content) else "it continues after the end of the PNG image"
    return "it has no end of PNG image"


def _jpeg_problem(content: bytes) -> str | None:
    at = 2  # after SOI
    while True:
        if at + 4 > len(content) or content[at] != 0xFF:
            return "its JPEG segments are cut or malformed"
        marker = content[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0xD9:
            return None if at + 2 == len(content) else "it continues after the end of the JPEG image"
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length
            at += 2
            continue
        (length,) = struct.unpack(">H", content[at + 2:at + 4])
        if length < 2 or at + 2 + length > len(content):
            return "its JPEG segments are cut or malformed"
        at += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the end marker
            if not content.endswith(b"\xff\xd9"):
                return "it does not end with the end of the JPEG image"
            return None


def _pdf_problem(content: bytes) -> str | None:
    eof = content.rfind(b"%%EOF", max(0, len(content) - _PDF_TAIL_BYTES))
    if eof < 0:
        return "it has no PDF end marker (%%EOF)"
    if content[eof + 5:].strip(b" \t\r\n\x00"):
        return "it continues after the end of the PDF document"
    return None


_STRUCTURE = {"image/png": _png_problem, "image/jpeg": _jpeg_problem, "application/pdf": _pdf_problem}


def structure_problem(kind: str, content: bytes) -> str | None:
    """Why ``content`` is not wholly a file of ``kind`` (a sniffed type), or None when it is."""
    # a PDF is searched whole (its text is mostly plain); an image's compressed data only at its start
    if _HTML.search(content, 0, len(content) if kind == "application/pdf" else HTML_SCAN_BYTES):
        return "it holds HTML"
    return _STRUCTURE[kind](content)


def safe_filename(filename: str | None, default: str) -> str:
    """``filename`` with control characters, path separators and quotes replaced, at most 200 characters."""
    return _UNSAFE_NAME.sub("_", filename or "").strip()[:200] or default


def check_upload(field: str, filename: str, content: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES) -> StoredFile:
    """Validate one uploaded file; errors name ``field``. Accepts PDF, JPEG and PNG (whole content checked)."""
    if len(content) == 0:
        raise ValueError(f"{field}: the file is empty")
    if len(content) > max_bytes:
        raise FileTooLarge(f"{field}: the file is {len(content)} bytes; at most {max_bytes} bytes are accepted")
    kind = sniff(content)
    if kind is None:
        raise ValueError(f"{field}: only PDF, JPEG or PNG files are accepted (checked by content)")
    problem = structure_problem(kind, content)
    if problem is not None:
        raise ValueError(f"{field}: not a well-formed {kind.split('/')[1].upper()} file ({problem}); "
                         "only PDF, JPEG or PNG files are accepted")
    return StoredFile(filename=safe_filename(filename, field), content_type=kind, size=len(content),
                      sha256=hashlib.sha256(content).hexdigest(), content=content)


def content_disposition(filename: str, *, ascii_name: str | None = None) -> str:
    """RFC 6266 / RFC 5987: ``attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>``;
    the fallback is ``ascii_name`` (else ``filename``) with every character but letters, digits and
    ``._-`` replaced by ``_``."""
    fallback = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_"
                       for ch in (filename if ascii_name is None else ascii_name)) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def download_headers(filename: str, *, ascii_name: str | None = None) -> dict[str, str]:
    """The headers of a file download (see the module docs)."""
    return {
        "Content-Disposition": content_disposition(filename, ascii_name=ascii_name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "private, no-store",
    }
