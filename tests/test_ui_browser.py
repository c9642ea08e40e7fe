"""The web console in a real browser (Debian's chromium via Playwright) against the real server
(granian, ``odr serve``) and the session's database with the demo tenants: each role's main path end
to end, with screenshots kept as artefacts (``test-artifacts/ui/``).

- an enterprise applies (documents uploaded) and the Jinshan bureau approves it; it is in the directory;
- a complaint goes from filing (the consumer is told the company is an ODR unit) through dispatch,
  screening, the specialist's inbox (the case appears without reloading), contact, negotiation and
  feedback to the rating and the closure; masking holds for the bureau node that does not handle it;
- a consumer cannot open another consumer's complaint by editing the URL; a Jinshan officer cannot
  open a Xishan (Jiangsu) case;
- the Jinshan district switches its deadline plugin off and on: the next complaint shows the new
  deadline each time; a bad configuration value is refused next to its field; a replay shows the
  comparison in place;
- the operator sees the provinces and plugin packages and onboards a province from a manifest;
- a provincial admin defines an evaluation period, runs the evaluation (progress shown), reproduces it,
  exports its results, publishes it, and the public results page shows it with nothing personal on it
  (phone numbers, ID numbers, the seeded consumers' and liaisons' names); the statistics dashboard draws
  its charts and exports a report; a district officer raises an Art. 22 exit proposal and dismisses it
  (on a copy of the Shanghai manifest seeded with the demo history, since the demo tenants carry none).

One server and one browser serve the whole module; each role has its own browser context (cookies).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
import uuid

import pytest
import pytest_asyncio
from playwright.async_api import async_playwright, expect

from core.auth.principal import Role
from core.db.engine import tenant_transaction
from tests.complaint_helpers import active_unit, credit_code
from tests.report_helpers import read_xlsx, seeded_copy
from tests.sample_files import PDF
from tests.ui_browser import CHROMIUM_ARGS, Server, chromium_path, login, personal_data, shot

STATE: dict = {}  # what one step hands to the next (the approved unit, the walked complaint)


@pytest.fixture(scope="module")
def ui_server(demo, pg_url, valkey_url, settings):
    executable = chromium_path()  # skip (or fail in CI) before starting anything
    server = Server({"ODR_DATABASE_URL": pg_url, "ODR_VALKEY_URL": valkey_url, "ODR_SECRET_KEY": settings.secret_key,
                     "ODR_LOGIN_RATE_PER_MINUTE": "1000", "ODR_POOL_MAX": "6"})
    server.chromium = executable
    yield server
    server.stop()
    errors = server.errors()
    server.cleanup()
    assert not errors, "\n".join(errors)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser(ui_server):
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=ui_server.chromium, args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


@pytest_asyncio.fixture(loop_scope="session")
async def new_page(browser):
    """``await new_page()``: a page in a fresh context (its own cookies), closed after the test."""
    contexts = []

    async def make(lang: str = "zh"):
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        context.set_default_timeout(10_000)
        contexts.append(context)
        return await context.new_page()

    yield make
    for context in contexts:
        await context.close()


def api(base: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    request = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())


def api_token(base: str, username: str) -> str:
    return api(base, "POST", "/api/auth/login", {"username": username, "password": "demo12315"})["token"]


async def file_complaint(page, base: str, *, code: str, subject: str, route: str = "odr") -> str:
    """File through the consumer's form; returns the complaint's id (from the page it lands on)."""
    await page.goto(base + "/ui/my/new")
    await page.fill("#f-company_name", "测试电商有限公司")
    await page.fill("#f-credit_code", code)
    await page.fill("#f-subject", subject)
    await page.fill("#f-description", "收到的商品与描述不符，要求退货退款。")
    await page.fill("#f-consumer_name", "王小明")
    await page.fill("#f-consumer_phone", "13912345678")
    await page.fill("#f-consumer_address", "上海市金山区朱泾镇测试路1号")
    await page.check(f"input[name=route][value={route}]")
    await page.click("#file-form > button[type=submit]")
    await page.wait_for_url("**/ui/complaints/*")
    return page.url.rsplit("/", 1)[1].split("?")[0]


async def act(page, action: str, fields: dict[str, str] | None = None) -> None:
    """Submit the form of ``action`` on the complaint page (fields by input name)."""
    form = page.locator(f"#action-{action}")
    for name, value in (fields or {}).items():
        target = form.locator(f"[name={name}]")
        if await target.count() > 1 or await target.first.get_attribute("type") == "radio":
            await form.locator(f"input[name={name}][value='{value}']").check()
        elif (await target.first.evaluate("e => e.tagName")) == "SELECT":
            await target.select_option(value)
        else:
            await target.fill(value)
    await form.locator("button[type=submit]").click()
    await page.wait_for_load_state("load")
    await expect(page.locator("p.flash")).to_be_visible()


# -- the enterprise applies and is approved ----------------------------------------------------------
async def test_enterprise_applies_and_is_approved(ui_server, new_page):
    base = ui_server.base
    code = credit_code()
    suffix = uuid.uuid4().hex[:6]
    page = await new_page()
    await page.goto(base + "/ui/public/shanghai/apply")
    await page.fill("#f-name", f"浏览器测试电商{suffix}有限公司")
    await page.fill("#f-credit_code", code)
    await page.select_option("#f-node_code", "310116")
    await page.fill("#f-industry", "电子商务")
    await page.fill("#f-employees", "12")
    await page.fill("#f-business_scope", "日用品网络零售")
    for condition in ("fixed_place", "staff_available", "computer_online", "dedicated_phone", "written_procedure"):
        await page.check(f"#f-{condition}")
    for role in ("person_in_charge", "staff"):
        await page.fill(f"#f-{role}_name", "李负责人" if role == "person_in_charge" else "赵联络员")
        await page.fill(f"#f-{role}_phone", "13800001111" if role == "person_in_charge" else "13800002222")
        await page.fill(f"#f-{role}_username", f"ui-{role.replace('_', '-')}-{suffix}")
    for kind in ("application_letter", "commitment", "business_licence", "consumer_protection_statement"):
        await page.set_input_files(f"#f-{kind}", files=[{"name": f"{kind}.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    await shot(page, "enterprise-01-application-form")
    await page.click("#apply-form > button[type=submit]")
    await expect(page.locator("#application-submitted")).to_be_visible()
    application_id = await page.locator("#application-submitted").get_attribute("data-application")
    await shot(page, "enterprise-02-submitted")

    officer = await new_page()
    await login(officer, base, "js-officer")
    await officer.goto(base + "/ui/bureau/applications?status=submitted")
    await officer.click(f"a[href='/ui/bureau/applications/{application_id}']")
    await expect(officer.locator("#documents li")).to_have_count(4)
    async with officer.expect_download() as download:
        await officer.click(f"a[href$='/documents/business_licence']")
    assert (await download.value).suggested_filename == "business_licence.pdf"
    await shot(officer, "enterprise-03-review")
    await officer.check("input[name=decision][value=approve]")
    await officer.select_option("#f-method", "site_inspection")
    await officer.click("#review-form button[type=submit]")
    await expect(officer.locator("#review-outcome")).to_be_visible()
    await shot(officer, "enterprise-04-approved-credentials")
    row = officer.locator("#credentials tr[data-role=person_in_charge]")
    username = (await row.locator(".username").inner_text()).strip()
    password = (await row.locator(".password").inner_text()).strip()

    specialist = await new_page()
    await login(specialist, base, username, password)
    assert specialist.url.endswith("/ui/inbox")
    await specialist.goto(base + "/ui/unit")
    await expect(specialist.locator("h1")).to_contain_text(f"浏览器测试电商{suffix}")
    await shot(specialist, "enterprise-05-own-unit")

    directory = await new_page()
    await directory.goto(base + f"/ui/public/shanghai/directory?q={code}")
    await shot(directory, "public-00-directory")
    await expect(directory.locator("#directory tbody tr")).to_have_count(1)
    await expect(directory.locator("#directory")).not_to_contain_text("李负责人")  # never a liaison in public
    await directory.click("header a.lang")  # English switch
    await expect(directory.locator("h1")).to_contain_text("ODR directory")
    await shot(directory, "public-01-directory-en")
    STATE["unit"] = {"code": code, "username": username, "password": password}


# -- a complaint from filing to closure ---------------------------------------------------------------
async def test_complaint_goes_from_filing_to_closure(ui_server, new_page):
    base = ui_server.base
    unit = STATE.get("unit")
    if unit is None:  # the application test failed: walk on a unit made directly
        made = await active_unit("shanghai", "310116")
        unit = {"code": made["credit_code"], "username": made["specialist"], "password": "demo12315"}

    consumer = await new_page()
    user = f"ui-c-{uuid.uuid4().hex[:8]}"
    await consumer.goto(base + "/ui/public/shanghai/signup")
    await consumer.fill("#f-username", "sh-consumer")  # taken: refused by the server, next to the field
    await consumer.fill("#f-password", "demo12315-pw")
    await consumer.click("main form button[type=submit]")
    await expect(consumer.locator("#f-username-err")).to_be_visible()
    await shot(consumer, "consumer-01-signup-error")
    await consumer.fill("#f-username", user)
    await consumer.fill("#f-password", "demo12315-pw")
    await consumer.click("main form button[type=submit]")
    await consumer.wait_for_url("**/ui/login*")
    await login(consumer, base, user, "demo12315-pw")

    # the ODR check tells the consumer before filing (Art. 23)
    await consumer.goto(base + "/ui/my/new")
    await consumer.fill("#f-company_name", "测试电商有限公司")
    await consumer.fill("#f-credit_code", unit["code"])
    await consumer.click("button[name=check]")
    await expect(consumer.locator("#odr-check .odr-notice")).to_be_visible()
    await shot(consumer, "consumer-02-odr-check")
    complaint_id = await file_complaint(consumer, base, code=unit["code"], subject="浏览器测试：退货退款", route="bureau")
    await expect(consumer.locator(".odr-notice")).to_be_visible()
    number = (await consumer.locator("h1").inner_text()).split()[1]
    await shot(consumer, "consumer-03-filed")

    specialist = await new_page()
    await login(specialist, base, unit["username"], unit["password"])
    await specialist.goto(base + "/ui/inbox")
    await expect(specialist.locator("body[data-events-state=open]")).to_have_count(1)
    await expect(specialist.locator(f"tr[data-complaint='{number}']")).to_have_count(0)

    officer = await new_page()
    await login(officer, base, "js-officer")
    await officer.goto(base + "/ui/bureau?view=registered")
    await officer.click(f"a[href='/ui/complaints/{complaint_id}']")
    await expect(officer.locator("#consumer-contact")).to_contain_text("13912345678")  # the node handling it
    await act(officer, "dispatch", {"office": "310116-01", "note": "按辖区分派"})
    await expect(officer.locator("#consumer-contact")).not_to_contain_text("13912345678")  # no longer its node
    await expect(officer.locator("#consumer-contact")).to_contain_text("139****5678")
    await shot(officer, "bureau-01-dispatched-masked")

    head = await new_page()
    await login(head, base, "js-office-head")
    await head.goto(base + f"/ui/complaints/{complaint_id}")
    await act(head, "accept", {"note": "符合受理条件，转企业办理"})
    await shot(head, "bureau-02-accepted")

    # the specialist's inbox shows the new case without reloading (Server-Sent Events)
    await expect(specialist.locator(f"tr[data-complaint='{number}']")).to_be_visible(timeout=15_000)
    await expect(specialist.locator("#live-status")).not_to_be_empty()
    await expect(specialist.locator(f"tr[data-complaint='{number}'] time.countdown")).to_be_visible()
    await shot(specialist, "enterprise-06-inbox-live")
    await specialist.click(f"tr[data-complaint='{number}'] a")
    await expect(specialist.locator("#consumer-contact")).to_contain_text("13912345678")
    await act(specialist, "contact", {"note": "已电话联系消费者"})
    await act(specialist, "negotiate", {"note": "协商退货退款"})
    await act(specialist, "feedback", {"handling_time": "2天", "process": "电话协商，同意退货退款", "method": "refund",
                                       "settled": "true", "result": "退款199元", "amount_recovered": "199"})
    await shot(specialist, "enterprise-07-feedback")

    await consumer.goto(base + f"/ui/complaints/{complaint_id}")
    await expect(consumer.locator("#feedback")).to_contain_text("退款199元")
    await act(consumer, "rate", {"satisfaction": "5", "comment": "处理及时"})
    await shot(consumer, "consumer-04-rated")

    await head.goto(base + f"/ui/complaints/{complaint_id}")
    await act(head, "close", {"note": "反馈属实，办结"})
    await expect(head.locator("h1 .state-closed")).to_be_visible()

    await consumer.goto(base + f"/ui/complaints/{complaint_id}")
    kinds = await consumer.locator("#timeline li").evaluate_all("items => items.map(i => i.dataset.kind)")
    assert kinds == ["registered", "dispatch", "accept", "contact", "negotiate", "feedback", "rate", "close"]
    await shot(consumer, "consumer-05-closed-timeline")
    STATE["complaint"] = complaint_id


# -- access by URL editing ----------------------------------------------------------------------------
async def test_a_consumer_cannot_open_another_consumers_complaint(ui_server, new_page):
    base = ui_server.base
    owner = await new_page()
    await login(owner, base, "sh-consumer")
    code = (await active_unit("shanghai", "310116"))["credit_code"]
    complaint_id = await file_complaint(owner, base, code=code, subject="仅本人可见的投诉")

    other = await new_page()
    user = f"ui-c2-{uuid.uuid4().hex[:8]}"
    api(base, "POST", "/public/shanghai/consumers", {"username": user, "password": "demo12315-pw"})
    await login(other, base, user, "demo12315-pw")
    response = await other.goto(base + f"/ui/complaints/{complaint_id}")
    assert response.status == 404
    await expect(other.locator("main")).not_to_contain_text("仅本人可见的投诉")
    await expect(other.locator("main")).not_to_contain_text("王小明")
    await shot(other, "access-01-other-consumer-404")
    token = await other.locator("meta[name=csrf-token]").get_attribute("content")
    status = await other.evaluate(  # nor through its commands
        """async ([url, token]) => (await fetch(url, {method: 'POST', body: new URLSearchParams({_csrf_token: token})})).status""",
        [base + f"/ui/complaints/{complaint_id}/actions/withdraw", token])
    assert status == 404


async def test_a_jinshan_officer_cannot_open_a_xishan_case(ui_server, new_page):
    base = ui_server.base
    token = api_token(base, "jsu-consumer")
    filed = api(base, "POST", "/api/tenants/jiangsu/complaints", {
        "company_name": "锡山某商场", "subject": "锡山的投诉", "description": "质量问题", "consumer_name": "钱女士",
        "consumer_phone": "13700001111", "node_code": "320205"}, token)
    xishan_id = filed["complaint"]["id"]
    officer = await new_page()
    await login(officer, base, "js-officer")
    response = await officer.goto(base + f"/ui/complaints/{xishan_id}")
    assert response.status == 404
    await expect(officer.locator("main")).not_to_contain_text("锡山的投诉")
    await shot(officer, "access-02-xishan-case-404")
    xishan = await new_page()
    await login(xishan, base, "xs-office-head")  # whereas the Xishan side's own bureau does see it
    await xishan.goto(base + "/ui/bureau?view=all")
    await expect(xishan.locator("main")).not_to_contain_text("浏览器测试")  # and no Shanghai case there


# -- the district toggles its policy ------------------------------------------------------------------
async def _policy_form(page, base: str):
    await page.goto(base + "/ui/policy?node=310116")
    return page.locator("#plugin-odr_jinshan_deadline form")


async def test_district_toggles_jinshan_policy_and_the_next_complaint_shows_the_new_deadline(ui_server, new_page, demo):
    base = ui_server.base
    code = (await active_unit("shanghai", "310116-02"))["credit_code"]
    officer = await new_page()
    await login(officer, base, "js-officer")
    consumer = await new_page()
    await login(consumer, base, "sh-consumer")
    try:
        form = await _policy_form(officer, base)
        card = officer.locator("#plugin-odr_jinshan_deadline")
        await expect(card).to_have_attribute("data-active", "true")
        await expect(card.locator(".source")).to_have_attribute("data-source", "310116")

        # a bad value is refused by the server next to its field (the browser's own check switched off)
        await form.evaluate("f => { f.noValidate = true; }")
        await form.locator("[name='cfg.close_days']").fill("0")
        await form.locator("button[type=submit]").click()
        await officer.wait_for_load_state("load")
        error = officer.locator("#plugin-odr_jinshan_deadline [data-config-field=close_days] .field-error")
        await expect(error).to_be_visible()
        await shot(officer, "policy-01-config-error")

        # off: the next complaint gets the national deadlines (3 / 10 working days)
        form = await _policy_form(officer, base)
        await form.locator("input[name=active]").uncheck()
        await form.locator("button[type=submit]").click()
        await officer.wait_for_load_state("load")
        await expect(officer.locator("#plugin-odr_jinshan_deadline")).to_have_attribute("data-active", "false")
        await expect(officer.locator("#audit tbody tr").first).to_contain_text("odr_jinshan_deadline")
        await shot(officer, "policy-02-jinshan-off")
        await file_complaint(consumer, base, code=code, subject="切换后的第一件投诉")
        await expect(consumer.locator("#deadline-policy")).to_contain_text("odr_national_deadline")
        await shot(consumer, "policy-03-national-deadline")

        # on again, with a 5-day close: the next complaint shows the Jinshan deadline
        form = await _policy_form(officer, base)
        await form.locator("input[name=active]").check()
        await form.locator("details.config > summary").click()  # an inactive plugin's settings are folded
        await form.locator("[name='cfg.close_days']").fill("5")
        await form.locator("button[type=submit]").click()
        await officer.wait_for_load_state("load")
        await expect(officer.locator("#plugin-odr_jinshan_deadline")).to_have_attribute("data-active", "true")
        await file_complaint(consumer, base, code=code, subject="再次切换后的投诉")
        await expect(consumer.locator("#deadline-policy")).to_contain_text("odr_jinshan_deadline")
        details = consumer.locator("#deadlines-explained")
        await details.locator("summary").click()
        await expect(details).to_contain_text("5 个自然日")
        await shot(consumer, "policy-04-jinshan-deadline")

        # a replay runs in place (htmx) and shows the comparison
        await officer.goto(base + "/ui/policy/310116/replay?plugin=odr_national_deadline")
        await officer.click("#replay-form button[type=submit]")
        await expect(officer.locator("#replay-result .replay-result")).to_be_visible(timeout=20_000)
        await expect(officer.locator("#replay-result table.compare")).to_be_visible()
        await shot(officer, "policy-05-replay")
    finally:
        await _restore_jinshan(demo)


async def _restore_jinshan(demo) -> None:
    """Back to the demo manifest's Jinshan deadline plugin (2 / 7 natural days), whatever happened."""
    from core.db.engine import platform_transaction
    from core.pluginhost.activations import save_activation

    paths = {c: n.path for c, n in (await demo.nodes("shanghai")).items()}
    async with platform_transaction() as conn:
        await save_activation(conn, demo.host, tenant="shanghai", node_code="310116", plugin="odr_jinshan_deadline",
                              active=True, config={"contact_days": 2, "close_days": 7, "holiday_rollover": True},
                              actor="tests", node_paths=paths)
    demo.forget_activations("shanghai")


# -- a provisional due moment -------------------------------------------------------------------------
async def test_a_provisional_due_moment_is_marked_with_a_tooltip(ui_server, new_page, demo, client):
    """A case that entered ODR on 2026-12-31 (its period runs into 2027, whose State Council notice is
    not known): the due dates, the countdown and the inbox row carry the mark, its tooltip says why."""
    from zoneinfo import ZoneInfo

    from tests.complaint_helpers import consumer
    from tests.conftest import login as api_login
    from tests.provisional_helpers import entered_at, file

    made = await active_unit("shanghai", "310115")
    cons = await api_login(client, await consumer(client, "shanghai"), "demo12315-pw")
    cid = await file(client, "shanghai", made, cons)
    await entered_at(demo, "shanghai", "310115", cid, dt.datetime(2026, 12, 31, 10, tzinfo=ZoneInfo("Asia/Shanghai")))

    page = await new_page()
    await login(page, ui_server.base, made["specialist"])
    await page.goto(ui_server.base + f"/ui/complaints/{cid}")
    for where in ("#contact-due", "#close-due"):
        mark = page.locator(f"{where} .provisional-mark")
        await expect(mark).to_be_visible()
        await expect(mark).to_have_text("暂定")
        assert "国务院放假通知尚未发布" in await mark.get_attribute("title")
    countdown_mark = page.locator("time.countdown + .provisional-mark")
    await expect(countdown_mark).to_be_visible()
    await countdown_mark.hover()
    await shot(page, "provisional-01-case")
    await page.goto(ui_server.base + f"/ui/complaints/{cid}?lang=en")
    mark = page.locator("#close-due .provisional-mark")
    await expect(mark).to_have_text("provisional")
    assert "holiday notice for that year is not out yet" in await mark.get_attribute("title")
    await page.goto(ui_server.base + "/ui/inbox")
    number = (await client.get(f"/api/tenants/shanghai/complaints/{cid}", headers=cons)).json()["number"]
    await expect(page.locator(f"tr[data-complaint='{number}'] .provisional-mark")).to_be_visible()
    await shot(page, "provisional-02-inbox")


# -- the platform operator ----------------------------------------------------------------------------
async def test_operator_sees_tenants_and_plugins_and_onboards_a_province(ui_server, new_page):
    from tenants.onboarding import offboard

    base = ui_server.base
    slug = f"uiop{uuid.uuid4().hex[:6]}"
    manifest = f"""slug = "{slug}"\nname = "界面测试省"\n\n[[nodes]]\ncode = "990000"\nname = "界面测试省局"\nlevel = "province"\n
[[nodes]]\ncode = "990100"\nparent = "990000"\nname = "测试区局"\nlevel = "district"\n"""
    page = await new_page()
    await login(page, base, "operator")
    await expect(page.locator("#tenants")).to_contain_text("shanghai")
    await expect(page.locator("#plugins")).to_contain_text("odr_jinshan_deadline")
    await page.fill("#f-manifest", "slug = ")  # malformed: refused next to the field
    await page.click("main form button[type=submit]")
    await expect(page.locator("#f-manifest-err")).to_be_visible()
    try:
        await page.fill("#f-manifest", manifest)
        await page.click("main form button[type=submit]")
        await expect(page.locator("#onboard-result")).to_contain_text(slug)
        await expect(page.locator("#tenants")).to_contain_text(slug)
        await shot(page, "operator-01-onboarded")
    finally:
        await offboard(slug)


# -- an evaluation is run, published and shown to the public -------------------------------------------
EVAL_SLUG = "uibrsh"
EVAL_ACCOUNTS = (("uibr-admin", Role.PROVINCE_ADMIN, "310000"), ("uibr-js-officer", Role.BUREAU_OFFICER, "310116"))


async def test_an_evaluation_is_run_published_and_shown_on_the_public_page(ui_server, new_page, demo):
    base = ui_server.base
    async with seeded_copy(demo, "shanghai", EVAL_SLUG, EVAL_ACCOUNTS) as history:
        units = {u.key: u for u in history.units}
        admin = await new_page()
        problems: list[str] = []
        admin.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
        admin.on("pageerror", lambda exc: problems.append(str(exc)))
        await login(admin, base, "uibr-admin")
        await admin.goto(base + "/ui/evaluation")
        await expect(admin.locator("#period-form")).to_be_visible()

        # a period that does not start on the first day of its kind is refused next to the field
        first = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().replace(day=1)
        last_month = (first - dt.timedelta(days=1)).replace(day=1)
        await admin.select_option("#f-kind", "quarterly")
        await admin.fill("#f-starts_on", last_month.replace(day=2).isoformat())
        await admin.click("#period-form button[type=submit]")
        await expect(admin.locator("#f-starts_on-err")).to_be_visible()
        await shot(admin, "evaluation-01-period-error")
        await admin.select_option("#f-kind", "monthly")
        await admin.fill("#f-starts_on", last_month.isoformat())
        await admin.click("#period-form button[type=submit]")
        await admin.wait_for_url("**/ui/evaluation/periods/*")
        await expect(admin.locator("p.flash")).to_be_visible()

        # run: a bad setting is refused in place (htmx), then the run goes with a progress indicator
        form = admin.locator("#run-form")
        await form.evaluate("f => { f.noValidate = true; }")
        await admin.fill("#f-exit_threshold", "150")
        await form.locator("button[type=submit]").click()
        await expect(admin.locator("#f-exit_threshold-err")).to_be_visible()
        await shot(admin, "evaluation-02-settings-error")
        await admin.fill("#f-exit_threshold", "60")
        await admin.fill("#f-candidate_min_score", "0")
        await admin.locator("#run-form button[type=submit]").click()
        await admin.wait_for_url("**/ui/evaluation/runs/*", timeout=30_000)
        for cls in ("A", "B", "C", ""):  # Jinshan's classes, and Pudong's unit unclassified
            await expect(admin.locator(f"#class-summary tr[data-class='{cls}']")).to_have_count(1)
        await expect(admin.locator("#results-table tr[data-candidate=true]").first).to_be_visible()
        await shot(admin, "evaluation-03-run")
        run_id = await admin.locator("#run-title").get_attribute("data-evaluation")

        await admin.click("#reproduce-form button[type=submit]")
        await expect(admin.locator("#reproduce-result [data-identical=true]")).to_be_visible(timeout=20_000)
        async with admin.expect_download() as download:
            await admin.click("#export-results-xlsx")
        saved = await (await download.value).path()
        rows = read_xlsx(open(saved, "rb").read())
        assert units["js-a"].name in [row[2] for row in rows[1:]]
        await shot(admin, "evaluation-04-reproduced")

        await admin.click("#publish-form button[type=submit]")
        await expect(admin.locator("#published-badge")).to_be_visible()
        await shot(admin, "evaluation-05-published")

        # the statistics dashboard draws its charts and exports a report
        await admin.goto(base + "/ui/statistics?node=310116")
        await expect(admin.locator("body[data-charts=drawn]")).to_have_count(1)
        await expect(admin.locator("#chart-classes canvas")).to_have_count(1)
        await expect(admin.locator("#table-class-table tbody tr")).to_have_count(3)
        async with admin.expect_download() as download:
            await admin.click("#export-class-table-csv")
        content = open(await (await download.value).path(), "rb").read()
        assert content.startswith("\ufeff".encode()) and "企业分类".encode() in content
        await shot(admin, "statistics-01-dashboard")
        refused = [p for p in problems if "status of 400" not in p]  # the two refused forms above answered 400
        assert refused == [], refused  # no script error, no Content-Security-Policy refusal

        # the public page shows the published run, and nothing personal
        public = await new_page()
        await public.goto(base + f"/ui/public/{EVAL_SLUG}/results")
        await expect(public.locator("#results-about")).to_have_attribute("data-evaluation", run_id)
        await expect(public.locator("#public-results")).to_contain_text(units["js-a"].name)
        await shot(public, "public-02-results")
        async with tenant_transaction(EVAL_SLUG) as conn:
            people = await conn.fetch("SELECT DISTINCT consumer_name AS name, consumer_phone AS phone FROM complaints")
            liaisons = await conn.fetch("SELECT name, phone FROM liaisons")
        known = [p["name"] for p in people] + [p["phone"] for p in people] + [x["name"] for x in liaisons] + [x["phone"] for x in liaisons]
        assert len(people) > 50
        for url in (f"/ui/public/{EVAL_SLUG}/results", f"/ui/public/{EVAL_SLUG}/results?class=A&lang=en"):
            await public.goto(base + url)
            assert personal_data(await public.content(), known) == [], url
        # a Jinshan officer raises an Art. 22 ground from a spot check and dismisses it with a note
        officer = await new_page()
        await login(officer, base, "uibr-js-officer")
        await officer.goto(base + "/ui/evaluation/proposals")
        await officer.click("a[href='/ui/evaluation/proposals/new']")
        await officer.select_option("#f-enterprise_id", units["js-b"].enterprise_id)
        await officer.select_option("#f-ground", "untrue_feedback")
        await officer.check("input[name=source][value=spot_check]")
        await officer.fill("#f-detail", "抽查发现反馈与消费者陈述不一致")
        await officer.click("#proposal-form button[type=submit]")
        card = officer.locator(f"li.proposal[data-unit='{units['js-b'].enterprise_id}'][data-status=proposed]")
        await expect(card).to_be_visible()
        await shot(officer, "evaluation-06-proposal-raised")
        await card.locator("input[name=decision][value=dismiss]").check()
        await card.locator("textarea[name=note]").fill("复核后反馈属实，不予撤销")
        await card.locator("button[type=submit]").click()
        await officer.wait_for_load_state("load")
        await expect(officer.locator(f"li.proposal[data-unit='{units['js-b'].enterprise_id}'][data-status=dismissed]")).to_be_visible()
        await shot(officer, "evaluation-07-proposal-dismissed")

        await public.goto(base + f"/ui/public/{EVAL_SLUG}/results")  # English stays (cookie)
        await public.fill("#q", units["js-b"].name[:5])
        await public.click("main form button[type=submit]")
        await expect(public.locator("#public-results tbody tr")).to_have_count(1)
        await shot(public, "public-03-results-search-en")
