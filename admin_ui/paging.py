"""Paging of the console's lists: the ``page`` query parameter, and where a page of a list starts.

Contract:
- :func:`requested_page` reads ``?page=`` (1-based; absent or blank means 1). Anything else than a
  whole number from 1 to :data:`MAX_PAGE` raises ``ValueError("page: ...")``: the console answers 400
  naming the parameter.
- :meth:`Pager.clamped` makes the pager of a list of ``total`` items, ``size`` per page: a page past
  the last one shows the last one (a list shrinks while it is open: cases move on), so a stale link or
  a live refresh never answers an empty page of a list that has items.
- :meth:`Pager.url` is the link to another page of the same list: the current query with ``page``
  replaced; ``fragment``, ``done`` and ``lang`` are dropped (a page link opens the whole page).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlencode

MAX_PAGE = 100_000
_DROPPED = ("page", "fragment", "done", "lang")


def requested_page(query: Mapping[str, str]) -> int:
    """The 1-based page asked for by ``?page=`` (1 when absent); ValueError naming ``page`` otherwise."""
    raw = (query.get("page") or "").strip()
    if not raw:
        return 1
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(MAX_PAGE)) or not 1 <= int(raw) <= MAX_PAGE:
        raise ValueError(f"page: must be a whole number from 1 to {MAX_PAGE} / 页码须为 1 至 {MAX_PAGE} 的整数")
    return int(raw)


@dataclass(frozen=True)
class Pager:
    """One page of a list: its 1-based ``number``, the page ``size`` and the list's ``total``."""

    number: int
    size: int
    total: int
    path: str = ""
    query: tuple[tuple[str, str], ...] = ()

    @classmethod
    def clamped(cls, wanted: int, size: int, total: int, *, path: str = "", query: Mapping[str, str] | None = None) -> Pager:
        size = max(1, int(size))
        pages = max(1, -(-int(total) // size))
        kept = tuple((k, v) for k, v in (query or {}).items() if k not in _DROPPED)
        return cls(number=min(max(1, wanted), pages), size=size, total=int(total), path=path, query=kept)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def first_item(self) -> int:
        """The 1-based position of the page's first item (0 for an empty list)."""
        return min(self.offset + 1, self.total)

    @property
    def last_item(self) -> int:
        return min(self.offset + self.size, self.total)

    def url(self, number: int, **extra: str) -> str:
        """The link to page ``number`` of this list (``extra`` query parameters added, e.g. ``fragment``)."""
        params = [*self.query, *extra.items()]
        if number != 1 or extra:
            params.append(("page", str(number)))
        return f"{self.path}?{urlencode(params)}" if params else self.path
