"""The web console without a browser (in-process HTTP): sessions, CSRF, roles, masking, language,
errors named next to their field, and the form generation from plugin config schemas. The browser
walks are in test_ui_browser.py."""

from __future__ import annotations

import re


import pytest
import pytest_asyncio

from admin_ui import i18n, schema_forms
from admin_ui.forms import field_errors
from odr.app import create_app
from core.enterprises.common import FieldError
from odr_jinshan_policy.deadline import JinshanDeadlineConfig
from odr_plugin_api.types import config_schema
from tests.complaint_helpers import active_unit
from tests.console_helpers import TOKEN, browser, csrf, signed_in

@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(demo):
    return create_app(demo, manage_lifecycle=False)


async def test_login_sets_an_httponly_lax_cookie_and_the_api_ignores_it(app):
    c = browser(app)
    r = await c.post("/ui/login", data={"username": "js-officer", "password": "demo12315", "_csrf_token": await csrf(c)})
    assert r.status_code == 303 and r.headers["location"] == "/ui/bureau"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("odr_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
    assert (await c.get("/ui/bureau")).status_code == 200
    assert (await c.get("/api/auth/me")).status_code == 401  # the cookie is not an API credential
    r = await c.post("/ui/logout", data={"_csrf_token": await csrf(c, "/ui/bureau")})
    assert r.status_code == 303
    assert (await c.get("/ui/bureau")).status_code == 303  # signed out: back to the login form


async def test_wrong_password_and_missing_csrf(app):
    c = browser(app)
    r = await c.post("/ui/login", data={"username": "js-officer", "password": "nope", "_csrf_token": await csrf(c)})
    assert r.status_code == 401 and i18n.t("login.failed") in r.text
    r = await c.post("/ui/login", data={"username": "js-officer", "password": "demo12315"})
    assert r.status_code == 403 and i18n.t("error.csrf") in r.text
    other = browser(app)  # a token from another browser is refused too
    r = await other.post("/ui/login", data={"username": "js-officer", "password": "demo12315", "_csrf_token": await csrf(c)})
    assert r.status_code == 403


@pytest.mark.parametrize("user, pages, refused", [
    ("operator", ["/ui/operator"], ["/ui/bureau", "/ui/my"]),
    ("js-officer", ["/ui/bureau", "/ui/bureau?view=all", "/ui/bureau/applications", "/ui/bureau/units",
                    "/ui/bureau/liaison-changes", "/ui/policy", "/ui/policy/310116/replay", "/ui/evaluation",
                    "/ui/evaluation/proposals", "/ui/evaluation/proposals/new", "/ui/statistics", "/ui/notifications"],
     ["/ui/operator", "/ui/my/new", "/ui/inbox"]),
    ("js-office-head", ["/ui/bureau", "/ui/bureau/units", "/ui/policy", "/ui/evaluation", "/ui/statistics"],
     ["/ui/bureau/applications"]),
    ("sh-consumer", ["/ui/my", "/ui/my/new", "/ui/notifications"],
     ["/ui/bureau", "/ui/policy", "/ui/operator", "/ui/evaluation", "/ui/evaluation/proposals", "/ui/statistics",
      "/ui/statistics/export/class-table?format=csv"]),
])
async def test_pages_of_each_role(app, user, pages, refused):
    c = await signed_in(app, user)
    for path in pages:
        r = await c.get(path)
        assert r.status_code == 200, (path, r.text[-500:])
        assert r.headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in r.headers["content-security-policy"]
    for path in refused:
        assert (await c.get(path)).status_code == 403, path


async def test_public_pages_and_unknown_province(app):
    c = browser(app)
    for path in ["/ui/public", "/ui/public/shanghai/directory", "/ui/public/jiangsu/apply", "/ui/public/fujian/signup",
                 "/ui/public/shanghai/results"]:
        assert (await c.get(path)).status_code == 200, path
    assert (await c.get("/ui/public/atlantis/directory")).status_code == 404
    r = await c.get("/ui/bureau")
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next=")


async def test_language_switch_by_query_and_cookie(app):
    c = browser(app)
    r = await c.get("/ui/login?lang=en")
    assert "<h1>Log in</h1>" in r.text and 'lang="en"' in r.text
    assert (await c.get("/ui/login")).text.count("<h1>Log in</h1>") == 1  # the cookie keeps it
    assert "<h1>登录</h1>" in (await c.get("/ui/login?lang=zh")).text


async def test_masking_holds_in_the_console(app):
    unit = await active_unit("shanghai", "310116-01")
    consumer = await signed_in(app, "sh-consumer")
    page = await consumer.get("/ui/my/new")
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text).group(1)
    form = {"company_name": "掩码测试公司", "credit_code": unit["credit_code"], "subject": "掩码测试", "description": "测试",
            "consumer_name": "欧阳娜娜", "consumer_phone": "13512345678", "consumer_address": "上海市金山区某路某号",
            "route": "odr", "node_code": "", "idempotency_key": key, "_csrf_token": TOKEN.search(page.text).group(1)}
    r = await consumer.post("/ui/my/new", data=form)
    assert r.status_code == 303
    complaint = r.headers["location"].split("?")[0]
    again = await consumer.post("/ui/my/new", data=form)  # a double submission files one complaint
    assert again.headers["location"].split("?")[0] == complaint
    assert "13512345678" in (await consumer.get(complaint)).text  # the consumer sees their own data
    officer = await signed_in(app, "js-officer")  # Jinshan district: sees the case, does not handle it
    text = (await officer.get(complaint)).text
    assert "13512345678" not in text and "135****5678" in text and "欧阳娜娜" not in text
    xishan = await signed_in(app, "xs-office-head")
    assert (await xishan.get(complaint)).status_code == 404


async def test_form_errors_are_named_next_to_their_field(app):
    consumer = await signed_in(app, "sh-consumer")
    page = await consumer.get("/ui/my/new")
    r = await consumer.post("/ui/my/new", data={"_csrf_token": TOKEN.search(page.text).group(1), "company_name": "某公司",
                                                "subject": "s", "description": "d", "consumer_name": "张三",
                                                "consumer_phone": "not a phone", "route": "bureau"})
    assert r.status_code == 400
    assert 'id="f-consumer_phone-err"' in r.text and 'aria-invalid="true"' in r.text
    assert 'value="某公司"' in r.text  # what was typed is kept


def test_field_errors_map_service_errors_to_fields():
    assert field_errors(FieldError("credit_code", "already exists", 409)) == {"credit_code": "already exists"}
    assert field_errors(ValueError("node_code: required when ...")) == {"node_code": "required when ..."}
    assert field_errors(KeyError("enterprise_id: no active ODR unit")) == {"enterprise_id": "no active ODR unit"}
    import msgspec

    try:
        msgspec.convert({"close_days": 0}, JinshanDeadlineConfig)
    except msgspec.ValidationError as exc:
        assert list(field_errors(exc)) == ["close_days"]
    assert field_errors(ValueError("something odd")) == {"_form": "something odd"}


def test_forms_are_generated_from_the_config_schema():
    schema = config_schema(JinshanDeadlineConfig)
    fields = {f["name"]: f for f in schema_forms.fields(schema, {"contact_days": 2, "close_days": 7, "holiday_rollover": True})}
    assert fields["contact_days"]["widget"] == "number" and fields["contact_days"]["min"] == 1 and fields["contact_days"]["max"] == 30
    assert fields["holiday_rollover"]["widget"] == "checkbox"
    config, errors = schema_forms.parse(schema, {"cfg.contact_days": "3", "cfg.close_days": "x"})
    assert config == {"contact_days": 3, "holiday_rollover": False} and list(errors) == ["close_days"]
    from odr_jinshan_policy.classification import JinshanClassificationConfig

    schema = config_schema(JinshanClassificationConfig)
    fields = {f["name"]: f for f in schema_forms.fields(schema, None)}
    assert fields["match"]["widget"] == "select" and fields["match"]["options"] == ["all", "any"]
    assert fields["comprehensive_keywords"]["widget"] == "lines"
    config, errors = schema_forms.parse(schema, {"cfg.comprehensive_keywords": "综合\n百货\n", "cfg.match": "all"})
    assert not errors and config["comprehensive_keywords"] == ["综合", "百货"] and config["match"] == "all"


def test_every_label_has_both_languages():
    for key, pair in i18n.LABELS.items():
        assert len(pair) == 2 and all(pair), key
    assert i18n.t("state.closed", "en") == "closed" and i18n.t("state.closed") == "已办结"
    assert i18n.t("no.such.key") == "no.such.key"

