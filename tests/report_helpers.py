"""Helpers for the report and public-directory tests: a throw-away copy of a demo manifest seeded with
the demo history, its facts read back in Python (to compute expected figures independently of the
report SQL), and an XLSX reader built on zipfile (no spreadsheet library needed)."""

from __future__ import annotations

import contextlib
import io
import re
import zipfile
from typing import AsyncIterator
from xml.etree import ElementTree

import msgspec

from core.auth.accounts import create_account
from core.db.engine import platform_transaction, tenant_transaction
from odr.demo.history import HistorySummary, seed_history
from tenants.manifest import load_manifest
from tenants.onboarding import offboard, onboard
from tests.conftest import DEMO_PASSWORD


@contextlib.asynccontextmanager
async def seeded_copy(demo, source: str, slug: str, accounts, *, cluster: str = "primary",
                      **seed) -> AsyncIterator[HistorySummary]:
    """Onboard ``source``'s manifest as ``slug`` on ``cluster``, add ``accounts`` ((username, role,
    node)), seed the demo history (``seed``: keyword arguments of :func:`seed_history`); offboard
    afterwards."""
    manifest = msgspec.structs.replace(load_manifest(source), slug=slug)
    await offboard(slug)  # a leftover of an interrupted run
    await onboard(manifest, host=demo.host, actor="tests", cluster=cluster)
    demo.forget_tenant(slug)
    try:
        async with platform_transaction() as conn:
            for username, role, node in accounts:
                await create_account(conn, username=username, password=DEMO_PASSWORD, role=role, tenant=slug,
                                     node_code=node)
        summary = await seed_history(demo, slug, **seed)
        assert summary.seeded
        yield summary
    finally:
        await offboard(slug)
        demo.forget_tenant(slug)
        async with platform_transaction() as conn:
            await conn.execute("DELETE FROM odr.plugin_activations WHERE tenant = $1", slug)


async def complaint_rows(slug: str) -> list[dict]:
    """Every complaint of the tenant (the wide table, not complaint_facts) with its unit's class and
    the Asia/Shanghai day it was received."""
    async with tenant_transaction(slug) as conn:
        rows = await conn.fetch(
            """SELECT c.*, e.classification->>'code' AS cls, e.name AS unit_name, e.credit_code AS unit_code,
                      (c.created_at AT TIME ZONE 'Asia/Shanghai')::date AS received_day
               FROM complaints c LEFT JOIN enterprises e ON e.id = c.enterprise_id""")
    return [dict(r) for r in rows]


# -- XLSX ------------------------------------------------------------------------------------------
_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
_REF = re.compile(r"([A-Z]+)(\d+)")


def _col_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def read_xlsx(content: bytes, sheet: int = 1) -> list[list[object]]:
    """The cells of sheet ``sheet`` (1-based) as rows of values: shared and inline strings as str,
    numbers as float, empty cells as None."""
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        assert z.testzip() is None
        shared: list[str] = []
        if "xl/sharedStrings.xml" in z.namelist():
            root = ElementTree.fromstring(z.read("xl/sharedStrings.xml"))
            for si in root.findall("m:si", _NS):
                shared.append("".join(t.text or "" for t in si.iter(f"{{{_NS['m']}}}t")))
        root = ElementTree.fromstring(z.read(f"xl/worksheets/sheet{sheet}.xml"))
    rows: list[list[object]] = []
    for row in root.find("m:sheetData", _NS).findall("m:row", _NS):
        y = int(row.get("r")) - 1
        while len(rows) <= y:
            rows.append([])
        for c in row.findall("m:c", _NS):
            letters, _ = _REF.match(c.get("r")).groups()
            x = _col_index(letters)
            kind = c.get("t")
            v = c.find("m:v", _NS)
            if kind == "s":
                value: object = shared[int(v.text)]
            elif kind == "inlineStr":
                value = "".join(t.text or "" for t in c.iter(f"{{{_NS['m']}}}t"))
            elif kind == "str":
                value = v.text if v is not None else ""
            elif v is None:
                value = None
            else:
                value = float(v.text)
            cells = rows[y]
            while len(cells) <= x:
                cells.append(None)
            cells[x] = value
    return rows


def xlsx_sheet_names(content: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        root = ElementTree.fromstring(z.read("xl/workbook.xml"))
    return [s.get("name") for s in root.find("m:sheets", _NS).findall("m:sheet", _NS)]
