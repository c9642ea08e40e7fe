"""Import files are hostile until read (issue 23): each bomb of ``benchmarks/import_bombs.py`` is refused
with 413 naming ``file`` and the limit's setting, nothing stored; a limit met only while a run reads the
rows fails the run naming it; answers show at most 200 characters of a cell; the file is read in a child
process under its own memory and time limits, so the web process's memory does not move; a province
has at most its share of expensive work going on while another province's proceeds."""

from __future__ import annotations

import asyncio
import csv
import io
import resource

import pytest
import pytest_asyncio

from benchmarks import import_bombs
from benchmarks.import_sample import sample_export, write_csv
from core.db.engine import tenant_transaction
from core.imports import isolation
from core.imports.reading import ImportLimits, LimitExceeded
from core.imports.service import running_tasks
from odr.app import create_app
from tests.conftest import login
from tests.console_helpers import TOKEN, signed_in
from tests.import_helpers import DEPARTMENTS, account, import_province

SLUG, OTHER = "limits", "limits_b"
MiB = 1024 * 1024


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def provinces(demo):
    return {slug: await import_province(demo, slug) for slug in (SLUG, OTHER)}


async def admin(client, slug: str = SLUG) -> dict[str, str]:
    return await login(client, account(slug, "province"), "demo12315")


async def stored_files(slug: str = SLUG) -> int:
    async with tenant_transaction(slug) as conn:
        return await conn.fetchval("SELECT count(*) FROM import_files")


BOMBS = {
    "sheet": ("sheet.xlsx", lambda: import_bombs.sheet_bomb(256 * MiB), "ODR_IMPORT_MAX_DECOMPRESSED_MB"),
    "sheet-lying": ("lying.xlsx", lambda: import_bombs.lying_bomb(64 * MiB), "ODR_IMPORT_MAX_DECOMPRESSED_MB"),
    "shared-strings": ("strings.xlsx", lambda: import_bombs.shared_strings_bomb(100 * MiB),
                       "ODR_IMPORT_MAX_SHARED_STRINGS_MB"),
    "cell": ("cell.xlsx", lambda: import_bombs.cell_bomb(100 * MiB), "ODR_IMPORT_MAX_RATIO"),
    "csv-rows": ("rows.csv", lambda: import_bombs.csv_rows_bomb(300_000), "ODR_IMPORT_MAX_ROWS"),
    "csv-wide": ("wide.csv", lambda: import_bombs.csv_wide_bomb(100_000), "ODR_IMPORT_MAX_COLUMNS"),
    "csv-cell": ("cell.csv", lambda: import_bombs.csv_cell_bomb(10 * MiB), "ODR_IMPORT_MAX_CELL_CHARS"),
    "too-large": ("big.csv", lambda: import_bombs.csv_rows_bomb(1_100_000), "ODR_IMPORT_MAX_UPLOAD_MB"),
}


@pytest.mark.parametrize("bomb", list(BOMBS))
async def test_each_bomb_is_refused_413_naming_the_file_and_its_limit_with_nothing_stored(client, provinces, bomb):
    filename, make, limit = BOMBS[bomb]
    before = await stored_files()
    r = await client.post(f"/api/tenants/{SLUG}/imports/", headers=await admin(client),
                          files={"file": (filename, make())})
    assert r.status_code == 413, r.text[:500]
    assert r.json()["field"] == "file" and limit in r.json()["detail"], r.text[:500]
    assert len(r.text) < 1000  # the answer echoes nothing of the file
    assert await stored_files() == before


async def test_a_limit_met_only_while_a_run_reads_its_rows_fails_the_run_naming_it(client, provinces, demo):
    """A file kept before the limits (put straight into the table) whose header is readable: the dry run
    starts, its reading stops at the rows limit, the run is failed naming it and nothing is imported."""
    content = import_bombs.csv_rows_bomb(300_000)
    async with tenant_transaction(SLUG) as conn:
        file_id = await conn.fetchval(
            """INSERT INTO import_files (kind, filename, format, size, sha256, content, uploaded_by, node_code)
               VALUES ('complaints', 'old.csv', 'csv', $1, 'x', $2, 'tests', '990000') RETURNING id""",
            len(content), content)
    headers = await admin(client)
    preview = await client.get(f"/api/tenants/{SLUG}/imports/{file_id}/preview?rows=3", headers=headers)
    assert preview.status_code == 200 and len(preview.json()["rows"]) == 3  # its first rows are within the limits
    r = await client.post(f"/api/tenants/{SLUG}/imports/{file_id}/dry-run?wait=true", headers=headers)
    assert r.status_code == 200, r.text[:500]
    assert r.json()["status"] == "failed" and "ODR_IMPORT_MAX_ROWS" in r.json()["error"], r.json()
    async with tenant_transaction(SLUG) as conn:
        assert await conn.fetchval("SELECT count(*) FROM import_runs WHERE status = 'running'") == 0
        assert await conn.fetchval("SELECT count(*) FROM complaints WHERE source = 'imported'") == 0


async def test_answers_show_at_most_200_characters_of_a_cell(client, provinces):
    sample = sample_export(3, units=provinces[SLUG], departments=DEPARTMENTS, seed=5, prefix="LONG")
    rows = list(csv.reader(io.StringIO(write_csv(sample).decode("utf-8-sig"))))
    description = rows[0].index("投诉内容")
    rows[0].append("备注" + "注" * 998)  # a header of 1,000 characters
    for row in rows[1:]:
        row[description] = "长" * 5000
        row.append("")
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    headers = await admin(client)
    r = await client.post(f"/api/tenants/{SLUG}/imports/", headers=headers, files={"file": ("long.csv", out.getvalue().encode())})
    assert r.status_code == 201, r.text[:500]
    assert r.json()["header"][-1] == "备注" + "注" * 198 + "…"
    preview = (await client.get(f"/api/tenants/{SLUG}/imports/{r.json()['id']}/preview", headers=headers)).json()
    assert preview["rows"] and all(row["values"]["description"] == "长" * 200 + "…" for row in preview["rows"])
    assert len(str(preview)) < 20_000


async def test_a_file_is_read_in_a_child_process_under_its_own_memory_and_time_limits():
    """What a file makes the reader allocate is the child's: over its address-space limit the read ends
    naming ODR_IMPORT_WORKER_MEMORY_MB, and this process's peak memory did not grow by the file's cell;
    a read longer than its time is killed naming ODR_IMPORT_MAX_SECONDS."""
    generous = ImportLimits(decompressed_bytes=2048 * MiB, ratio=1e9, cell_chars=10**9, memory_bytes=400 * MiB)
    bomb = import_bombs.cell_bomb(600 * MiB)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(LimitExceeded) as refused:
        await isolation.inspect("cell.xlsx", bomb, generous, scan=True)
    assert refused.value.limit == "ODR_IMPORT_WORKER_MEMORY_MB", refused.value
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) * 1024 < 100 * MiB

    slow = ImportLimits(rows=10**9, seconds=0.5)
    with pytest.raises(LimitExceeded) as refused:
        await isolation.inspect("rows.csv", import_bombs.csv_rows_bomb(900_000), slow, scan=True)
    assert refused.value.limit == "ODR_IMPORT_MAX_SECONDS", refused.value


async def test_a_province_has_at_most_its_share_of_imports_while_another_province_imports(client, provinces, demo):
    share = demo.settings.expensive_per_tenant
    assert share >= 1
    sample = sample_export(3000, units=provinces[SLUG], departments=DEPARTMENTS, seed=9, prefix="SHARE")
    headers, others = await admin(client), await admin(client, OTHER)
    file_id = (await client.post(f"/api/tenants/{SLUG}/imports/", headers=headers,
                                 files={"file": ("share.csv", write_csv(sample))})).json()["id"]
    for _ in range(share):  # dry runs going on in the background, each holding a place of the province's share
        r = await client.post(f"/api/tenants/{SLUG}/imports/{file_id}/dry-run", headers=headers)
        assert r.status_code == 202, r.text[:300]
    refused, proceeds = await asyncio.gather(
        client.post(f"/api/tenants/{SLUG}/imports/", headers=headers, files={"file": ("again.csv", write_csv(sample))}),
        client.post(f"/api/tenants/{OTHER}/imports/", headers=others, files={"file": ("other.csv", write_csv(sample))}))
    assert refused.status_code == 503 and refused.headers["retry-after"], refused.text
    assert "ODR_EXPENSIVE_PER_TENANT" in refused.json()["detail"]
    assert proceeds.status_code == 201, proceeds.text[:300]
    await running_tasks()
    r = await client.post(f"/api/tenants/{SLUG}/imports/", headers=headers, files={"file": ("again.csv", write_csv(sample))})
    assert r.status_code == 201, r.text[:300]


async def test_the_console_names_the_limit_in_the_page_language(demo, provinces):
    officer = await signed_in(create_app(demo, manage_lifecycle=False), account(SLUG, "province"))
    token = TOKEN.search((await officer.get("/ui/bureau/imports?lang=zh")).text).group(1)
    r = await officer.post("/ui/bureau/imports", data={"_csrf_token": token},
                           files={"file": ("rows.csv", import_bombs.csv_rows_bomb(300_000))})
    assert r.status_code == 413 and "行数超过 200,000 行" in r.text and "ODR_IMPORT_MAX_ROWS" in r.text
