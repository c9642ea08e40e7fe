"""Hostile input gets a 4xx naming the field, never a 500 (core/api/input_limits.py, one place for every
request): NUL characters in a JSON field, a query parameter, a path or a file name; JSON nested deeper
than the documented maximum; integers beyond 64 bits in a cursor, a path id or a query parameter;
over-long strings; in the API and the console, for anonymous and signed-in callers. And the bearer
authentication's exclusions match whole path prefixes only."""

from __future__ import annotations

import uuid

import pytest

from core.api.input_limits import MAX_JSON_DEPTH, MAX_QUERY_CHARS, json_too_deep
from odr.app import create_app
from tests.complaint_helpers import active_unit
from tests.conftest import login
from tests.console_helpers import TOKEN, browser

NUL = "\u0000"
DEEP = "[" * 10_000 + "]" * 10_000


def named(r, field: str, status: int = 400) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.json()["field"] == field, r.text[:300]


async def test_nul_characters_are_refused_naming_the_field_for_anonymous_callers(client, demo):
    named(await client.post("/api/auth/login", json={"username": f"sh-{NUL}consumer", "password": "x"}), "username")
    named(await client.post("/public/shanghai/consumers",
                            json={"username": f"nul-{uuid.uuid4().hex[:6]}", "password": "long-enough-pw",
                                  "display_name": f"张{NUL}三"}), "display_name")
    named(await client.get("/public/shanghai/odr-units", params={"q": f"电商{NUL}"}), "q")
    named(await client.get("/public/shanghai/odr-check", params={"name": f"x{NUL}y"}), "name")
    named(await client.get("/public/shang%00hai/odr-check", params={"name": "x"}), "tenant")


async def test_nul_characters_are_refused_for_a_signed_in_consumer_also_in_a_file_name(client, demo):
    headers = await login(client, "sh-consumer")
    unit = await active_unit("shanghai", "310116")
    complaint = {"company_name": "测试电商有限公司", "credit_code": unit["credit_code"], "subject": f"退款{NUL}纠纷",
                 "description": "网购商品未发货。", "consumer_name": "王小明", "consumer_phone": "13900001111",
                 "node_code": "310116", "route": "odr"}
    named(await client.post("/api/tenants/shanghai/complaints", headers=headers, json=complaint), "subject")
    r = await client.post("/api/tenants/shanghai/complaints", headers=headers, json={**complaint, "subject": "退款纠纷"})
    assert r.status_code == 201, r.text
    cid = r.json()["complaint"]["id"]
    for disposition in (b'filename="fa\x00piao.pdf"', b"filename*=UTF-8''fa%00piao.pdf"):  # raw, and RFC 5987
        upload = (b'--b\r\nContent-Disposition: form-data; name="body"\r\n\r\n\xe5\x8f\x91\xe7\xa5\xa8\r\n'
                  b'--b\r\nContent-Disposition: form-data; name="file"; ' + disposition +
                  b'\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 test\r\n--b--\r\n')
        r = await client.post(f"/api/tenants/shanghai/complaints/{cid}/messages", content=upload,
                              headers={**headers, "Content-Type": "multipart/form-data; boundary=b"})
        named(r, "file")
    r = await client.post(f"/api/tenants/shanghai/complaints/{cid}/messages", headers=headers, data={"body": f"a{NUL}"})
    named(r, "body")


async def test_json_nested_deeper_than_the_maximum_is_refused_before_decoding(client, demo):
    named(await client.post("/api/auth/login", content=DEEP, headers={"Content-Type": "application/json"}), "body")
    named(await client.post("/api/auth/login", content='{"username": ' + DEEP + ', "password": "x"}',
                            headers={"Content-Type": "application/json"}), "body")
    headers = await login(client, "sh-consumer")
    named(await client.post("/api/tenants/shanghai/complaints", headers={**headers, "Content-Type": "application/json"},
                            content=DEEP), "body")
    named(await client.post("/api/tenants/shanghai/complaints/x/actions/urge", headers=headers, content=DEEP), "body")
    # the maximum itself is fine, brackets inside strings do not count
    just = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert not json_too_deep(just.encode()) and json_too_deep(("[" + just + "]").encode())
    assert not json_too_deep(('{"a": "' + "[" * 100 + '"}').encode())


async def test_integers_beyond_64_bits_are_refused_naming_the_parameter(client, demo):
    headers = await login(client, "sh-admin")
    feed = "/api/tenants/shanghai/nodes/310000/events"
    assert (await client.get(feed, headers=headers, params={"after": "0"})).status_code == 200
    named(await client.get(feed, headers=headers, params={"after": "99999999999999999999-1"}), "after")
    named(await client.get(feed, headers=headers, params={"after": "1-9223372036854775808"}), "after")
    named(await client.get(feed, headers=headers, params={"limit": "99999999999999999999"}), "limit")
    named(await client.post("/api/tenants/shanghai/notifications/99999999999999999999/read", headers=headers),
          "notification_id")
    named(await client.post("/api/auth/login", json={"username": 99999999999999999999, "password": "x"}), "username")


async def test_over_long_strings_are_refused_naming_the_field(client, demo):
    named(await client.post("/api/auth/login", json={"username": "u" * 100_000, "password": "x"}), "username")
    named(await client.post("/api/auth/login", json={"username": "sh-consumer", "password": "p" * 5_000}), "password")
    named(await client.get("/public/shanghai/odr-units", params={"q": "电" * (MAX_QUERY_CHARS + 1)}), "q")


async def test_the_console_answers_hostile_input_with_a_4xx_page_naming_the_field(demo):
    app = create_app(demo, manage_lifecycle=False)
    async with browser(app) as c:
        token = TOKEN.search((await c.get("/ui/login")).text).group(1)
        r = await c.post("/ui/login", data={"username": f"sh-{NUL}consumer", "password": "x", "_csrf_token": token})
        assert r.status_code == 400 and "username" in r.text, (r.status_code, r.text[-500:])
        page = await c.get("/ui/public/shanghai/signup")
        r = await c.post("/ui/public/shanghai/signup", data={"username": f"n{uuid.uuid4().hex[:6]}", "password": "long-enough-pw",
                                                             "display_name": f"a{NUL}", "_csrf_token": TOKEN.search(page.text).group(1)})
        assert r.status_code == 400 and "display_name" in r.text, (r.status_code, r.text[-500:])
        r = await c.get("/ui/public/shanghai/directory", params={"q": f"x{NUL}"})
        assert r.status_code == 400 and "q:" in r.text, (r.status_code, r.text[-500:])


@pytest.mark.parametrize("path", [
    "/api/tenants/shanghai/complaints/public",
    "/api/tenants/shanghai/complaints/public/messages",
    "/api/tenants/shanghai/complaints/health",
    "/api/tenants/shanghai/complaints/schema",
    "/api/tenants/public/complaints/x/messages",
])
async def test_authentication_exclusions_match_whole_path_prefixes_only(client, demo, path):
    r = await client.get(path)
    assert r.status_code == 401, (path, r.status_code, r.text[:200])


async def test_the_public_paths_stay_public(client, demo):
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/schema/openapi.json")).status_code == 200
    assert (await client.get("/public/shanghai/odr-check", params={"name": "无此公司"})).json() == {"odr_unit": False}
    r = await client.post("/api/auth/login", json={"username": "sh-consumer", "password": "wrong"})
    assert r.status_code == 401 and "username or password" in r.text
