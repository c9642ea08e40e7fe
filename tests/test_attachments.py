"""Attachments and downloads: RFC 6266 names (Chinese, hostile characters), nosniff and a sandboxing CSP on
every download, nosniff on every answer, and uploads refused unless the whole file is of its type
(polyglots: a PNG or PDF that continues as HTML)."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from core.db.engine import tenant_transaction
from core.files import check_upload, content_disposition
from tests.complaint_helpers import active_unit, consumer
from tests.conftest import login
from tests.sample_files import JPEG, PDF, PNG, POLYGLOTS
from tests.test_complaints import intake

URL = "/api/tenants/shanghai/complaints"


@pytest.fixture(scope="module")
async def case(client, demo):
    unit = await active_unit("shanghai", "310116")
    cons = await login(client, await consumer(client, "shanghai"), "demo12315-pw")
    cid = (await client.post(URL, json=intake(unit), headers=cons)).json()["complaint"]["id"]
    return cid, cons


async def _attachments(cid: str) -> int:
    async with tenant_transaction("shanghai") as conn:
        return await conn.fetchval("SELECT count(*) FROM complaint_attachments WHERE complaint_id = $1::uuid", cid)


@pytest.mark.parametrize("name, content, ascii_name", [
    ("发票.pdf", PDF, "__.pdf"),
    ("a'b;c<d>e f.png", PNG, "a_b_c_d_e_f.png"),
    ("收据 2024.jpg", JPEG, "___2024.jpg"),
])
async def test_a_download_names_its_file_by_rfc_6266_and_cannot_be_run_as_a_page(client, case, name, content, ascii_name):
    cid, cons = case
    posted = await client.post(f"{URL}/{cid}/messages", data={"body": "凭证"}, files={"file": (name, content, "x/y")},
                               headers=cons)
    assert posted.status_code == 201, posted.text
    file = posted.json()["attachments"][0]
    got = await client.get(f"{URL}/{cid}/attachments/{file['id']}", headers=cons)
    assert got.status_code == 200, got.text
    assert got.content == content
    disposition = got.headers["content-disposition"]
    fallback, encoded = disposition.split("; filename*=UTF-8''")
    assert fallback == f'attachment; filename="{ascii_name}"'
    assert unquote(encoded) == file["filename"] and not set(encoded) & set("'\";<> \x01")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"].startswith("sandbox")


def test_control_characters_quotes_and_separators_never_reach_the_header_or_the_stored_name():
    stored = check_upload("file", 'a\x00b\r\n"c/..\\d;e.pdf', PDF)
    assert stored.filename == "a_b___c_.._d;e.pdf"
    header = content_disposition('x"\x00\r\n;<发>.pdf')
    assert header == "attachment; filename=\"x________.pdf\"; filename*=UTF-8''x%22%00%0D%0A%3B%3C%E5%8F%91%3E.pdf"
    assert all(32 <= ord(ch) < 127 for ch in header)


@pytest.mark.parametrize("kind", sorted(POLYGLOTS))
async def test_a_file_that_is_not_wholly_of_its_type_is_refused_naming_the_field(client, case, kind):
    cid, cons = case
    name, content = POLYGLOTS[kind]
    before = await _attachments(cid)
    r = await client.post(f"{URL}/{cid}/messages", data={"body": "截图"}, files={"file": (name, content, "image/png")},
                          headers=cons)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "file" and "well-formed" in r.json()["detail"]
    assert await _attachments(cid) == before


async def test_every_answer_says_nosniff(client, demo):
    for path in ("/health", "/api/tenants/shanghai/complaints", "/ui/login", "/no/such/page", "/ui/static/app.css"):
        r = await client.get(path)
        assert r.headers.get("x-content-type-options") == "nosniff", (path, r.status_code, dict(r.headers))


async def test_the_console_download_carries_the_same_headers(client, demo, case):
    from odr.app import create_app
    from tests.console_helpers import signed_in

    cid, cons = case
    posted = await client.post(f"{URL}/{cid}/messages", data={"body": "发票"}, files={"file": ("发票.pdf", PDF, "x/y")},
                               headers=cons)
    file = posted.json()["attachments"][0]
    console = await signed_in(create_app(demo, manage_lifecycle=False), "js-officer")
    got = await console.get(f"/ui/complaints/{cid}/attachments/{file['id']}")
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-disposition"] == "attachment; filename=\"__.pdf\"; filename*=UTF-8''%E5%8F%91%E7%A5%A8.pdf"
    assert got.headers["x-content-type-options"] == "nosniff" and got.headers["content-security-policy"].startswith("sandbox")
