"""The console's evaluation, exit-proposal, statistics and public results pages without a browser
(in-process HTTP), on a throw-away copy of the Shanghai manifest seeded with the demo history (the demo
tenants carry none): access per role, errors next to their field (period form, run settings, coverage
target, proposals), a run's page with candidates and units below the threshold marked, reproduction,
publication, the public page (nothing personal), CSV and XLSX downloads with the session cookie, and a
Jinshan officer's statistics kept to its subtree. The browser walk is in test_ui_browser.py."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import httpx
import pytest_asyncio

from admin_ui import i18n
from odr.app import create_app
from core.auth.principal import Role
from core.db.engine import tenant_transaction
from tests.complaint_helpers import active_unit
from tests.console_helpers import ORIGIN
from tests.report_helpers import read_xlsx, seeded_copy, xlsx_sheet_names
from tests.ui_browser import personal_data

SLUG = "uievsh"
ACCOUNTS = (
    ("uiev-admin", Role.PROVINCE_ADMIN, "310000"),
    ("uiev-js-officer", Role.BUREAU_OFFICER, "310116"),
    ("uiev-js-head", Role.OFFICE_HEAD, "310116-01"),
    ("uiev-consumer", Role.CONSUMER, None),
)
TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')
TZ = dt.timezone(dt.timedelta(hours=8))


@pytest_asyncio.fixture(scope="module")
async def seeded(demo):
    async with seeded_copy(demo, "shanghai", SLUG, ACCOUNTS) as summary:
        yield {u.key: u for u in summary.units}


@pytest_asyncio.fixture(scope="module")
async def app(demo):
    return create_app(demo, manage_lifecycle=False)


def browser(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://odr.test", headers=ORIGIN)


async def signed_in(app, username: str, password: str = "demo12315") -> httpx.AsyncClient:
    c = browser(app)
    page = await c.get("/ui/login")
    r = await c.post("/ui/login", data={"username": username, "password": password,
                                        "_csrf_token": TOKEN.search(page.text).group(1)})
    assert r.status_code == 303, r.text
    return c


async def token(c: httpx.AsyncClient, path: str) -> str:
    return TOKEN.search((await c.get(path)).text).group(1)


def i18n_text(key: str) -> str:
    return i18n.t(key)


def last_month() -> dt.date:
    first = dt.datetime.now(TZ).date().replace(day=1)
    return (first - dt.timedelta(days=1)).replace(day=1)


async def test_who_may_open_the_evaluation_and_statistics_pages(app, seeded):
    unit = await active_unit("shanghai", "310116")
    specialist = await signed_in(app, unit["specialist"])
    consumer = await signed_in(app, "sh-consumer")
    operator = await signed_in(app, "operator")
    for c in (specialist, consumer, operator):
        for path in ("/ui/evaluation", "/ui/evaluation/proposals", "/ui/evaluation/proposals/new", "/ui/statistics",
                     "/ui/statistics/export/class-table?format=csv"):
            assert (await c.get(path)).status_code == 403, path
    # an officer reads; only the provincial admin gets the forms, and a post by anyone else is refused
    officer = await signed_in(app, "uiev-js-officer")
    r = await officer.get("/ui/evaluation")
    assert r.status_code == 200 and 'id="period-form"' not in r.text and i18n_text("eval.read_only") in r.text
    for label, href in (("nav.evaluation", "/ui/evaluation"), ("nav.proposals", "/ui/evaluation/proposals"),
                        ("nav.statistics", "/ui/statistics"), ("nav.results", f"/ui/public/{SLUG}/results")):
        assert f'href="{href}"' in r.text, label
    r = await officer.post("/ui/evaluation/periods", data={"kind": "monthly", "starts_on": last_month().isoformat(),
                                                           "_csrf_token": await token(officer, "/ui/evaluation")})
    assert r.status_code == 403
    admin = await signed_in(app, "uiev-admin")
    assert 'id="period-form"' in (await admin.get("/ui/evaluation")).text
    # another tenant's staff see nothing of this tenant's runs
    assert (await (await signed_in(app, "js-officer")).get("/ui/evaluation/runs/00000000-0000-0000-0000-000000000000")).status_code == 404


async def test_period_form_errors_are_next_to_their_field(app, seeded):
    admin = await signed_in(app, "uiev-admin")
    csrf = await token(admin, "/ui/evaluation")
    r = await admin.post("/ui/evaluation/periods", data={"kind": "yearly", "starts_on": "2026-02-01", "_csrf_token": csrf})
    assert r.status_code == 400 and 'id="f-starts_on-err"' in r.text and "first day of a year" in r.text
    assert 'aria-invalid="true"' in r.text and 'value="2026-02-01"' in r.text  # what was typed is kept
    r = await admin.post("/ui/evaluation/periods", data={"kind": "weekly", "starts_on": "2026-01-01", "_csrf_token": csrf})
    assert r.status_code == 400 and 'id="f-kind-err"' in r.text
    r = await admin.post("/ui/evaluation/periods", data={"kind": "monthly", "_csrf_token": csrf})
    assert r.status_code == 400 and 'id="f-starts_on-err"' in r.text
    r = await admin.post("/ui/evaluation/periods", data={"kind": "quarterly", "starts_on": "2025-04-01", "_csrf_token": csrf})
    assert r.status_code == 303
    r = await admin.post("/ui/evaluation/periods", data={"kind": "quarterly", "starts_on": "2025-04-01", "_csrf_token": csrf})
    assert r.status_code == 409 and 'id="f-starts_on-err"' in r.text and "already exists" in r.text


async def test_run_publish_and_the_public_page(app, seeded):
    admin = await signed_in(app, "uiev-admin")
    csrf = await token(admin, "/ui/evaluation")
    r = await admin.post("/ui/evaluation/periods", data={"kind": "monthly", "starts_on": last_month().isoformat(),
                                                         "_csrf_token": csrf})
    assert r.status_code == 303, r.text
    period_page = r.headers["location"].split("?")[0]
    page = await admin.get(period_page)
    assert 'id="run-form"' in page.text and 'hx-indicator="#run-progress"' in page.text
    run_url = re.search(r'action="(/ui/evaluation/periods/[^"]+/run)"', page.text).group(1)

    # settings out of range: refused next to each field, nothing run
    bad = {"candidate_top": "-1", "candidate_min_score": "85", "exit_threshold": "150", "exit_consecutive_periods": "1",
           "min_handled": "x", "_csrf_token": csrf}
    r = await admin.post(run_url, data=bad)
    assert r.status_code == 400
    assert 'id="f-exit_threshold-err"' in r.text or 'id="f-candidate_top-err"' in r.text or 'id="f-min_handled-err"' in r.text
    assert 'value="150"' in r.text and i18n_text("eval.no_runs") in r.text
    for field, value in (("exit_threshold", "150"), ("candidate_top", "-1"), ("min_handled", "x"),
                         ("exit_consecutive_periods", "0")):
        r = await admin.post(run_url, data={field: value, "_csrf_token": csrf})
        assert r.status_code == 400 and f'id="f-{field}-err"' in r.text, (field, r.text[-800:])

    # a run with htmx answers a client-side redirect; every scored unit falls below 99, the best per class is a candidate
    settings = {"candidate_top": "1", "candidate_min_score": "0", "exit_threshold": "99", "exit_consecutive_periods": "1",
                "min_handled": "1", "_csrf_token": csrf}
    r = await admin.post(run_url, data=settings, headers={"HX-Request": "true"})
    assert r.status_code == 204 and r.headers["hx-redirect"].startswith("/ui/evaluation/runs/"), r.text
    run_page = r.headers["hx-redirect"]
    run_path = run_page.split("?")[0]
    r = await admin.get(run_page)
    assert r.status_code == 200 and i18n_text("eval.ran") in r.text
    assert "uiev-admin" in re.search(r'<dl class="facts" id="run-facts">.*?</dl>', r.text, re.S).group(0)  # who ran it
    summary = re.search(r'<table id="class-summary".*?</table>', r.text, re.S).group(0)
    for cls in ("A", "B", "C"):
        assert f'data-class="{cls}"' in summary
    assert 'data-candidate="true"' in r.text and 'data-below="true"' in r.text
    assert i18n_text("eval.candidate_badge") in r.text and i18n_text("eval.below_badge") in r.text
    assert "odr_national_score" in re.search(r'<table id="policies".*?</table>', r.text, re.S).group(0)
    assert re.search(r"本次运行提出退出建议 [1-9]\d* 件", r.text)

    # filters and paging keep to the service's rules
    r = await admin.get(run_path, params={"class": "A"})
    rows = re.findall(r'<tr class="[^"]*" data-unit="', r.text)
    assert len(rows) == 1, r.text[-2000:]
    r = await admin.get(run_path, params={"q": seeded["js-b"].name[:4]})
    assert seeded["js-b"].name in r.text and seeded["js-a"].name not in r.text
    r = await admin.get(run_path, params={"node": "310115"})
    assert seeded["pd-1"].name in r.text and seeded["js-a"].name not in r.text

    # a bureau officer reads the run and reproduces it (in place with htmx; a full page without)
    officer = await signed_in(app, "uiev-js-officer")
    page = await officer.get(run_path)
    assert page.status_code == 200 and 'id="publish-form"' not in page.text
    ocsrf = TOKEN.search(page.text).group(1)
    r = await officer.post(run_path + "/reproduce", data={"_csrf_token": ocsrf}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.text.lstrip().startswith('<div id="reproduce-result"') and 'data-identical="true"' in r.text
    r = await officer.post(run_path + "/reproduce", data={"_csrf_token": ocsrf})
    assert r.status_code == 200 and "<h1" in r.text and 'data-identical="true"' in r.text
    assert (await officer.post(run_path + "/publish", data={"_csrf_token": ocsrf})).status_code == 403

    # the provincial admin publishes; the period is closed, the public page shows the run
    r = await admin.post(run_path + "/publish", data={"_csrf_token": csrf})
    assert r.status_code == 303
    r = await admin.get(run_path)
    assert 'id="published-badge"' in r.text and 'id="publish-form"' not in r.text
    assert 'id="run-form"' not in (await admin.get(period_page)).text  # closed: no new run

    public = browser(app)
    r = await public.get(f"/ui/public/{SLUG}/results")
    assert r.status_code == 200 and run_path.rsplit("/", 1)[1] in r.text
    assert seeded["js-a"].name in r.text and "金山区" in r.text
    r = await public.get(f"/ui/public/{SLUG}/results", params={"class": "B"})
    assert seeded["js-b"].name in r.text and seeded["js-a"].name not in r.text
    r = await public.get(f"/ui/public/{SLUG}/results", params={"q": seeded["pd-1"].name[:5]})
    assert seeded["pd-1"].name in r.text and seeded["js-a"].name not in r.text
    async with tenant_transaction(SLUG) as conn:
        people = await conn.fetch("SELECT DISTINCT consumer_name, consumer_phone FROM complaints")
        liaisons = await conn.fetch("SELECT name, phone FROM liaisons")
    known = [p["consumer_name"] for p in people] + [p["consumer_phone"] for p in people] + [x["name"] for x in liaisons]
    for lang in ("zh", "en"):
        text = (await public.get(f"/ui/public/{SLUG}/results", params={"lang": lang})).text
        assert personal_data(text, known) == [], lang
    assert (await public.get("/ui/public/atlantis/results")).status_code == 404


async def test_results_export_downloads_as_csv_and_xlsx(app, seeded):
    admin = await signed_in(app, "uiev-admin")
    run_path = await _a_run(admin)
    r = await admin.get(run_path + "/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"] and r.content.startswith("\ufeff".encode())
    text = r.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("类内排名 Rank in class,") and seeded["js-a"].name in text
    r = await admin.get(run_path + "/export", params={"format": "xlsx", "class": "B"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    rows = read_xlsx(r.content)
    assert rows[0][2] == "单位名称 Name" and [row[2] for row in rows[1:]] == [seeded["js-b"].name]
    assert (await browser(app).get(run_path + "/export?format=csv")).status_code == 303  # no session: the login form
    assert (await admin.get(run_path + "/export", params={"format": "pdf"})).status_code == 404


async def _a_run(c: httpx.AsyncClient) -> str:
    """The path of a run of this tenant (running one for the current month when there is none)."""
    page = await c.get("/ui/evaluation")
    found = re.search(r'href="(/ui/evaluation/runs/[0-9a-f-]{36})"', page.text)
    if found:
        return found.group(1)
    csrf = TOKEN.search(page.text).group(1)
    first = dt.datetime.now(TZ).date().replace(day=1)
    r = await c.post("/ui/evaluation/periods", data={"kind": "monthly", "starts_on": first.isoformat(), "_csrf_token": csrf})
    r = await c.post(r.headers["location"].split("?")[0] + "/run", data={"_csrf_token": csrf})
    assert r.status_code == 303, r.text
    return r.headers["location"].split("?")[0]


async def test_exit_proposals_raise_and_decide(app, seeded):
    officer = await signed_in(app, "uiev-js-officer")
    async with tenant_transaction(SLUG) as conn:
        complaint = str(await conn.fetchval("SELECT id FROM complaints WHERE enterprise_id = $1 AND state = 'closed' LIMIT 1",
                                            uuid.UUID(seeded["js-c"].enterprise_id)))
    # the complaint page links to the form, prefilled
    page = await officer.get(f"/ui/complaints/{complaint}")
    link = re.search(r'<p id="raise-proposal"><a href="([^"]+)"', page.text)
    assert link, "the supervision area links to the proposal form"
    form = await officer.get(link.group(1).replace("&amp;", "&"))
    assert form.status_code == 200 and f'value="{complaint}"' in form.text
    assert re.search(rf'<option value="{seeded["js-c"].enterprise_id}" selected', form.text)
    assert seeded["pd-1"].name not in form.text  # Pudong's unit is outside the Jinshan subtree
    csrf = TOKEN.search(form.text).group(1)
    base = {"enterprise_id": seeded["js-c"].enterprise_id, "ground": "untrue_feedback", "_csrf_token": csrf}
    r = await officer.post("/ui/evaluation/proposals", data={**base, "source": "complaint", "detail": ""})
    assert r.status_code == 400 and 'id="f-detail-err"' in r.text
    r = await officer.post("/ui/evaluation/proposals", data={**base, "source": "complaint", "detail": "反馈与回访不符"})
    assert r.status_code == 400 and 'id="f-complaint_id-err"' in r.text and "反馈与回访不符" in r.text  # kept
    r = await officer.post("/ui/evaluation/proposals", data={**base, "source": "complaint", "complaint_id": complaint,
                                                             "detail": "反馈与回访不符"})
    assert r.status_code == 303, r.text
    listing = await officer.get("/ui/evaluation/proposals")
    mine = re.search(rf'<li class="card proposal" id="proposal-([0-9a-f-]+)" data-status="proposed" data-unit="{seeded["js-c"].enterprise_id}"',
                     listing.text)
    assert mine and f'href="/ui/complaints/{complaint}"' in listing.text
    pid = mine.group(1)
    # a decision needs its note: refused next to the field of that proposal's form
    r = await officer.post(f"/ui/evaluation/proposals/{pid}/decision", data={"decision": "dismiss", "note": "", "_csrf_token": csrf})
    assert r.status_code == 400 and re.search(r'id="d-\d+-note-err"', r.text)
    head = await signed_in(app, "uiev-js-head")  # an office head reads, does not decide
    assert f'id="decide-{pid}"' not in (await head.get("/ui/evaluation/proposals")).text
    r = await officer.post(f"/ui/evaluation/proposals/{pid}/decision",
                           data={"decision": "dismiss", "note": "经核实，反馈属实", "_csrf_token": csrf})
    assert r.status_code == 303
    r = await officer.get("/ui/evaluation/proposals", params={"status": "dismissed"})
    assert f'id="proposal-{pid}" data-status="dismissed"' in r.text and "经核实，反馈属实" in r.text
    r = await officer.post(f"/ui/evaluation/proposals/{pid}/decision",
                           data={"decision": "revoke", "note": "再次决定", "_csrf_token": csrf})
    assert r.status_code == 409  # already decided


async def test_statistics_of_a_jinshan_officer_stay_in_its_subtree(app, seeded):
    officer = await signed_in(app, "uiev-js-officer")
    r = await officer.get("/ui/statistics")
    assert r.status_code == 200, r.text[-1500:]
    options = re.findall(r'<option value="([^"]+)"', re.search(r'<select name="node".*?</select>', r.text, re.S).group(0))
    assert options == ["310116", "310116-01", "310116-02"]
    assert 'id="target-form"' not in r.text  # a district bureau sets no coverage targets
    classes = re.search(r'<table id="table-class-table".*?</table>', r.text, re.S).group(0)
    assert [c for c in re.findall(r"<tr><td>([^<]*)</td>", classes)] == ["A", "B", "C"]
    merchants = re.search(r'<table id="table-top-merchants".*?</table>', r.text, re.S).group(0)
    assert seeded["js-a"].name in merchants and seeded["pd-1"].name not in merchants
    data = re.search(r'<script type="application/json" id="stats-data">(.*?)</script>', r.text, re.S).group(1)
    charts = json.loads(data)
    assert charts["classes"]["labels"] == ["A", "B", "C"] and len(charts["trend"]["labels"]) == 6
    assert "<" not in data and ">" not in data  # embedded JSON is escaped for the script element
    for path in ("/ui/statistics?node=310115", "/ui/statistics?node=310000",
                 "/ui/statistics/export/class-table?format=csv&node=310115",
                 "/ui/statistics/export/top-merchants?format=xlsx&node=310000"):
        assert (await officer.get(path)).status_code == 404, path
    # a bad date is named next to its field
    r = await officer.get("/ui/statistics", params={"since": "2026-13-01", "until": "2026-01-01"})
    assert r.status_code == 400 and 'id="f-since-err"' in r.text
    r = await officer.get("/ui/statistics", params={"since": "2026-05-01", "until": "2026-01-01"})
    assert r.status_code == 400 and 'id="f-until-err"' in r.text
    r = await officer.get("/ui/statistics", params={"node": "310116-02", "lang": "en"})
    assert r.status_code == 200 and "Indicators per enterprise class" in r.text
    assert not re.search(r"\b(?:stats|col|eval)\.[a-z_]+\b", re.sub(r"<script.*?</script>", "", r.text, flags=re.S))


async def test_statistics_exports_download_as_csv_and_xlsx(app, seeded):
    officer = await signed_in(app, "uiev-js-officer")
    page = await officer.get("/ui/statistics", params={"since": "2026-01-01"})
    links = set(re.findall(r'href="(/ui/statistics/export/[^"]+)"', page.text))
    assert len(links) == 10  # five reports, two formats
    for link in sorted(links):
        r = await officer.get(link.replace("&amp;", "&"))
        assert r.status_code == 200, (link, r.text[-300:])
        assert "attachment" in r.headers["content-disposition"] and "since=" not in r.headers["content-disposition"]
        if "format=csv" in link:
            assert r.content.startswith("\ufeff".encode()) and r.headers["content-type"].startswith("text/csv")
        else:
            assert xlsx_sheet_names(r.content) == ["报表 report", "说明 about"]
    r = await officer.get("/ui/statistics/export/class-table?format=csv&node=310116")
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("企业分类 enterprise_class,") and [line.split(",")[0] for line in lines[1:]] == ["A", "B", "C", "合计 total"]
    assert (await officer.get("/ui/statistics/export/nonsense?format=csv")).status_code == 404
    assert (await officer.get("/ui/statistics/export/coverage?format=pdf")).status_code == 404


async def test_coverage_targets_form(app, seeded):
    admin = await signed_in(app, "uiev-admin")
    page = await admin.get("/ui/statistics")
    assert 'id="target-form"' in page.text
    action = re.search(r'<form method="post" action="([^"]+)" id="target-form"', page.text).group(1)
    csrf = TOKEN.search(page.text).group(1)
    year = dt.datetime.now(TZ).year
    r = await admin.post(action, data={"node_code": "310116-01", "year": str(year), "target_units": "3", "_csrf_token": csrf})
    assert r.status_code == 400 and 'id="tg-node_code-err"' in r.text  # an office takes no target
    r = await admin.post(action, data={"node_code": "310116", "year": "1999", "target_units": "3", "_csrf_token": csrf})
    assert r.status_code == 400 and 'id="tg-year-err"' in r.text
    r = await admin.post(action, data={"node_code": "310116", "year": str(year), "target_units": "7", "_csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"].endswith("#coverage")
    page = await admin.get("/ui/statistics")
    coverage = re.search(r'<table id="table-coverage".*?</table>', page.text, re.S).group(0)
    row = re.search(r"<tr><td>金山区市场监督管理局</td>(.*?)</tr>", coverage, re.S).group(1)
    assert re.findall(r'<td class="num">([^<]*)</td>', row)[3] == "7"  # units, members, new, target, gap
    officer = await signed_in(app, "uiev-js-officer")
    r = await officer.post("/ui/statistics/targets", data={"node_code": "310116", "year": str(year), "target_units": "9",
                                                           "_csrf_token": await token(officer, "/ui/statistics")})
    assert r.status_code == 403


async def test_the_new_pages_have_every_label_in_both_languages(app, seeded):
    """No label key shows through (a missing label renders as its key) on any of the new pages."""
    admin = await signed_in(app, "uiev-admin")
    run_path = await _a_run(admin)
    period = re.search(r'href="(/ui/evaluation/periods/[0-9a-f-]{36})"', (await admin.get(run_path)).text).group(1)
    paths = ["/ui/evaluation", period, run_path, "/ui/evaluation/proposals?status=all", "/ui/evaluation/proposals/new",
             "/ui/statistics", f"/ui/public/{SLUG}/results"]
    key = re.compile(r"\b(?:eval|proposal|stats|col|results|nav|ground|state)\.[a-z_]+\b")
    for lang in ("zh", "en"):
        for path in paths:
            r = await admin.get(path, params={"lang": lang})
            assert r.status_code == 200, path
            body = re.sub(r"<script.*?</script>", "", r.text, flags=re.S)
            assert not key.findall(body), (lang, path, key.findall(body)[:5])
