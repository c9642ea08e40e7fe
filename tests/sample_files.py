"""Small well-formed files of the accepted upload types (PDF, PNG, JPEG), made here, and polyglots of them."""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int = 1, height: int = 1) -> bytes:
    """A real greyscale PNG (decodes in any viewer)."""
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def jpeg() -> bytes:
    """A JPEG's structure: SOI, a JFIF APP0 segment, a quantisation table, a frame header, a scan, EOI."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\x00" + bytes(range(1, 65))
    sof = b"\x08\x00\x01\x00\x01\x01\x01\x11\x00"
    sos = b"\x01\x01\x00\x00\x3f\x00"

    def seg(marker: int, data: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(data) + 2) + data

    return b"\xff\xd8" + seg(0xE0, app0) + seg(0xDB, dqt) + seg(0xC0, sof) + seg(0xDA, sos) + b"\x12\x34\x56" + b"\xff\xd9"


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = png()
JPEG = jpeg()
HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"
POLYGLOTS = {
    "png-then-html": ("a.png", PNG + HTML),
    "png-signature-then-html": ("a.png", b"\x89PNG\r\n\x1a\n" + HTML),
    "jpeg-then-html": ("a.jpg", JPEG + HTML),
    "pdf-then-html": ("a.pdf", PDF + HTML),
    "pdf-holding-html": ("a.pdf", b"%PDF-1.4\n" + HTML + b"\n%%EOF\n"),
    "png-text-chunk-html": ("a.png", PNG[:33] + _chunk(b"tEXt", b"c\x00" + HTML) + PNG[33:]),
}
"""Files that start like an accepted type and are (or hold) HTML: each must be refused."""
