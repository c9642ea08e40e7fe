"""Paging of the console's complaint lists without a browser (in-process HTTP): the bureau's work queue,
the enterprise inbox and the consumer's "my complaints" show one page at a time (``?page=``, 1-based),
with previous / next links that keep the chosen view, the total, and the live refresh of the queue and
the inbox keeping the page; a malformed page is a 400 naming ``page``, one past the end shows the last
page. The page sizes are lowered through the modules' constants instead of filing hundreds of cases."""

from __future__ import annotations

import re
import uuid

import pytest
import pytest_asyncio

from admin_ui import i18n
from admin_ui.pages import bureau, consumer, enterprise
from admin_ui.paging import Pager, requested_page
from odr.app import create_app
from core.db.engine import tenant_transaction
from tests.complaint_helpers import active_unit
from tests.complaint_helpers import consumer as new_consumer
from tests.conftest import login
from tests.console_helpers import signed_in

LINK = re.compile(r'href="/ui/complaints/([0-9a-f-]{36})"')


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(demo):
    return create_app(demo, manage_lifecycle=False)


def ids(html: str) -> list[str]:
    return LINK.findall(html)


async def file(client, user: str, n: int, **extra) -> None:
    headers = await login(client, user, "demo12315-pw")
    for i in range(n):
        body = {"company_name": "分页测试公司", "subject": f"分页测试 {i}-{uuid.uuid4().hex[:6]}", "description": "测试分页",
                "consumer_name": "赵六", "consumer_phone": "13600136000", "node_code": "310116", **extra}
        r = await client.post("/api/tenants/shanghai/complaints", json=body, headers=headers)
        assert r.status_code == 201, r.text


def test_the_page_parameter():
    assert requested_page({}) == 1 and requested_page({"page": ""}) == 1 and requested_page({"page": " 3 "}) == 3
    for bad in ("0", "-1", "abc", "1.5", "２", "1e3", "100001", "9" * 5000):
        with pytest.raises(ValueError, match=r"^page: "):
            requested_page({"page": bad})
    p = Pager.clamped(9, 2, 5, path="/ui/bureau", query={"view": "all", "page": "9", "fragment": "1", "done": "x"})
    assert (p.number, p.pages, p.offset, p.first_item, p.last_item, p.has_prev, p.has_next) == (3, 3, 4, 5, 5, True, False)
    assert p.url(2) == "/ui/bureau?view=all&page=2" and p.url(3, fragment="1") == "/ui/bureau?view=all&fragment=1&page=3"
    empty = Pager.clamped(4, 50, 0, path="/ui/my")
    assert (empty.number, empty.pages, empty.first_item, empty.last_item) == (1, 1, 0, 0) and empty.url(1) == "/ui/my"


async def test_the_work_queue_pages_with_its_view_and_live_refresh(app, client, monkeypatch):
    await file(client, await new_consumer(client, "shanghai"), 3)  # at least three registered cases in Jinshan
    monkeypatch.setattr(bureau, "QUEUE_PAGE_SIZE", 2)
    async with tenant_transaction("shanghai") as conn:
        total = await conn.fetchval("SELECT count(*) FROM complaints WHERE node_path LIKE '310000/310116%' AND state = 'registered'")
    pages = -(-total // 2)
    officer = await signed_in(app, "js-officer")
    first = await officer.get("/ui/bureau?view=registered")
    assert first.status_code == 200
    assert len(ids(first.text)) == 2 and i18n.t("common.count", n=total) in first.text
    assert i18n.t("pager.page", n=1, of=pages) in first.text
    assert 'rel="next" href="/ui/bureau?view=registered&amp;page=2"' in first.text and 'rel="prev"' not in first.text
    second = await officer.get("/ui/bureau?view=registered&page=2")
    assert len(ids(second.text)) == min(2, total - 2) and not set(ids(first.text)) & set(ids(second.text))
    assert 'rel="prev" href="/ui/bureau?view=registered"' in second.text
    assert 'hx-get="/ui/bureau?view=registered&amp;fragment=1&amp;page=2"' in second.text  # the refresh keeps the page
    fragment = await officer.get("/ui/bureau?view=registered&page=2&fragment=1")
    assert fragment.text.lstrip().startswith("<section id=\"queue\"") and ids(fragment.text) == ids(second.text)
    seen = []  # every case once, page after page
    for number in range(1, pages + 1):
        seen += ids((await officer.get(f"/ui/bureau?view=registered&page={number}")).text)
    assert len(seen) == len(set(seen)) == total
    last = await officer.get("/ui/bureau?view=registered&page=99999")  # past the end: the last page
    assert last.status_code == 200 and i18n.t("pager.page", n=pages, of=pages) in last.text and 'rel="next"' not in last.text
    for bad in ("0", "abc", "-2"):
        r = await officer.get(f"/ui/bureau?view=registered&page={bad}")
        assert r.status_code == 400 and "page:" in r.text, bad
    everything = await officer.get("/ui/bureau?view=all&page=2")  # another view pages on its own
    assert 'rel="prev" href="/ui/bureau?view=all"' in everything.text


async def test_the_queue_badges_count_the_whole_view_not_one_page(app, client, monkeypatch):
    unit = await active_unit("shanghai", "310116-01")
    await file(client, await new_consumer(client, "shanghai"), 3, credit_code=unit["credit_code"], route="odr")
    async with tenant_transaction("shanghai") as conn:  # one case past its contact deadline, one due within the hour
        await conn.execute(
            """UPDATE complaints SET contact_due = now() + CASE WHEN rn = 1 THEN interval '-1 hour' ELSE interval '1 hour' END
               FROM (SELECT id AS cid, row_number() OVER (ORDER BY id) AS rn FROM complaints WHERE enterprise_id = $1) r
               WHERE id = r.cid AND r.rn <= 2""", uuid.UUID(unit["id"]))
    officer = await signed_in(app, "js-officer")
    monkeypatch.setattr(bureau, "QUEUE_PAGE_SIZE", 1000)
    whole = (await officer.get("/ui/bureau?view=in_odr")).text
    overdue, warn = whole.count('<tr class="overdue">'), whole.count('<tr class="warn">')
    assert overdue >= 1 and warn >= 1
    monkeypatch.setattr(bureau, "QUEUE_PAGE_SIZE", 1)
    for number in (1, 2):
        text = (await officer.get(f"/ui/bureau?view=in_odr&page={number}")).text
        assert i18n.t("queue.n_overdue", n=overdue) in text and i18n.t("queue.due_soon", n=warn) in text


async def test_the_enterprise_inbox_pages(app, client, monkeypatch):
    unit = await active_unit("shanghai", "310116-02")
    await file(client, await new_consumer(client, "shanghai"), 3, credit_code=unit["credit_code"], route="odr")
    monkeypatch.setattr(enterprise, "PAGE_SIZE", 2)
    specialist = await signed_in(app, unit["specialist"])
    first = await specialist.get("/ui/inbox")
    assert len(ids(first.text)) == 2 and i18n.t("pager.range", first=1, last=2, total=3) in first.text
    assert 'rel="next" href="/ui/inbox?view=active&amp;page=2"' in first.text
    second = await specialist.get("/ui/inbox?view=active&page=2")
    assert len(ids(second.text)) == 1 and not set(ids(first.text)) & set(ids(second.text))
    assert 'data-refresh="/ui/inbox?view=active&amp;fragment=1&amp;page=2"' in second.text
    assert ids((await specialist.get("/ui/inbox?view=active&page=2&fragment=1")).text) == ids(second.text)
    assert len(ids((await specialist.get("/ui/inbox?view=done")).text)) == 0  # the view filter still applies
    r = await specialist.get("/ui/inbox?page=x")
    assert r.status_code == 400 and "page:" in r.text


async def test_my_complaints_page(app, client, monkeypatch):
    user = await new_consumer(client, "shanghai")
    await file(client, user, 3)
    monkeypatch.setattr(consumer, "MY_PAGE_SIZE", 2)
    me = await signed_in(app, user, "demo12315-pw")
    first = await me.get("/ui/my")
    assert len(ids(first.text)) == 2 and 'rel="next" href="/ui/my?page=2"' in first.text
    second = await me.get("/ui/my?page=2")
    assert len(ids(second.text)) == 1 and 'rel="prev" href="/ui/my"' in second.text
    assert not set(ids(first.text)) & set(ids(second.text))
    english = await me.get("/ui/my?page=2&lang=en")
    assert "Page 2 of 2" in english.text and "3 of 3" in english.text
    assert (await me.get("/ui/my?page=0")).status_code == 400
