"""The bureau's "forward a complaint from 12315" form (转办12315投诉) without a browser (in-process HTTP):
reachable from the work queue for bureau roles only, files through the service with the source
``bureau_forwarded``, keeps to the officer's jurisdiction (the refusal named next to its field), the
direct ODR route only for an ODR unit, and one complaint per idempotency key however often it is sent."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest_asyncio

from admin_ui import i18n
from odr.app import create_app
from core.db.engine import tenant_transaction
from tests.complaint_helpers import active_unit
from tests.console_helpers import TOKEN, signed_in

KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
COMPLAINT = re.compile(r"^/ui/complaints/([0-9a-f-]{36})\?done=forward.done$")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(demo):
    return create_app(demo, manage_lifecycle=False)


async def form_of(c) -> tuple[str, dict]:
    """The form page and its hidden fields (CSRF token, idempotency key)."""
    r = await c.get("/ui/bureau/forward")
    assert r.status_code == 200, r.text[-500:]
    return r.text, {"_csrf_token": TOKEN.search(r.text).group(1), "idempotency_key": KEY.search(r.text).group(1)}


def forwarded(subject: str, **extra) -> dict:
    return {"company_name": "金山某超市", "enterprise_id": "", "credit_code": "", "node_code": "310116-01",
            "consumer_name": "王建国", "consumer_phone": "13800138000", "consumer_address": "上海市金山区朱泾镇",
            "subject": subject, "description": "12315热线来电：购买的食品已过期，要求退款。", "amount_claimed": "58.5",
            "category": "食品", "route": "bureau", **extra}


async def stored(subject: str) -> list:
    async with tenant_transaction("shanghai") as conn:
        return await conn.fetch("SELECT id, source, state, node_code, odr_unit, idempotency_key FROM complaints WHERE subject = $1",
                                subject)


async def test_an_officer_forwards_a_complaint_and_finds_it_in_the_queue(app):
    officer = await signed_in(app, "js-officer")
    queue = await officer.get("/ui/bureau")
    assert 'href="/ui/bureau/forward"' in queue.text and i18n.t("forward.title") in queue.text
    text, hidden = await form_of(officer)
    for code in ("310116", "310116-01", "310116-02"):  # the nodes the officer covers, their own preselected
        assert f'<option value="{code}"' in text
    assert '<option value="310115"' not in text and '<option value="310116" selected>' in text
    subject = f"12315转办-{uuid.uuid4().hex[:8]}"
    r = await officer.post("/ui/bureau/forward", data={**hidden, **forwarded(subject)})
    assert r.status_code == 303, r.text[-800:]
    match = COMPLAINT.match(r.headers["location"])
    assert match, r.headers["location"]
    [row] = await stored(subject)
    assert str(row["id"]) == match.group(1)
    assert (row["source"], row["state"], row["node_code"], row["odr_unit"]) == ("bureau_forwarded", "registered", "310116-01", False)

    page = await officer.get(r.headers["location"])
    assert page.status_code == 200 and i18n.t("forward.done") in page.text
    assert 'data-source="bureau_forwarded"' in page.text and i18n.t("source.bureau_forwarded") in page.text
    queue = await officer.get("/ui/bureau?view=registered")
    line = next(x for x in queue.text.split("<tr") if f"/ui/complaints/{row['id']}" in x)
    assert subject in line and i18n.t("source.bureau_forwarded") in line
    english = await officer.get("/ui/bureau/forward?lang=en")
    assert "<h1>Forward a complaint from 12315</h1>" in english.text


async def test_an_odr_unit_may_take_the_direct_route_and_another_company_may_not(app):
    unit = await active_unit("shanghai", "310116-02", name=f"金山转办测试电商{uuid.uuid4().hex[:4]}有限公司")
    officer = await signed_in(app, "js-officer")
    text, hidden = await form_of(officer)
    assert f'<option value="{unit["id"]}"' in text  # the district's units are offered
    head_form, _ = await form_of(await signed_in(app, "js-office-head"))  # to its offices too
    assert f'<option value="{unit["id"]}"' in head_form
    refused = f"不是ODR企业-{uuid.uuid4().hex[:8]}"
    r = await officer.post("/ui/bureau/forward", data={**hidden, **forwarded(refused, route="odr")})
    assert r.status_code == 400 and 'id="f-route-err"' in r.text and not await stored(refused)
    subject = f"直接转ODR-{uuid.uuid4().hex[:8]}"
    r = await officer.post("/ui/bureau/forward", data={**hidden, **forwarded(subject, route="odr", enterprise_id=unit["id"],
                                                                             node_code="310116")})
    assert r.status_code == 303, r.text[-800:]
    [row] = await stored(subject)
    assert (row["source"], row["state"], row["odr_unit"]) == ("bureau_forwarded", "with_enterprise", True)
    specialist = await signed_in(app, unit["specialist"])
    assert f"/ui/complaints/{row['id']}" in (await specialist.get("/ui/inbox")).text


async def test_a_node_outside_the_jurisdiction_is_refused_next_to_its_field(app):
    officer = await signed_in(app, "js-officer")  # Jinshan district: Pudong is not theirs
    _, hidden = await form_of(officer)
    subject = f"辖区外-{uuid.uuid4().hex[:8]}"
    r = await officer.post("/ui/bureau/forward", data={**hidden, **forwarded(subject, node_code="310115")})
    assert r.status_code == 400
    assert 'id="f-node_code-err"' in r.text and "jurisdiction" in r.text
    assert f'value="{subject}"' in r.text and f'value="{hidden["idempotency_key"]}"' in r.text  # kept for the retry
    head = await signed_in(app, "js-office-head")  # an office head covers their office only
    text, hidden = await form_of(head)
    assert '<option value="310116-02"' not in text
    r = await head.post("/ui/bureau/forward", data={**hidden, **forwarded(subject, node_code="310116-02")})
    assert r.status_code == 400 and 'id="f-node_code-err"' in r.text
    r = await head.post("/ui/bureau/forward", data={**hidden, **forwarded(subject, consumer_phone="call me")})
    assert r.status_code == 400 and 'id="f-consumer_phone-err"' in r.text
    assert not await stored(subject)


async def test_consumers_and_specialists_may_not_forward(app):
    consumer = await signed_in(app, "sh-consumer")
    assert (await consumer.get("/ui/bureau/forward")).status_code == 403
    token = TOKEN.search((await consumer.get("/ui/my/new")).text).group(1)
    subject = f"消费者冒充转办-{uuid.uuid4().hex[:8]}"
    r = await consumer.post("/ui/bureau/forward", data={"_csrf_token": token, **forwarded(subject)})
    assert r.status_code == 403 and not await stored(subject)
    assert 'href="/ui/bureau/forward"' not in (await consumer.get("/ui/my")).text
    unit = await active_unit("shanghai", "310116-01")
    specialist = await signed_in(app, unit["specialist"])
    assert (await specialist.get("/ui/bureau/forward")).status_code == 403


async def test_a_repeated_submission_files_one_complaint(app):
    officer = await signed_in(app, "js-officer")
    _, hidden = await form_of(officer)
    subject = f"重复提交-{uuid.uuid4().hex[:8]}"
    data = {**hidden, **forwarded(subject)}
    first = await officer.post("/ui/bureau/forward", data=data)
    again = await officer.post("/ui/bureau/forward", data=data)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    _, hidden = await form_of(officer)  # a double click: both submissions at once
    racing = f"并发重复提交-{uuid.uuid4().hex[:8]}"
    answers = await asyncio.gather(*(officer.post("/ui/bureau/forward", data={**hidden, **forwarded(racing)}) for _ in range(3)))
    assert {a.status_code for a in answers} == {303} and len({a.headers["location"] for a in answers}) == 1
    assert len(await stored(subject)) == 1 and len(await stored(racing)) == 1
