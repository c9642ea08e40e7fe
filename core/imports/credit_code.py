"""The unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters of the code set
``0-9 A-H J-N P-R T-U W-Y``, the last a check character computed from the first 17."""

from __future__ import annotations

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(CHARSET)}
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_character(first17: str) -> str:
    """The check character of the first 17 characters (which must be of the code set)."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS))
    return CHARSET[(31 - total % 31) % 31]


def credit_code_problem(code: str) -> str | None:
    """None for a valid code (upper case, no spaces), else what is wrong with it."""
    if len(code) != 18:
        return f"18 characters expected, {len(code)} given"
    bad = sorted({c for c in code if c not in _VALUE})
    if bad:
        return f"characters outside the code set: {''.join(bad)}"
    expected = check_character(code[:17])
    if code[17] != expected:
        return f"check character is {code[17]}, GB 32100 gives {expected}"
    return None


def with_check_character(first17: str) -> str:
    """A full code from its first 17 characters (tests and sample data)."""
    return first17 + check_character(first17)
