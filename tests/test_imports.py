"""Import of 12315 case exports (issue 15): a generated export of 1,000 rows in the national layout with
bad rows, as CSV and XLSX, through the service, the API and ``odr import``: every bad row refused with
its line and field, nothing half-written, re-importing creates nothing; jurisdiction, deadlines of the
policy in force at the received time, state and masking of the imported complaints."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_asyncio

from benchmarks.import_sample import sample_export, write_csv, write_xlsx
from core.complaints.masking import mask_address, mask_name, mask_phone
from core.db.engine import platform_transaction, tenant_transaction
from core.deadlines.service import complaint_deadlines
from core.imports.mapping import DEFAULT_MAPPING, mapping_from_toml
from core.imports.reading import read_table
from core.imports.service import cli_principal, import_complaints
from core.pluginhost.activations import save_activation
from tests.conftest import login
from tests.import_helpers import DEPARTMENTS, DISTRICT, account, import_province

SLUG = "imports"
ROOT = Path(__file__).resolve().parent.parent


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def province(demo):
    return await import_province(demo, SLUG)


async def counts(slug: str) -> dict[str, int]:
    async with tenant_transaction(slug) as conn:
        return dict(await conn.fetchrow(
            """SELECT (SELECT count(*) FROM complaints WHERE source = 'imported') AS complaints,
                      (SELECT count(*) FROM complaint_events e JOIN complaints c ON c.id = e.complaint_id
                        WHERE c.source = 'imported') AS events,
                      (SELECT count(*) FROM complaint_facts WHERE source = 'imported') AS facts,
                      (SELECT count(*) FROM timers t JOIN complaints c ON c.id = t.complaint_id
                        WHERE c.source = 'imported') AS timers"""))


async def test_sample_export_imports_with_every_bad_row_reported_and_again_creates_nothing(demo, province):
    sample = sample_export(1000, units=province, departments=DEPARTMENTS, seed=1)
    assert len(sample.bad) == 20 and set(sample.bad.values()) == {"credit_code", "registration_number", "received_at", "amount"}
    table = read_table("export.csv", write_csv(sample))
    nodes = await demo.nodes(SLUG)
    who = cli_principal(SLUG, nodes)
    before = await counts(SLUG)

    dry = await import_complaints(demo, SLUG, who, table, DEFAULT_MAPPING, filename="export.csv", dry_run=True, batch_size=300)
    assert await counts(SLUG) == before  # a dry run writes nothing
    refused = {p.line: p.field for p in dry.problems}
    assert refused == sample.bad, sorted(set(refused.items()) ^ set(sample.bad.items()))
    assert (dry.processed, dry.created, dry.present, dry.refused) == (1000, 980, 0, 20)
    assert all(p.problem for p in dry.problems)

    seen: list[int] = []
    report = await import_complaints(demo, SLUG, who, table, DEFAULT_MAPPING, filename="export.csv", dry_run=False,
                                     batch_size=300, progress=lambda r: seen.append(r.processed))
    assert seen == [300, 600, 900, 1000, 1000]
    assert (report.created, report.present, report.refused) == (980, 0, 20)
    assert {p.line: p.field for p in report.problems} == sample.bad
    after = await counts(SLUG)
    assert after["complaints"] - before["complaints"] == 980
    # whole: one registered event and one facts row per complaint, timers only for open cases in ODR
    assert after["events"] - before["events"] == 980 and after["facts"] - before["facts"] == 980
    async with tenant_transaction(SLUG) as conn:
        rows = await conn.fetch("SELECT registration_number, state, enterprise_id, node_code, entered_odr_at, created_at,"
                                " closed_at, contact_due, close_due, deadline_policy, deadlines,"
                                " (SELECT count(*) FROM timers t WHERE t.complaint_id = c.id) AS timers"
                                " FROM complaints c WHERE source = 'imported'")
    by_number = {r["registration_number"]: r for r in rows}
    good = [row for i, row in enumerate(sample.rows) if i + 2 not in sample.bad]
    assert set(by_number) == {row[0] for row in good}
    for row in good:
        c = by_number[row[0]]
        received = dt.datetime.strptime(row[1], "%Y-%m-%d %H:%M:%S")
        assert c["created_at"].astimezone(dt.timezone(dt.timedelta(hours=8))).replace(tzinfo=None) == received
        state = {"已办结": "closed", "不予受理": "returned", "已撤回": "withdrawn"}.get(row[12])
        if row[7]:  # a registered ODR unit: its node
            assert c["node_code"] == DISTRICT and c["enterprise_id"] is not None
        else:  # the handling department's node
            assert c["node_code"] == {DEPARTMENTS[0]: DISTRICT, DEPARTMENTS[1]: "990102"}[row[11]]
        if state is not None:
            assert c["state"] == state and c["timers"] == 0 and c["contact_due"] is None
            assert (c["closed_at"] is not None) == (state == "closed")
        elif row[7]:
            assert c["state"] == "with_enterprise" and c["entered_odr_at"] == c["created_at"]
            assert c["deadline_policy"] and c["deadlines"] and 2 <= c["timers"] <= 4
        else:
            assert c["state"] == "registered" and c["timers"] == 0 and c["contact_due"] is None

    again = await import_complaints(demo, SLUG, who, read_table("export.xlsx", write_xlsx(sample)), DEFAULT_MAPPING,
                                    filename="export.xlsx", dry_run=False)
    assert (again.created, again.present, again.refused) == (0, 980, 20)
    assert {p.line: p.field for p in again.problems} == sample.bad  # the same lines in the XLSX
    assert await counts(SLUG) == after


async def test_deadlines_follow_the_policy_in_force_at_the_received_time(demo, province):
    """Jinshan's plugin switched on at the district now: a case received before keeps the national
    rule, one received after gets the new one, each counted from its received time."""
    paths = {c: n.path for c, n in (await demo.nodes(SLUG)).items()}
    before_switch = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)
    async with platform_transaction() as conn:
        await save_activation(conn, demo.host, tenant=SLUG, node_code=DISTRICT, plugin="odr_jinshan_deadline", active=True,
                              config={"contact_days": 2, "close_days": 7, "holiday_rollover": True}, actor="tests",
                              node_paths=paths)
    demo.forget_activations(SLUG)
    time.sleep(1.1)
    after_switch = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    china = dt.timezone(dt.timedelta(hours=8))
    try:
        sample = sample_export(2, units=province, departments=DEPARTMENTS, bad_every=0, prefix="POLICY")
        for row, moment in zip(sample.rows, (before_switch, after_switch)):
            row[1] = moment.astimezone(china).strftime("%Y-%m-%d %H:%M:%S")
            row[6], row[7], row[11], row[12], row[13] = province[1][0], province[1][1], "", "处理中", ""
        report = await import_complaints(demo, SLUG, cli_principal(SLUG, await demo.nodes(SLUG)),
                                         read_table("p.csv", write_csv(sample)), DEFAULT_MAPPING, filename="p.csv",
                                         dry_run=False)
        assert report.created == 2, report
        async with tenant_transaction(SLUG) as conn:
            got = {r["registration_number"]: r for r in await conn.fetch(
                "SELECT registration_number, deadline_policy, close_due FROM complaints WHERE registration_number = ANY($1)",
                [sample.rows[0][0], sample.rows[1][0]])}
        new = await complaint_deadlines(demo, SLUG, DISTRICT, after_switch)
        assert got[sample.rows[1][0]]["deadline_policy"] == new.policy
        assert got[sample.rows[1][0]]["close_due"] == new.close.due
        old = got[sample.rows[0][0]]
        assert old["deadline_policy"] != new.policy  # the national rule of the time
        assert old["close_due"] - before_switch > dt.timedelta(days=9)  # 10 working days, not 7 natural
    finally:
        async with platform_transaction() as conn:
            await save_activation(conn, demo.host, tenant=SLUG, node_code=DISTRICT, plugin="odr_jinshan_deadline",
                                  active=False, config=None, actor="tests", node_paths=paths)
        demo.forget_activations(SLUG)


async def test_imported_consumer_data_is_masked_like_a_filed_complaint(client, demo, province):
    sample = sample_export(3, units=province, departments=DEPARTMENTS, bad_every=0, prefix="MASK")
    for row in sample.rows:
        row[6], row[7], row[11], row[12], row[13] = province[0][0], province[0][1], "", "处理中", ""
    await import_complaints(demo, SLUG, cli_principal(SLUG, await demo.nodes(SLUG)), read_table("m.csv", write_csv(sample)),
                            DEFAULT_MAPPING, filename="m.csv", dry_run=False)
    async with tenant_transaction(SLUG) as conn:
        cid = await conn.fetchval("SELECT id FROM complaints WHERE registration_number = $1", sample.rows[0][0])
    name, phone, address = sample.rows[0][3], sample.rows[0][4], sample.rows[0][5]
    # the province does not handle the case (it sits at the district): masked, exactly as a filed one
    r = await client.get(f"/api/tenants/{SLUG}/complaints/{cid}", headers=await login(client, account(SLUG, "province")))
    assert r.status_code == 200, r.text
    consumer = r.json()["consumer"]
    assert consumer == {"name": mask_name(name), "phone": mask_phone(phone), "address": mask_address(address), "masked": True}
    assert phone not in r.text and address not in r.text
    # the district bureau where it sits, and the ODR unit's specialist, handle it: unmasked
    for user in (account(SLUG, "district"), f"imp-spec-{SLUG}"):
        r = await client.get(f"/api/tenants/{SLUG}/complaints/{cid}", headers=await login(client, user))
        assert r.status_code == 200, r.text
        assert r.json()["consumer"] == {"name": name, "phone": phone, "address": address, "masked": False}


async def test_api_upload_preview_dry_run_import_and_bad_input(client, demo, province):
    admin = await login(client, account(SLUG, "city"))
    base = f"/api/tenants/{SLUG}/imports"
    sample = sample_export(60, units=province, departments=DEPARTMENTS, seed=5, prefix="API")
    r = await client.post(base + "/", files={"file": ("案件导出.xlsx", write_xlsx(sample))}, headers=admin)
    assert r.status_code == 201, r.text
    file_id = r.json()["id"]
    assert r.json()["format"] == "xlsx" and r.json()["header"][0] == "登记编号"

    r = await client.get(f"{base}/{file_id}/preview", params={"rows": 5}, headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["rows"]) == 5 and body["refused"] is None and body["columns"]["credit_code"] == "统一社会信用代码"
    assert body["rows"][0]["values"]["consumer_phone"] == mask_phone(sample.rows[0][4])

    r = await client.post(f"{base}/{file_id}/dry-run", params={"wait": "true"}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["created"], r.json()["refused"]) == ("done", 59, 1)
    assert [(p["line"], p["field"]) for p in r.json()["problems"]] == [(51, "credit_code")]

    r = await client.post(f"{base}/{file_id}/run", headers=admin)
    assert r.status_code == 202, r.text
    run = r.json()["id"]
    for _ in range(100):
        r = await client.get(f"{base}/runs/{run}", headers=admin)
        if r.json()["status"] != "running":
            break
        await __import__("asyncio").sleep(0.1)
    assert (r.json()["status"], r.json()["processed"], r.json()["created"], r.json()["refused"]) == ("done", 60, 59, 1)
    r = await client.post(f"{base}/{file_id}/run", params={"wait": "true"}, headers=admin)
    assert (r.json()["created"], r.json()["present"]) == (0, 59)

    # bad input: 4xx naming the field
    r = await client.post(base + "/", files={"file": ("notes.txt", b"hello")}, headers=admin)
    assert r.status_code == 400 and "format" in r.json()["detail"]
    r = await client.post(base + "/", files={"file": ("x.csv", "编号,其他\n1,2\n".encode())}, headers=admin)
    assert r.status_code == 201
    r = await client.post(f"{base}/{r.json()['id']}/dry-run", headers=admin)
    assert r.status_code == 400 and "columns.received_at" in r.json()["detail"], r.text
    r = await client.put(base + "/mapping", json={"columns": {"amount": "涉案金额"}}, headers=admin)
    assert r.status_code == 400 and "columns.amount" in r.text, r.text
    r = await client.put(base + "/mapping", json={"departments": {"某局": "nowhere"}}, headers=admin)
    assert r.status_code == 400 and "departments" in r.text
    r = await client.get(f"{base}/runs/{run}", headers=await login(client, account(SLUG, "office")))
    assert r.status_code == 403
    r = await client.get(f"{base}/runs/not-a-run", headers=admin)
    assert r.status_code == 404


async def test_stored_mapping_renames_columns_and_states(client, demo, province):
    admin = await login(client, account(SLUG, "province"))
    base = f"/api/tenants/{SLUG}/imports"
    toml = '[columns]\nregistration_number = ["案件号"]\n[states]\n"已回复" = "closed"\n[departments]\n"测试区局" = "990101"\n'
    r = await client.put(base + "/mapping", json={"toml": toml}, headers=admin)
    assert r.status_code == 200, r.text
    try:
        assert r.json()["columns"]["registration_number"] == ["案件号"]
        assert r.json()["columns"]["received_at"][0] == "登记时间"  # the rest stays the national layout
        assert r.json()["states"]["已回复"] == "closed" and r.json()["states"]["已办结"] == "closed"
        sample = sample_export(4, units=province, departments=DEPARTMENTS, bad_every=0, prefix="MAP")
        sample.header[0] = "案件号"
        for row in sample.rows:
            row[6], row[7], row[11], row[12] = "某店", "", "测试区局", "已回复"
        r = await client.post(base + "/", files={"file": ("m.csv", write_csv(sample))}, headers=admin)
        r = await client.post(f"{base}/{r.json()['id']}/run", params={"wait": "true"}, headers=admin)
        assert (r.json()["created"], r.json()["refused"]) == (4, 0), r.text
        async with tenant_transaction(SLUG) as conn:
            states = await conn.fetch("SELECT state, node_code FROM complaints WHERE registration_number LIKE 'MAP%'")
        assert {(s["state"], s["node_code"]) for s in states} == {("closed", DISTRICT)}
    finally:  # back to the national layout
        r = await client.put(base + "/mapping", json={}, headers=admin)
        assert r.status_code == 200 and r.json()["columns"]["registration_number"][0] == "登记编号"


def run_cli(pg_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ODR_DATABASE_URL": pg_url, "ODR_DATA_DIR": str(tmp_path), "ODR_LOG_LEVEL": "WARNING",
           "PYTHONUNBUFFERED": "1"}
    env.pop("ODR_VALKEY_URL", None)
    return subprocess.run([sys.executable, "-m", "odr.cli", "import", "complaints", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


async def test_cli_imports_with_a_mapping_file_and_shows_progress(pg_url, tmp_path, demo, province):
    sample = sample_export(120, units=province, departments=DEPARTMENTS, seed=9, prefix="CLI")
    sample.header[0], sample.header[1] = "案件受理号", "收到日期"  # another province's layout
    export = tmp_path / "export.csv"
    export.write_bytes(write_csv(sample))
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[columns]\nregistration_number = ["案件受理号"]\nreceived_at = ["收到日期"]\n', encoding="utf-8")
    assert mapping_from_toml(mapping.read_text(encoding="utf-8")).columns.received_at == ("收到日期",)

    # without the mapping: the national layout has no registration number column: 2, naming it
    proc = run_cli(pg_url, tmp_path, "--tenant", SLUG, str(export))
    assert proc.returncode == 2 and "columns.registration_number" in proc.stderr, proc.stderr
    proc = run_cli(pg_url, tmp_path, "--tenant", "nowhere", str(export), "--mapping", str(mapping))
    assert proc.returncode == 2 and "--tenant" in proc.stderr

    proc = run_cli(pg_url, tmp_path, "--tenant", SLUG, str(export), "--mapping", str(mapping), "--dry-run")
    assert proc.returncode == 1, proc.stderr  # rows refused
    report = json.loads(proc.stdout)
    assert (report["dry_run"], report["created"], report["refused"]) == (True, 118, 2)
    assert await counts_like(SLUG, "CLI%") == 0
    proc = run_cli(pg_url, tmp_path, "--tenant", SLUG, str(export), "--mapping", str(mapping))
    report = json.loads(proc.stdout)
    assert (report["created"], report["present"], report["refused"]) == (118, 0, 2)
    assert {(p["line"], p["field"]) for p in report["problems"]} == set(sample.bad.items())
    assert "imported 120/120 rows (118 created, 0 already present, 2 refused)" in proc.stderr and "rows/s" in proc.stderr
    assert await counts_like(SLUG, "CLI%") == 118
    proc = run_cli(pg_url, tmp_path, "--tenant", SLUG, str(export), "--mapping", str(mapping))
    assert (json.loads(proc.stdout)["created"], json.loads(proc.stdout)["present"]) == (0, 118)
    for leaked in (row[4] for row in sample.rows):  # no consumer's phone on the terminal
        assert leaked not in proc.stdout + proc.stderr


async def counts_like(slug: str, pattern: str) -> int:
    async with tenant_transaction(slug) as conn:
        return await conn.fetchval("SELECT count(*) FROM complaints WHERE registration_number LIKE $1", pattern)


async def test_two_imports_of_one_file_at_once_create_each_case_once(demo, province):
    """Concurrent imports of the same export (two bureaus, or a double click): every registration
    number filed once; a NUL character in a cell is refused as a problem, not a failed batch."""
    import asyncio

    sample = sample_export(700, units=province, departments=DEPARTMENTS, seed=21, prefix="TWICE", bad_every=0)
    sample.rows[10][10] = "内容\x00截断"
    table = read_table("t.csv", write_csv(sample))
    who = cli_principal(SLUG, await demo.nodes(SLUG))
    a, b = await asyncio.gather(*(import_complaints(demo, SLUG, who, table, DEFAULT_MAPPING, filename="t.csv",
                                                    dry_run=False, batch_size=100) for _ in range(2)))
    assert a.created + b.created == 699 and a.present + b.present == 699
    assert [(p.line, p.field) for p in a.problems] == [(12, "description")] == [(p.line, p.field) for p in b.problems]
    assert await counts_like(SLUG, "TWICE%") == 699
    async with tenant_transaction(SLUG) as conn:
        assert await conn.fetchval("""SELECT count(*) FROM complaint_events e JOIN complaints c ON c.id = e.complaint_id
                                      WHERE c.registration_number LIKE 'TWICE%'""") == 699


async def test_the_endpoints_are_in_the_openapi_schema(client):
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in ("/api/tenants/{tenant}/imports", "/api/tenants/{tenant}/imports/{file_id}/preview",
                 "/api/tenants/{tenant}/imports/{file_id}/dry-run", "/api/tenants/{tenant}/imports/{file_id}/run",
                 "/api/tenants/{tenant}/imports/runs/{run_id}", "/api/tenants/{tenant}/imports/mapping"):
        assert path in paths, sorted(p for p in paths if "import" in p)


async def test_a_failing_batch_leaves_nothing_of_itself_and_importing_again_completes(demo, province):
    """A fault inside the database in the fifth batch (a trigger the owner adds for the test raises on one
    of its rows): the four batches before stay whole, nothing of the fifth is written, the run is
    recorded as failed; importing the file again creates exactly the rest."""
    from core.db.admin import owner_transaction
    from core.imports.service import get_run, launch_run, store_file

    sample = sample_export(1000, units=province, departments=DEPARTMENTS, seed=33, prefix="FAULT")
    assert 450 not in sample.bad
    poison = sample.rows[448][0]  # line 450: in the fifth batch of 100
    async with owner_transaction(SLUG) as conn:
        await conn.execute(f"""
            CREATE FUNCTION import_fault() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.registration_number = '{poison}' THEN RAISE EXCEPTION 'injected fault'; END IF;
                RETURN NEW;
            END$$""")
        await conn.execute("CREATE TRIGGER import_fault BEFORE INSERT ON complaints FOR EACH ROW EXECUTE FUNCTION import_fault()")
    who = cli_principal(SLUG, await demo.nodes(SLUG))
    table = read_table("f.csv", write_csv(sample))
    try:
        with pytest.raises(Exception, match="injected fault"):
            await import_complaints(demo, SLUG, who, table, DEFAULT_MAPPING, filename="f.csv", dry_run=False, batch_size=100)
        first_400 = {row[0] for i, row in enumerate(sample.rows[:400]) if i + 2 not in sample.bad}
        async with tenant_transaction(SLUG) as conn:
            got = {r["registration_number"] for r in await conn.fetch(
                "SELECT registration_number FROM complaints WHERE registration_number LIKE 'FAULT%'")}
            whole = await conn.fetchval(
                """SELECT count(*) FROM complaints c WHERE registration_number LIKE 'FAULT%'
                   AND (SELECT count(*) FROM complaint_events e WHERE e.complaint_id = c.id) = 1
                   AND EXISTS (SELECT 1 FROM complaint_facts f WHERE f.complaint_id = c.id)""")
        assert got == first_400 and whole == len(first_400)

        # the same fault through a background run: recorded as failed, with the error
        nodes = await demo.nodes(SLUG)
        admin = cli_principal(SLUG, nodes)
        stored = await store_file(SLUG, admin, demo, "f.csv", write_csv(sample))
        report = await launch_run(demo, SLUG, admin, stored.id, dry_run=False, wait=True)
        assert report.status == "failed" and "injected fault" in report.error
        assert (await get_run(SLUG, admin, demo, report.id)).processed == 0  # its first batch of 500 holds line 450
    finally:
        async with owner_transaction(SLUG) as conn:
            await conn.execute("DROP TRIGGER import_fault ON complaints")
            await conn.execute("DROP FUNCTION import_fault()")
    again = await import_complaints(demo, SLUG, who, table, DEFAULT_MAPPING, filename="f.csv", dry_run=False)
    good = 1000 - len(sample.bad)
    assert (again.created, again.present, again.refused) == (good - len(first_400), len(first_400), len(sample.bad))
    assert await counts_like(SLUG, "FAULT%") == good


def test_reading_cells_as_spreadsheets_and_older_excel_save_them():
    """GB 18030 CSV (older Excel), XLSX date and number cells (a phone typed as a number), the GB 32100
    check character, and files refused as a whole naming the field."""
    import io

    import xlsxwriter

    from core.imports.credit_code import credit_code_problem, with_check_character
    from core.imports.reading import FileRefused
    from core.imports.rows import ImportRow, column_index, parse_row

    code = with_check_character("91310116MA1J0ABC1")
    assert credit_code_problem(code) is None
    assert "check character" in credit_code_problem(code[:17] + ("0" if code[17] != "0" else "1"))
    assert "code set" in credit_code_problem("91310116MA1J0ABCIO")  # I and O are not in the code set
    header = ["登记编号", "登记时间", "投诉人姓名", "投诉人电话", "被投诉单位名称", "统一社会信用代码", "涉案金额", "投诉内容"]
    now = dt.datetime.now(dt.timezone.utc)

    csv_text = ",".join(header) + "\n" + f"A1,2026/3/1 9:05,张三,13800138000,某店,{code},\"1,200.50元\",退款\n"
    table = read_table("gb.csv", csv_text.encode("gb18030"))
    [(line, cells)] = list(table.rows())
    row = parse_row(line, cells, column_index(table.header, DEFAULT_MAPPING), DEFAULT_MAPPING, now)
    assert isinstance(row, ImportRow) and row.amount == 1200.5 and row.received_at.hour == 9
    assert row.received_at.utcoffset() == dt.timedelta(hours=8) and row.state == "open"

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, header)
    sheet.write_string(1, 0, "A2")
    sheet.write_datetime(1, 1, dt.datetime(2026, 3, 1, 9, 5), book.add_format({"num_format": "yyyy-mm-dd hh:mm"}))
    sheet.write_string(1, 2, "李四")
    sheet.write_number(1, 3, 13800138000)  # a phone typed as a number
    sheet.write_row(1, 4, ["某店", code])
    sheet.write_number(1, 6, 58)
    sheet.write_string(1, 7, "退款")
    sheet.write_row(3, 0, ["A3", "2026-03-02 10:00", "王五", "138", "某店", "", -1, ""])  # line 4 (line 3 is empty)
    book.close()
    table = read_table("x.xlsx", buffer.getvalue())
    rows = list(table.rows())
    assert [line for line, _ in rows] == [2, 4]
    index = column_index(table.header, DEFAULT_MAPPING)
    first = parse_row(rows[0][0], rows[0][1], index, DEFAULT_MAPPING, now)
    assert isinstance(first, ImportRow) and first.consumer_phone == "13800138000" and first.amount == 58.0
    assert first.received_at == dt.datetime(2026, 3, 1, 9, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    problems = parse_row(rows[1][0], rows[1][1], index, DEFAULT_MAPPING, now)
    assert {(p.line, p.field) for p in problems} == {(4, "consumer_phone"), (4, "amount"), (4, "description")}

    for name, content, field in (("a.pdf", b"%PDF", "format"), ("a.csv", b"", "file"), ("a.xlsx", b"not a zip", "file"),
                                 ("a.csv", b"\xff\xfe\x00\x00garbage\x81", "file")):
        with pytest.raises(FileRefused) as refused:
            read_table(name, content)
        assert refused.value.field == field, (name, refused.value)


async def test_a_manifest_may_bring_the_provinces_mapping(client, demo):
    """``[import_mapping]`` in a tenant manifest: checked with the manifest (the field named), stored at
    onboarding, the tenant's mapping from then on."""
    from tenants.manifest import parse_manifest
    from tenants.onboarding import onboard

    base = """slug = "impmanifest"
name = "导入映射省"

[[nodes]]
code = "990000"
name = "导入映射省市场监督管理局"
level = "province"

[[nodes]]
code = "990100"
parent = "990000"
name = "映射市市场监督管理局"
level = "city"

[[demo_accounts]]
username = "imp-admin-impmanifest"
password = "demo12315"
role = "province_admin"
node = "990000"
"""
    good = base + '\n[import_mapping.columns]\nregistration_number = ["案件编号"]\n[import_mapping.departments]\n"市局" = "990100"\n'
    m = parse_manifest(good.encode())
    for bad, field in (('[import_mapping.columns]\namount = "金额"\n', "import_mapping"),
                       ('[import_mapping.departments]\n"某局" = "nowhere"\n', "import_mapping.departments.某局")):
        with pytest.raises(ValueError, match=f"^{field}"):
            parse_manifest((base + "\n" + bad).encode())
    await onboard(m, host=demo.host, actor="tests", demo=True)
    r = await client.get("/api/tenants/impmanifest/imports/mapping", headers=await login(client, account("impmanifest", "province")))
    assert r.status_code == 200, r.text
    assert r.json()["columns"]["registration_number"] == ["案件编号"] and r.json()["departments"] == {"市局": "990100"}
    assert r.json()["columns"]["received_at"][0] == "登记时间"
