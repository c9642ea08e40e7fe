"""Masking of consumers' personal data for everyone who does not handle the case (Art. 10(6))."""

from __future__ import annotations


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""


def mask_phone(phone: str) -> str:
    digits = phone.strip()
    if len(digits) >= 7:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * len(digits)


def mask_address(address: str | None) -> str | None:
    if not address:
        return address
    return address[:6] + "****"
