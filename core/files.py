"""Uploaded files: size limit and type by content (magic bytes), not by the declared type."""

from __future__ import annotations

import hashlib

import msgspec

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


class FileTooLarge(ValueError):
    pass


class StoredFile(msgspec.Struct, frozen=True, kw_only=True):
    filename: str
    content_type: str
    size: int
    sha256: str
    content: bytes


def sniff(content: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if content.startswith(magic):
            return kind
    return None


def check_upload(field: str, filename: str, content: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES) -> StoredFile:
    """Validate one uploaded file; errors name ``field``. Accepts PDF, JPEG and PNG."""
    if len(content) == 0:
        raise ValueError(f"{field}: the file is empty")
    if len(content) > max_bytes:
        raise FileTooLarge(f"{field}: the file is {len(content)} bytes; at most {max_bytes} bytes are accepted")
    kind = sniff(content)
    if kind is None:
        raise ValueError(f"{field}: only PDF, JPEG or PNG files are accepted (checked by content)")
    name = (filename or field).replace("/", "_").replace("\\", "_")[:200]
    return StoredFile(filename=name, content_type=kind, size=len(content), sha256=hashlib.sha256(content).hexdigest(), content=content)
