"""Statistics reports (core.reports): the class table over the seeded Jinshan history, on a throw-away
copy of the Shanghai manifest (the demo tenants carry no history), as JSON and as CSV; 400/404 cases."""

from __future__ import annotations

import csv
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from core.auth.principal import Role
from tests.conftest import login
from tests.report_helpers import seeded_copy

SLUG = "rptsh"
URL = f"/api/tenants/{SLUG}/reports/class-table"
ACCOUNTS = (
    ("rpt-js-officer", Role.BUREAU_OFFICER, "310116"),
    ("rpt-js-head", Role.OFFICE_HEAD, "310116-01"),
    ("rpt-pd-head", Role.OFFICE_HEAD, "310115-01"),
    ("rpt-consumer", Role.CONSUMER, None),
)


@pytest_asyncio.fixture(scope="module")
async def seeded(demo):
    """The copy tenant with its demo history and a few accounts; the seeder's summary per unit key."""
    async with seeded_copy(demo, "shanghai", SLUG, ACCOUNTS) as summary:
        yield {u.key: u for u in summary.units}


async def report(client, user: str, **params):
    return await client.get(URL, params=params, headers=await login(client, user))


async def test_class_table_matches_what_the_seeder_seeded(client, seeded):
    r = await report(client, "rpt-js-officer", node="310116")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["node"] == "310116" and body["since"] is None and body["until"] is None
    rows = {row["enterprise_class"]: row for row in body["rows"]}
    assert list(rows) == ["A", "B", "C"]  # Jinshan's units only (Pudong's is outside the subtree)
    for key, cls in (("js-a", "A"), ("js-b", "B"), ("js-c", "C")):
        u, row = seeded[key], rows[cls]
        assert u.enterprise_class == cls
        assert (row["handled"], row["with_feedback"], row["settled"], row["closed"]) == (
            u.complaints, u.with_feedback, u.settled, u.closed), key
        assert row["settlement_rate"] == pytest.approx(u.settlement_rate, abs=1e-4)
        assert (row["contact_breaches"], row["close_breaches"]) == (u.contact_breaches, u.close_breaches)
        assert row["breaches"] == u.contact_breaches + u.close_breaches
        assert row["rated"] == u.rated
        assert row["avg_rating"] == pytest.approx(u.avg_rating, abs=0.01)
        assert row["label"]
    # The documents' shapes: about 85 % / 95 % / 100 %, about a week.
    assert rows["A"]["settlement_rate"] == pytest.approx(0.85, abs=0.03)
    assert rows["B"]["settlement_rate"] == pytest.approx(0.95, abs=0.03)
    assert rows["C"]["settlement_rate"] == 1.0
    assert 5.0 <= rows["A"]["avg_cycle_days"] <= 9.0
    for row in rows.values():
        assert row["p90_cycle_days"] >= row["avg_cycle_days"] > 0
        assert row["amount_recovered"] > 0
    total = body["total"]
    for field in ("handled", "with_feedback", "settled", "closed", "rated", "breaches"):
        assert total[field] == sum(row[field] for row in rows.values()), field
    assert total["amount_recovered"] == pytest.approx(sum(row["amount_recovered"] for row in rows.values()))
    assert total["settlement_rate"] == pytest.approx(total["settled"] / total["with_feedback"], abs=1e-4)
    assert total["enterprise_class"] == ""


async def test_subtree_and_date_window(client, seeded):
    # An office sees its own subtree: 朱泾所 (310116-01) has the A and C units, not the B one.
    r = await report(client, "rpt-js-head")  # default node: the caller's own
    assert r.status_code == 200, r.text
    assert r.json()["node"] == "310116-01"
    assert [row["enterprise_class"] for row in r.json()["rows"]] == ["A", "C"]

    # Past cases entered ODR 13-90 days ago, the open ones within the last day.
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    split = today - dt.timedelta(days=5)
    recent = (await report(client, "rpt-js-officer", node="310116", since=split.isoformat())).json()
    older = (await report(client, "rpt-js-officer", node="310116", until=split.isoformat())).json()
    assert recent["since"] == split.isoformat()
    assert {row["enterprise_class"]: row["handled"] for row in recent["rows"]} == {
        cls: seeded[key].open for key, cls in (("js-a", "A"), ("js-b", "B")) if seeded[key].open}
    assert recent["total"]["with_feedback"] == 0 and recent["total"]["settlement_rate"] is None
    assert {row["enterprise_class"]: row["handled"] for row in older["rows"]} == {
        cls: seeded[key].complaints - seeded[key].open for key, cls in (("js-a", "A"), ("js-b", "B"), ("js-c", "C"))}

    future = today + dt.timedelta(days=1)
    empty = (await report(client, "rpt-js-officer", node="310116", since=future.isoformat(),
                          until=future.isoformat())).json()
    assert empty["rows"] == [] and empty["total"]["handled"] == 0 and empty["total"]["avg_cycle_days"] is None


async def test_csv_has_bom_bilingual_header_and_the_classes(client, seeded):
    r = await report(client, "rpt-js-officer", node="310116", since="2020-01-01", format="csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;") and 'filename="class-table_rptsh_310116_2020-01-01_now.csv"' in disposition
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert header[0] == "企业分类 enterprise_class" and "和解率 settlement_rate" in header
    assert [row[0] for row in body] == ["A", "B", "C", "合计 total"]
    handled = header.index("处理件数 handled")
    assert int(body[0][handled]) == seeded["js-a"].complaints
    assert int(body[-1][handled]) == sum(seeded[k].complaints for k in ("js-a", "js-b", "js-c"))


@pytest.mark.parametrize("params, field", [
    ({"since": "2026-13-01"}, "since"),
    ({"since": "yesterday"}, "since"),
    ({"until": "2026-02-30"}, "until"),
    ({"until": "20260101"}, "until"),
    ({"since": "2026-03-02", "until": "2026-03-01"}, "until"),
])
async def test_bad_dates_are_400_naming_the_parameter(client, seeded, params, field):
    r = await report(client, "rpt-js-officer", node="310116", **params)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and field in r.json()["detail"]


async def test_nodes_outside_the_subtree_are_404_and_consumers_403(client, seeded):
    for user, node in (("rpt-pd-head", "310116"), ("rpt-js-officer", "310115"), ("rpt-js-head", "310116-02"),
                       ("rpt-js-officer", "999999")):
        r = await report(client, user, node=node)
        assert r.status_code == 404, (user, node, r.text)
    assert (await report(client, "rpt-consumer", node="310116")).status_code == 403
    # Another tenant's member: the tenant is not found.
    r = await client.get(URL, params={"node": "310116"}, headers=await login(client, "js-officer"))
    assert r.status_code == 404
