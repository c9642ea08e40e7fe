"""The console's import of a 12315 export without a browser (in-process HTTP): upload, preview with the
mapping, dry run listing every row's problems, import with a progress bar, the mapping editor; CSRF,
roles and bad input."""

from __future__ import annotations

import asyncio
import re

import pytest_asyncio

from admin_ui import i18n
from benchmarks.import_sample import sample_export, write_csv, write_xlsx
from core.complaints.masking import mask_phone
from core.db.engine import tenant_transaction
from odr.app import create_app
from tests.console_helpers import TOKEN, signed_in
from tests.import_helpers import DEPARTMENTS, account, import_province

SLUG = "uiimports"
FILE = re.compile(r"^/ui/bureau/imports/files/([0-9a-f-]{36})$")
RUN = re.compile(r"^/ui/bureau/imports/runs/([0-9a-f-]{36})$")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(demo):
    return create_app(demo, manage_lifecycle=False)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def units(demo):
    return await import_province(demo, SLUG, seed=11)


async def imported(prefix: str) -> int:
    async with tenant_transaction(SLUG) as conn:
        return await conn.fetchval("SELECT count(*) FROM complaints WHERE registration_number LIKE $1", prefix + "%")


async def finished(c, location: str) -> str:
    """The run page once the run is no longer running (its progress fragment polled as htmx does)."""
    for _ in range(200):
        r = await c.get(location + "?fragment=1", headers={"HX-Request": "true"})
        assert r.status_code == 200 and "<progress" in r.text
        if 'data-status="running"' not in r.text:
            break
        assert 'hx-trigger="every 1s"' in r.text
        await asyncio.sleep(0.05)
    page = await c.get(location)
    assert page.status_code == 200
    return page.text


async def test_upload_preview_dry_run_and_import_with_a_progress_bar(app, units):
    officer = await signed_in(app, account(SLUG, "city"))
    start = await officer.get("/ui/bureau/imports")
    assert start.status_code == 200 and i18n.t("import.title") in start.text
    assert 'enctype="multipart/form-data"' in start.text and "[columns]" in start.text  # the mapping editor
    token = TOKEN.search(start.text).group(1)
    queue = await officer.get("/ui/bureau")
    assert 'href="/ui/bureau/imports"' in queue.text

    sample = sample_export(130, units=units, departments=DEPARTMENTS, seed=3, prefix="UI")
    good = 130 - len(sample.bad)
    assert good == 128
    r = await officer.post("/ui/bureau/imports", data={"_csrf_token": token},
                           files={"file": ("案件导出.xlsx", write_xlsx(sample))})
    assert r.status_code == 303, r.text[-800:]
    file_url = r.headers["location"]
    assert FILE.match(file_url), file_url

    preview = await officer.get(file_url)
    assert preview.status_code == 200
    text = preview.text
    assert text.count('<tr data-line="') == 10  # the first ten rows
    assert mask_phone(sample.rows[0][4]) in text and sample.rows[0][4] not in text  # masked in the preview
    assert "统一社会信用代码" in text and i18n.t("import.field.credit_code") in text
    assert 'action="/ui/bureau/imports/files/' in text and i18n.t("import.dry_run") in text
    token = TOKEN.search(text).group(1)

    r = await officer.post(file_url + "/dry-run", data={"_csrf_token": token})
    assert r.status_code == 303 and RUN.match(r.headers["location"]), r.text[-500:]
    page = await finished(officer, r.headers["location"])
    assert 'data-status="done"' in page and i18n.t("import.dry_run_done") in page
    listed = {(int(line), field) for line, field in re.findall(r'<tr data-line="(\d+)" data-field="([a-z_]+)">', page)}
    assert listed == set(sample.bad.items())
    assert await imported("UI") == 0

    r = await officer.post(file_url + "/run", data={"_csrf_token": token})
    assert r.status_code == 303
    page = await finished(officer, r.headers["location"])
    assert i18n.t("import.done", created=good, present=0) in page
    assert '<progress id="import-progress" max="130" value="130">' in page
    assert await imported("UI") == good

    again = await officer.get(file_url)  # the runs are listed on the file's page
    assert again.text.count('<tr data-run="') == 2
    r = await officer.post(file_url + "/run", data={"_csrf_token": token})
    page = await finished(officer, r.headers["location"])
    assert i18n.t("import.done", created=0, present=good) in page
    assert await imported("UI") == good

    english = await officer.get(r.headers["location"] + "?lang=en")
    assert f"Import finished: 0 created, {good} already present." in english.text


async def test_bad_files_mapping_roles_and_csrf(app, units):
    officer = await signed_in(app, account(SLUG, "province"))
    token = TOKEN.search((await officer.get("/ui/bureau/imports")).text).group(1)
    r = await officer.post("/ui/bureau/imports", data={"_csrf_token": token}, files={"file": ("notes.txt", b"hello")})
    assert r.status_code == 400 and 'id="f-file-err"' in r.text and "format" in r.text
    r = await officer.post("/ui/bureau/imports", data={"_csrf_token": token}, files={"file": ("x.csv", b"")})
    assert r.status_code == 400 and 'id="f-file-err"' in r.text

    # a file without a required column: shown, refused, no button
    r = await officer.post("/ui/bureau/imports", data={"_csrf_token": token},
                           files={"file": ("x.csv", "编号,其他\n1,2\n".encode())})
    page = await officer.get(r.headers["location"])
    assert 'id="file-refused"' in page.text and "columns.received_at" in page.text and 'id="run-form"' not in page.text

    r = await officer.post("/ui/bureau/imports/mapping", data={"_csrf_token": token, "mapping": "[columns]\namount = 3\n"})
    assert r.status_code == 400 and 'id="f-mapping-err"' in r.text and "columns.amount" in r.text
    r = await officer.post("/ui/bureau/imports/mapping", data={"_csrf_token": token, "mapping": "[columns\n"})
    assert r.status_code == 400 and "TOML" in r.text
    good = '[columns]\nregistration_number = ["登记编号"]\n[departments]\n"市局" = "990100"\n'
    r = await officer.post("/ui/bureau/imports/mapping", data={"_csrf_token": token, "mapping": good})
    assert r.status_code == 303
    page = await officer.get(r.headers["location"])
    assert i18n.t("import.mapping_saved") in page.text and "&#34;市局&#34; = &#34;990100&#34;" in page.text
    r = await officer.post("/ui/bureau/imports/mapping", data={"_csrf_token": token, "mapping": ""})
    assert r.status_code == 303  # back to the national layout

    r = await officer.post("/ui/bureau/imports", files={"file": ("a.csv", write_csv(sample_export(1, units=units, departments=DEPARTMENTS)))})
    assert r.status_code == 403  # no CSRF token
    district = await signed_in(app, account(SLUG, "district"))
    assert (await district.get("/ui/bureau/imports")).status_code == 403
    # the menu links the imports exactly for those the import endpoints allow
    assert 'href="/ui/bureau/imports"' in (await officer.get("/ui/bureau")).text  # province admin
    district_queue = await district.get("/ui/bureau")
    assert district_queue.status_code == 200 and 'href="/ui/bureau/applications"' in district_queue.text
    assert 'href="/ui/bureau/imports"' not in district_queue.text
    office = await signed_in(app, account(SLUG, "office"))
    assert (await office.get("/ui/bureau/imports")).status_code == 403
