"""The bureau's "recommend an enterprise" form (区县局推荐, Art. 7) without a browser (in-process HTTP):
reachable from the applications list for bureau officers and province admins only, the public
application's fields and documents, the jurisdiction select limited to the district bureaus the
principal covers, lodged through the API's own handler (route ``recommended``, recommended by the
officer's node), refusals named next to their field with nothing written."""

from __future__ import annotations

import re

import pytest
import pytest_asyncio

from admin_ui import i18n
from odr.app import create_app
from core.db.engine import tenant_transaction
from tests.test_enterprises import JPEG, PDF, application, credit_code, rows_for
from tests.console_helpers import TOKEN, signed_in

FORM = "/ui/bureau/applications/recommend"
LODGED = re.compile(r"^/ui/bureau/applications/([0-9a-f-]{36})\?done=recommend.done$")
NOTHING = {"enterprises": 0, "applications": 0, "documents": 0, "liaisons": 0}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(demo):
    return create_app(demo, manage_lifecycle=False)


async def form_of(c) -> tuple[str, str]:
    """The form page and its CSRF token."""
    r = await c.get(FORM)
    assert r.status_code == 200, r.text[-500:]
    return r.text, TOKEN.search(r.text).group(1)


async def lodge(c, code: str, **over):
    """Submit the form with a complete application for ``code`` (``over`` as in test_enterprises.application)."""
    _, token = await form_of(c)
    data, files = application(code, **over)
    return await c.post(FORM, data={"_csrf_token": token, **data}, files=files)


async def test_an_officer_recommends_an_application_and_finds_it_in_the_list(app):
    officer = await signed_in(app, "js-officer")  # Jinshan district bureau, 310116
    listed = await officer.get("/ui/bureau/applications")
    assert f'href="{FORM}"' in listed.text and i18n.t("recommend.link") in listed.text
    text, _ = await form_of(officer)
    assert '<option value="310116" selected>' in text  # their own district, preselected
    assert '<option value="310115"' not in text and '<option value="310116-01"' not in text  # Pudong; an office
    assert i18n.t("recommend.node_hint") in text and 'action="/ui/bureau/applications/recommend"' in text
    for kind in ("application_letter", "commitment", "business_licence", "consumer_protection_statement"):
        assert f'type="file" name="{kind}"' in text
    assert 'name="fixed_place"' in text and 'name="staff_username"' in text and 'enctype="multipart/form-data"' in text

    code = credit_code()
    r = await lodge(officer, code)
    assert r.status_code == 303, r.text[-800:]
    match = LODGED.match(r.headers["location"])
    assert match, r.headers["location"]
    application_id = match.group(1)
    assert await rows_for(code) == {"enterprises": 1, "applications": 1, "documents": 4, "liaisons": 2}
    async with tenant_transaction("shanghai") as conn:
        row = await conn.fetchrow("SELECT route, recommended_by, submitted_by FROM enterprise_applications WHERE id = $1::uuid",
                                  application_id)
    assert dict(row) == {"route": "recommended", "recommended_by": "310116", "submitted_by": "js-officer"}

    shown = await officer.get(r.headers["location"])
    assert shown.status_code == 200 and i18n.t("recommend.done") in shown.text
    assert 'data-route="recommended"' in shown.text and i18n.t("apps.route.recommended") in shown.text
    assert 'id="recommended-by" data-node="310116"' in shown.text and "金山区" in shown.text
    assert shown.text.count('href="/ui/bureau/applications/' + application_id + '/documents/') == 4
    listed = await officer.get("/ui/bureau/applications?status=submitted")
    line = next(x for x in listed.text.split("<tr") if f"/ui/bureau/applications/{application_id}" in x)
    assert code in line and i18n.t("apps.route.recommended") in line
    english = await officer.get(f"{FORM}?lang=en")
    assert f"<h1>{i18n.t('recommend.title', 'en')}</h1>" in english.text


async def test_a_province_admin_recommends_to_any_district_of_the_province(app):
    admin = await signed_in(app, "js-province-admin")  # Jiangsu: two cities, three districts
    text, _ = await form_of(admin)
    for code in ("320205", "320211", "320102"):
        assert f'<option value="{code}"' in text
    assert '<option value="320200"' not in text and '<option value="320205-01"' not in text  # a city, an office
    code = credit_code()
    r = await lodge(admin, code, node_code="320211")
    assert r.status_code == 303, r.text[-800:]
    async with tenant_transaction("jiangsu") as conn:
        row = await conn.fetchrow("SELECT a.route, a.recommended_by, e.node_code FROM enterprise_applications a JOIN enterprises e"
                                  " ON e.id = a.enterprise_id WHERE e.credit_code = $1", code)
    assert dict(row) == {"route": "recommended", "recommended_by": "320000", "node_code": "320211"}
    shown = await admin.get(r.headers["location"])
    assert 'data-route="recommended"' in shown.text and 'data-node="320000"' in shown.text
    city = await signed_in(app, "wx-officer")  # Wuxi city bureau: its two districts, not Nanjing's
    text, _ = await form_of(city)
    assert '<option value="320205"' in text and '<option value="320211"' in text and '<option value="320102"' not in text


async def test_a_node_outside_the_jurisdiction_is_refused_next_to_node_code(app):
    officer = await signed_in(app, "js-officer")
    for node, word in (("310115", "jurisdiction"), ("310116-01", "district"), ("320205", "jurisdiction")):
        code = credit_code()
        r = await lodge(officer, code, node_code=node)
        assert r.status_code == 400, (node, r.text[-800:])
        assert 'id="f-node_code-err"' in r.text and word in r.text, node
        assert f'value="{code}"' in r.text  # what was typed is kept for the retry
        assert await rows_for(code) == NOTHING


@pytest.mark.parametrize("over, status, field", [
    ({"consumer_protection_statement": None}, 400, "consumer_protection_statement"),
    ({"business_licence": ("big.pdf", PDF + b"0" * (5 * 1024 * 1024), "application/pdf")}, 413, "business_licence"),
    ({"commitment": ("commitment.pdf", b"MZ\x90\x00 not a pdf at all", "application/pdf")}, 400, "commitment"),
    ({"application_letter": ("letter.exe", b"MZ\x90\x00" + JPEG, "application/octet-stream")}, 400, "application_letter"),
    ({"staff_phone": "call me maybe"}, 400, "staff_phone"),
    ({"fixed_place": None}, 400, "fixed_place"),
])
async def test_a_bad_document_or_field_is_refused_next_to_it_and_nothing_is_written(app, over, status, field):
    officer = await signed_in(app, "js-officer")
    code = credit_code()
    r = await lodge(officer, code, **over)
    assert r.status_code == status, r.text[-800:]
    assert f'id="f-{field}-err"' in r.text and 'aria-invalid="true"' in r.text
    assert f'value="{code}"' in r.text
    assert await rows_for(code) == NOTHING


async def test_a_taken_credit_code_is_a_conflict_on_its_field(app):
    officer = await signed_in(app, "js-officer")
    code = credit_code()
    assert (await lodge(officer, code)).status_code == 303
    r = await lodge(officer, code, person_in_charge_username=f"pic2-{code.lower()}", staff_username=f"staff2-{code.lower()}")
    assert r.status_code == 409 and 'id="f-credit_code-err"' in r.text
    assert (await rows_for(code))["applications"] == 1


@pytest.mark.parametrize("user", ["pd-office-head", "js-office-head", "sh-consumer"])
async def test_office_heads_and_consumers_may_not_recommend(app, user):
    c = await signed_in(app, user)
    assert (await c.get(FORM)).status_code == 403
    token = TOKEN.search((await c.get("/ui/notifications")).text).group(1)
    code = credit_code()
    data, files = application(code)
    r = await c.post(FORM, data={"_csrf_token": token, **data}, files=files)
    assert r.status_code == 403 and await rows_for(code) == NOTHING
