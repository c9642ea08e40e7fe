"""Every statistics report (core.reports) over the seeded demo history of a throw-away Jiangsu copy (Wuxi:
Xishan's mall with two member merchants and a car dealer): the figures equal what Python computes from
the complaints table; coverage targets; exports of every report as CSV and XLSX with the Chinese intact;
access and bad input."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import io
from urllib.parse import unquote

import pytest
import pytest_asyncio

from core.auth.principal import Role
from core.complaints import states as S
from core.db.engine import tenant_transaction
from core.reports import REPORTS, SPECS
from tests.conftest import login
from tests.report_helpers import complaint_rows, read_xlsx, seeded_copy, xlsx_sheet_names

SLUG = "rptjs"
BASE = f"/api/tenants/{SLUG}"
ACCOUNTS = (
    ("rptjs-admin", Role.PROVINCE_ADMIN, "320000"),
    ("rptjs-wuxi", Role.BUREAU_OFFICER, "320200"),
    ("rptjs-xishan", Role.BUREAU_OFFICER, "320205"),
    ("rptjs-dongting", Role.OFFICE_HEAD, "320205-01"),
    ("rptjs-liyuan", Role.OFFICE_HEAD, "320211-01"),
    ("rptjs-consumer", Role.CONSUMER, None),
)
YEAR = dt.date.today().year


@pytest_asyncio.fixture(scope="module")
async def seeded(demo):
    async with seeded_copy(demo, "jiangsu", SLUG, ACCOUNTS) as summary:
        yield summary


async def get(client, user: str, report: str, **params):
    return await client.get(f"{BASE}/reports/{report}", params=params, headers=await login(client, user))


def under(row: dict, node: str) -> bool:
    return node in row["node_path"].split("/")


def rate(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


# -- complaints by state and class ---------------------------------------------------------------------
async def test_complaints_by_state_and_class_equal_the_complaints(client, seeded):
    rows = await complaint_rows(SLUG)
    for user, node in (("rptjs-wuxi", "320200"), ("rptjs-dongting", "320205-01")):
        r = await get(client, user, "complaints-by-state", node=node)
        assert r.status_code == 200, r.text
        body = r.json()
        mine = [c for c in rows if under(c, node)]
        expected = collections.Counter((c["state"], c["cls"] or "") for c in mine)
        classes = sorted({k for _, k in expected}, key=lambda k: (k == "", k))
        assert [c["key"] for c in body["columns"]] == ["state", "state_label", *[f"class_{k}" for k in classes], "total"]
        assert [row["state"] for row in body["rows"]] == list(S.STATES)
        for row in body["rows"]:
            for k in classes:
                assert row[f"class_{k}"] == expected[(row["state"], k)], (node, row["state"], k)
            assert row["total"] == sum(n for (st, _), n in expected.items() if st == row["state"])
        assert body["total"]["total"] == len(mine)
        for k in classes:
            assert body["total"][f"class_{k}"] == sum(n for (_, kk), n in expected.items() if kk == k)
        assert body["rows"][list(S.STATES).index("closed")]["state_label"] == "已办结"

    # a window of received days: only complaints received then
    days = sorted({c["received_day"] for c in rows})
    since, until = days[len(days) // 3], days[2 * len(days) // 3]
    body = (await get(client, "rptjs-admin", "complaints-by-state", since=since.isoformat(),
                      until=until.isoformat())).json()
    assert body["total"]["total"] == sum(1 for c in rows if since <= c["received_day"] <= until) > 0


# -- class table (p90 exact to the minute) -------------------------------------------------------------
async def test_class_table_cycle_figures_equal_python(client, seeded):
    body = (await get(client, "rptjs-admin", "class-table")).json()
    entered = [c for c in await complaint_rows(SLUG) if c["entered_odr_at"] is not None]
    groups = collections.defaultdict(list)
    for c in entered:
        groups[c["cls"] or ""].append(c)
    assert sorted(row["enterprise_class"] for row in body["rows"]) == sorted(groups)
    for row in [*body["rows"], body["total"]]:
        mine = entered if row is body["total"] else groups[row["enterprise_class"]]
        cycles = sorted(round((c["closed_at"] - c["entered_odr_at"]).total_seconds()) for c in mine if c["closed_at"])
        assert row["handled"] == len(mine) and row["closed"] == len(cycles)
        assert row["avg_cycle_days"] == pytest.approx(sum(cycles) / len(cycles) / 86400, abs=0.006)
        minutes = [s // 60 for s in cycles]
        p90 = next(m for i, m in enumerate(minutes) if (i + 1) * 10 >= len(minutes) * 9)  # percentile_disc
        assert row["p90_cycle_days"] == pytest.approx(round(p90 / 1440, 2), abs=1e-9)
        fed = [c for c in mine if c["feedback"] is not None]
        assert row["settlement_rate"] == pytest.approx(rate(sum(1 for c in fed if c["settled"]), len(fed)), abs=1e-4)
        assert row["amount_recovered"] == pytest.approx(float(sum(c["amount_recovered"] or 0 for c in mine)))


# -- top merchants ---------------------------------------------------------------------------------------
async def test_top_merchants_by_unit_and_by_company(client, seeded):
    rows = await complaint_rows(SLUG)
    r = await get(client, "rptjs-wuxi", "top-merchants", node="320200", top=3)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["options"] == {"top": 3, "by": "unit"} and body["total"] is None
    per_unit = collections.defaultdict(list)
    for c in rows:
        if under(c, "320200"):
            per_unit[c["enterprise_id"]].append(c)
    ranked = sorted(per_unit.values(), key=lambda cs: -len(cs))
    assert [row["complaints"] for row in body["rows"]] == [len(cs) for cs in ranked[:3]]
    assert body["rows"][0]["rank"] == 1
    for row in body["rows"]:
        cs = next(cs for cs in ranked if cs[0]["unit_name"] == row["company_name"])
        fed = [c for c in cs if c["feedback"] is not None]
        assert row["odr_unit"] is True and row["credit_code"] == cs[0]["unit_code"]
        assert row["complaints"] == len(cs) and row["in_odr"] == sum(1 for c in cs if c["entered_odr_at"])
        assert (row["with_feedback"], row["settled"]) == (len(fed), sum(1 for c in fed if c["settled"]))
        assert row["settlement_rate"] == pytest.approx(rate(row["settled"], len(fed)), abs=1e-4)
        assert row["amount_recovered"] == pytest.approx(float(sum(c["amount_recovered"] or 0 for c in cs)))
        assert row["node_name"]
    # equal counts share a rank
    counts = [row["complaints"] for row in body["rows"]]
    for i, row in enumerate(body["rows"]):
        assert row["rank"] == 1 + sum(1 for n in counts if n > row["complaints"])

    # by company name as filed: the mall's merchants separately; non-units too
    body = (await get(client, "rptjs-admin", "top-merchants", by="company", top=500)).json()
    names = collections.Counter(c["company_name"].strip() for c in rows)
    assert {row["company_name"]: row["complaints"] for row in body["rows"]} == dict(names)
    assert "八佰伴某女装专柜（演示）" in names


async def test_top_merchants_counts_companies_that_are_no_odr_unit(client, seeded):
    """A complaint about a company outside ODR (route bureau): it counts under its name as filed. (The
    complaints stay: the other tests read the complaints afresh.)"""
    async with tenant_transaction(SLUG) as conn:
        await conn.execute(
            """INSERT INTO complaints (number, source, consumer_name, consumer_phone, company_name, odr_unit, node_code,
                   node_path, category, subject, description, state, created_at)
               SELECT 'RPT-NONUNIT-' || g, 'consumer', '测试用户X', '13900009999', '  锡山某非ODR饭店  ', false,
                      '320205', '320000/320200/320205', '餐饮服务', '食物变质', '（演示）', 'registered', now()
               FROM generate_series(1, 2) g""")
    body = (await get(client, "rptjs-xishan", "top-merchants", top=50)).json()
    row = next(r for r in body["rows"] if r["company_name"] == "锡山某非ODR饭店")
    assert row["complaints"] == 2 and row["odr_unit"] is False and row["credit_code"] is None
    assert row["settlement_rate"] is None and row["in_odr"] == 0
    hot = (await get(client, "rptjs-xishan", "hot-spots")).json()
    assert next(r for r in hot["rows"] if r["category"] == "餐饮服务")["complaints"] == 2


# -- hot spots -------------------------------------------------------------------------------------------
async def test_hot_spots_against_the_previous_period(client, seeded):
    rows = await complaint_rows(SLUG)
    days = sorted({c["received_day"] for c in rows})
    until = days[-1]
    since = until - dt.timedelta(days=29)
    prev_since, prev_until = since - dt.timedelta(days=30), since - dt.timedelta(days=1)
    r = await get(client, "rptjs-admin", "hot-spots", since=since.isoformat(), until=until.isoformat())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["options"]["previous_since"] == prev_since.isoformat()
    assert body["options"]["previous_until"] == prev_until.isoformat()
    now = collections.Counter(c["category"] for c in rows if since <= c["received_day"] <= until)
    before = collections.Counter(c["category"] for c in rows if prev_since <= c["received_day"] <= prev_until)
    got = {row["category"]: row for row in body["rows"]}
    assert set(got) == set(now) | set(before)
    for cat, row in got.items():
        assert (row["complaints"], row["previous"]) == (now[cat], before[cat]), cat
        assert row["change"] == now[cat] - before[cat]
        assert row["change_rate"] == (pytest.approx(rate(now[cat] - before[cat], before[cat]), abs=1e-4)
                                      if before[cat] else None)
        assert row["share"] == pytest.approx(rate(now[cat], sum(now.values())), abs=1e-4)
    assert [row["complaints"] for row in body["rows"]] == sorted((r["complaints"] for r in body["rows"]), reverse=True)
    assert body["total"]["complaints"] == sum(now.values()) and body["total"]["previous"] == sum(before.values())
    # default: the 30 days up to today
    default = (await get(client, "rptjs-admin", "hot-spots")).json()
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    assert default["until"] == today.isoformat() and default["since"] == (today - dt.timedelta(days=29)).isoformat()
    assert len((await get(client, "rptjs-admin", "hot-spots", top=1)).json()["rows"]) == 1


# -- coverage and targets --------------------------------------------------------------------------------
async def put_target(client, user: str, **body):
    return await client.put(f"{BASE}/coverage-targets", json=body, headers=await login(client, user))


async def test_coverage_targets_are_validated_and_only_province_or_city_set_them(client, seeded):
    r = await put_target(client, "rptjs-admin", node_code="320000", year=YEAR, target_units=510)
    assert r.status_code == 200, r.text
    assert r.json()["set_by"] == "rptjs-admin@320000" and r.json()["node_name"] == "江苏省市场监督管理局"
    r = await put_target(client, "rptjs-wuxi", node_code="320205", year=YEAR, target_units=3)
    assert r.status_code == 200 and r.json()["target_units"] == 3
    r = await put_target(client, "rptjs-wuxi", node_code="320205", year=YEAR, target_units=2)  # replaces
    assert r.status_code == 200 and r.json()["target_units"] == 2
    for user, body, status, field in (
        ("rptjs-admin", {"node_code": "320205-01", "year": YEAR, "target_units": 1}, 400, "node_code"),
        ("rptjs-admin", {"node_code": "320205", "year": 2017, "target_units": 1}, 400, "year"),
        ("rptjs-admin", {"node_code": "320205", "year": YEAR, "target_units": -1}, 400, "target_units"),
        ("rptjs-admin", {"node_code": "320205", "year": YEAR, "target_units": "many"}, 400, "target_units"),
        ("rptjs-admin", {"node_code": "320205", "year": YEAR}, 400, "target_units"),
        ("rptjs-admin", {"node_code": "../x", "year": YEAR, "target_units": 1}, 400, "node_code"),
        ("rptjs-admin", {"node_code": "320205", "year": YEAR, "target_units": 1, "extra": 1}, 400, "body"),
    ):
        r = await put_target(client, user, **body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["field"] == field, (body, r.json())
        assert (field if field != "body" else "extra") in r.json()["detail"]
    assert (await put_target(client, "rptjs-wuxi", node_code="320102", year=YEAR, target_units=1)).status_code == 404
    assert (await put_target(client, "rptjs-admin", node_code="999999", year=YEAR, target_units=1)).status_code == 404
    for user in ("rptjs-xishan", "rptjs-dongting", "rptjs-consumer"):
        assert (await put_target(client, user, node_code="320205", year=YEAR, target_units=1)).status_code == 403, user
    listed = (await client.get(f"{BASE}/coverage-targets", params={"year": YEAR},
                               headers=await login(client, "rptjs-wuxi"))).json()
    assert [(t["node_code"], t["target_units"]) for t in listed] == [("320205", 2)]  # the province's is above Wuxi
    url = f"{BASE}/coverage-targets/320205/{YEAR}"
    assert (await client.delete(url, headers=await login(client, "rptjs-xishan"))).status_code == 403
    assert (await client.delete(url, headers=await login(client, "rptjs-wuxi"))).status_code == 204
    assert (await client.delete(url, headers=await login(client, "rptjs-wuxi"))).status_code == 404
    listed = (await client.get(f"{BASE}/coverage-targets", headers=await login(client, "rptjs-admin"))).json()
    assert [(t["node_code"], t["year"], t["target_units"]) for t in listed] == [("320000", YEAR, 510)]


async def test_coverage_per_district_against_targets(client, seeded):
    for node, target in (("320000", 510), ("320205", 2)):
        assert (await put_target(client, "rptjs-admin", node_code=node, year=YEAR, target_units=target)).status_code == 200
    async with tenant_transaction(SLUG) as conn:
        units = [dict(r) for r in await conn.fetch(
            """SELECT e.host_unit_id, j.path FROM enterprises e JOIN jurisdictions j ON j.code = e.node_code
               WHERE e.status = 'active'""")]
    r = await get(client, "rptjs-admin", "coverage", node="320000")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["options"]["year"] == YEAR
    rows = {row["node_code"]: row for row in body["rows"]}
    assert list(rows) == ["320102", "320205", "320211"]  # the province's districts, in path order
    for code, row in rows.items():
        mine = [u for u in units if code in u["path"].split("/")]
        assert row["units"] == sum(1 for u in mine if u["host_unit_id"] is None), code
        assert row["member_merchants"] == sum(1 for u in mine if u["host_unit_id"] is not None), code
        assert row["covered"] == (row["units"] > 0)
    assert rows["320205"]["units"] == 2 and rows["320205"]["member_merchants"] == 2  # the mall, the car dealer
    assert rows["320205"]["target"] == 2 and rows["320205"]["target_met"] is True and rows["320205"]["gap"] == 0
    assert rows["320211"]["covered"] is False and rows["320211"]["target"] is None and rows["320211"]["target_met"] is None
    assert rows["320205"]["parent_name"] == "无锡市市场监督管理局"
    total = body["total"]
    assert total["units"] == sum(1 for u in units if u["host_unit_id"] is None)
    assert total["target"] == 510 and total["target_met"] is False and total["gap"] == 510 - total["units"]
    assert total["districts"] == 3 and total["districts_covered"] == 1 and total["covered"] is False

    # Wuxi has no target of its own: the total target is its districts' sum
    body = (await get(client, "rptjs-wuxi", "coverage")).json()
    assert [row["node_code"] for row in body["rows"]] == ["320205", "320211"]
    assert body["total"]["target"] == 2
    # another year has no targets; before the units were approved there were none
    other = (await get(client, "rptjs-admin", "coverage", year=YEAR + 1)).json()
    assert other["total"]["target"] is None and all(row["target"] is None for row in other["rows"])
    past = (await get(client, "rptjs-admin", "coverage", until="2020-12-31")).json()
    assert past["total"]["units"] == 0 and past["options"]["year"] == 2020
    # an office: its own row
    office = (await get(client, "rptjs-dongting", "coverage")).json()
    assert [row["node_code"] for row in office["rows"]] == ["320205-01"]
    assert office["rows"][0]["units"] == 1  # the mall (the car dealer sits at the district node)
    # a window: the units approved in it are new
    since = (dt.date.today() - dt.timedelta(days=365)).isoformat()
    assert (await get(client, "rptjs-admin", "coverage", since=since)).json()["total"]["new_units"] == total["units"]


# -- exports -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SPECS))
async def test_every_report_exports_csv_and_xlsx_with_the_chinese_intact(client, seeded, name):
    params = {"by": "company"} if name == "top-merchants" else {}
    body = (await get(client, "rptjs-admin", name, **params)).json()
    columns, rows = body["columns"], body["rows"] + ([body["total"]] if body["total"] else [])
    assert rows, name
    headers = [f"{c['zh']} {c['en']}" for c in columns]

    r = await get(client, "rptjs-admin", name, format="csv", **params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    disposition = r.headers["content-disposition"]
    assert f'filename="{name}_{SLUG}_320000_' in disposition and disposition.isascii()
    assert unquote(disposition.split("filename*=UTF-8''")[1]).startswith(SPECS[name].title_zh)
    assert r.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert table[0] == headers and len(table) == 1 + len(rows)

    r = await get(client, "rptjs-admin", name, format="xlsx", **params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert f'filename="{name}_{SLUG}_320000_' in r.headers["content-disposition"]
    sheet = read_xlsx(r.content)
    assert sheet[0] == headers and len(sheet) == 1 + len(rows)
    assert xlsx_sheet_names(r.content) == ["报表 report", "说明 about"]
    about = dict((row + [None, None])[:2] for row in read_xlsx(r.content, 2))
    assert about["报表 report"].startswith(SPECS[name].title_zh) and about["辖区 node"] == "320000 江苏省市场监督管理局"

    for i, row in enumerate(rows):
        total = i == len(body["rows"])
        for x, c in enumerate(columns):
            value, cell, text = row.get(c["key"]), sheet[1 + i][x] if x < len(sheet[1 + i]) else None, table[1 + i][x]
            if total and x == next(k for k, cc in enumerate(columns) if cc["kind"] == "text"):
                assert cell == text == "合计 total"
            elif value is None:
                assert cell is None and text == ""
            elif isinstance(value, bool):
                assert cell == text == ("是" if value else "否")
            elif isinstance(value, (int, float)) and c["kind"] != "text":
                assert cell == pytest.approx(value) and float(text) == pytest.approx(value)
            else:
                assert cell == text == value, (c["key"], value)  # Chinese text round-trips
    chinese = {v for row in sheet[1:] for v in row if isinstance(v, str) and any("\u4e00" <= ch <= "\u9fff" for ch in v)}
    assert chinese, name


async def test_csv_defuses_formulas_in_company_names(client, seeded):
    async with tenant_transaction(SLUG) as conn:
        await conn.execute(
            """INSERT INTO complaints (number, source, consumer_name, consumer_phone, company_name, odr_unit, node_code,
                   node_path, category, subject, description, state, created_at)
               VALUES ('RPT-FORMULA-1', 'consumer', '测试用户Y', '13900009998', '=HYPERLINK("http://x","点我")', false,
                       '320211', '320000/320200/320211', '其他', '公式', '（演示）', 'registered', now())""")
    r = await get(client, "rptjs-wuxi", "top-merchants", node="320211", by="company", format="csv")
    assert "'=HYPERLINK" in r.content.decode("utf-8-sig")
    r = await get(client, "rptjs-wuxi", "top-merchants", node="320211", by="company", format="xlsx")
    assert b"<f>" not in zip_sheet(r.content)
    assert read_xlsx(r.content)[1][1] == '=HYPERLINK("http://x","点我")'


def zip_sheet(content: bytes) -> bytes:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(content)) as z:
        return z.read("xl/worksheets/sheet1.xml")


# -- the registry (for benchmarks/evaluation.py) ------------------------------------------------------------
async def test_registry_functions_give_what_the_api_gives(client, seeded):
    assert set(REPORTS) == {"class-table", "complaints-by-state", "coverage", "top-merchants", "hot-spots"}
    async with tenant_transaction(SLUG) as conn:
        got = {name: await report(conn, "320000/320200", None, None) for name, report in REPORTS.items()}
    for name, rows in got.items():
        body = (await get(client, "rptjs-wuxi", name)).json()
        api_rows = body["rows"] + ([body["total"]] if body["total"] else [])
        assert [{k: v for k, v in r.items() if k != "is_total"} for r in rows] == api_rows, name
    index = (await client.get(f"{BASE}/reports", headers=await login(client, "rptjs-dongting"))).json()
    assert [i["name"] for i in index] == list(SPECS) and index[0]["columns"][0]["zh"] == "企业分类"


# -- access and bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SPECS))
async def test_access_per_report(client, seeded, name):
    assert (await get(client, "rptjs-dongting", name)).status_code == 200
    assert (await get(client, "rptjs-liyuan", name, node="320205")).status_code == 404
    assert (await get(client, "rptjs-xishan", name, node="320211")).status_code == 404
    assert (await get(client, "rptjs-consumer", name, node="320205")).status_code == 403
    assert (await client.get(f"{BASE}/reports/{name}")).status_code == 401
    r = await client.get(f"{BASE}/reports/{name}", headers=await login(client, "wx-officer"))  # Jiangsu's own
    assert r.status_code == 404


@pytest.mark.parametrize("name, params, field", [
    ("class-table", {"format": "pdf"}, "format"),
    ("coverage", {"format": "XLSX"}, "format"),
    ("complaints-by-state", {"node": "../320000"}, "node"),
    ("complaints-by-state", {"node": "x" * 33}, "node"),
    ("hot-spots", {"since": "2026-02-30"}, "since"),
    ("hot-spots", {"since": "2026-03-02", "until": "2026-03-01"}, "until"),
    ("hot-spots", {"since": "2999-01-01"}, "since"),
    ("top-merchants", {"top": "0"}, "top"),
    ("top-merchants", {"top": "501"}, "top"),
    ("top-merchants", {"top": "ten"}, "top"),
    ("top-merchants", {"by": "owner"}, "by"),
    ("hot-spots", {"top": "1000"}, "top"),
    ("coverage", {"year": "1999"}, "year"),
    ("coverage", {"year": "next"}, "year"),
])
async def test_bad_input_is_400_naming_the_field(client, seeded, name, params, field):
    r = await get(client, "rptjs-admin", name, **params)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and field in r.json()["detail"]
