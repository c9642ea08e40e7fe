"""The public ODR unit directory (Art. 23) over the seeded demo history of a throw-away Jiangsu copy:
search by name, credit code, district and class; pagination; and a scan of every public GET answer for
personal data (phone numbers, ID numbers, the seeded consumers' and liaisons' names)."""

from __future__ import annotations

import re

import pytest_asyncio

from core.db.engine import tenant_transaction
from odr.demo.units import credit_code
from tests.report_helpers import seeded_copy

SLUG = "pubjs"
URL = f"/public/{SLUG}/odr-units"
PHONE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


@pytest_asyncio.fixture(scope="module")
async def seeded(demo):
    async with seeded_copy(demo, "jiangsu", SLUG, ()) as summary:
        async with tenant_transaction(SLUG) as conn:
            # a unit with a personal-looking address and a revoked one: neither detail may leak
            await conn.execute("UPDATE enterprises SET address = '无锡市锡山区某路1号 张三 13812345678'")
        yield {u.key: u for u in summary.units}


async def codes(client, **params) -> list[str]:
    r = await client.get(URL, params=params)
    assert r.status_code == 200, r.text
    return [u["credit_code"] for u in r.json()]


async def test_directory_search_by_name_code_district_and_class(client, seeded):
    mall, car = seeded["xs-mall"], seeded["xs-car"]
    mall_code, car_code, m1_code = (credit_code(SLUG, k) for k in ("xs-mall", "xs-car", "xs-m1"))
    r = await client.get(URL)
    assert r.status_code == 200 and r.headers["x-total-count"] == "2"
    units = r.json()
    assert [u["name"] for u in units] == sorted(u["name"] for u in units)
    entry = next(u for u in units if u["credit_code"] == mall_code)
    assert entry["name"] == mall.name and entry["unit_type"] == "host_unit" and entry["district"] == "东亭市场监督管理所"
    assert sorted(m["credit_code"] for m in entry["members"]) == sorted(credit_code(SLUG, k) for k in ("xs-m1", "xs-m2"))
    assert entry["approved_on"] and len(entry["approved_on"]) == 10

    assert await codes(client, name="八佰伴商贸") == [mall_code]
    assert await codes(client, name="女装专柜") == [mall_code]  # a member merchant finds its host
    assert await codes(client, name="汽车") == [car_code]
    assert await codes(client, name="不存在的企业") == []
    assert await codes(client, credit_code=car_code) == [car_code]
    assert await codes(client, credit_code=car_code.lower()) == [car_code]
    found = await codes(client, credit_code=car_code[:6])  # a prefix
    assert car_code in found and all(c.startswith(car_code[:6]) or c == mall_code for c in found)
    assert await codes(client, credit_code=m1_code) == [mall_code]
    assert await codes(client, node="320205-01") == [mall_code]  # the car dealer sits at the district node
    assert set(await codes(client, node="320205")) == {mall_code, car_code}
    assert await codes(client, node="320211") == []
    assert await codes(client, node="320100") == []
    cls = car.enterprise_class
    if cls is not None:
        assert car_code in await codes(client, **{"class": cls})
    assert await codes(client, **{"class": "no-such-class"}) == []
    assert await codes(client, name="八佰伴", node="320211") == []  # filters combine
    assert await codes(client, q="%") == []

    # pagination: ordered by name, X-Total-Count for the whole result
    first = await client.get(URL, params={"limit": 1})
    second = await client.get(URL, params={"limit": 1, "offset": 1})
    third = await client.get(URL, params={"limit": 1, "offset": 2})
    assert first.headers["x-total-count"] == second.headers["x-total-count"] == third.headers["x-total-count"] == "2"
    assert [u["name"] for u in first.json() + second.json()] == [u["name"] for u in units] and third.json() == []


async def test_directory_bad_input(client, seeded):
    for params, field in (({"credit_code": "91-32"}, "credit_code"), ({"credit_code": "9" * 19}, "credit_code"),
                          ({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"offset": "-1"}, "offset"),
                          ({"name": "x" * 101}, "name")):
        r = await client.get(URL, params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["field"] == field
    assert (await client.get(URL, params={"node": "999999"})).status_code == 404
    assert (await client.get("/public/no-such-tenant/odr-units")).status_code == 404


async def test_jurisdictions_are_public(client, seeded):
    r = await client.get(f"/public/{SLUG}/jurisdictions")
    assert r.status_code == 200
    nodes = r.json()
    assert nodes[0] == {"code": "320000", "parent_code": None, "level": "province", "name": "江苏省市场监督管理局",
                        "name_en": "Jiangsu Administration for Market Regulation"}
    assert {"320205", "320205-01", "320211"} <= {n["code"] for n in nodes}


async def test_no_public_answer_carries_personal_data(client, seeded):
    """Every public GET of the tenant without further path parameters (the directory with its filters,
    the jurisdictions, the published evaluations...), scanned for phone numbers, ID numbers and the
    seeded consumers' and liaisons' names."""
    async with tenant_transaction(SLUG) as conn:
        consumers = [r["consumer_name"] for r in await conn.fetch("SELECT DISTINCT consumer_name FROM complaints")]
        phones = [r["consumer_phone"] for r in await conn.fetch("SELECT DISTINCT consumer_phone FROM complaints")]
        liaisons = await conn.fetch("SELECT name, phone FROM liaisons")
    assert consumers and all(n.startswith("测试用户") for n in consumers) and liaisons
    names = [*consumers, *(r["name"] for r in liaisons), "张三", "测试用户", "测试联络员"]
    secrets = [*phones, *(r["phone"] for r in liaisons), "13812345678", "某路1号"]

    paths = sorted({route.path for route in client._transport.app.routes
                    if route.path.startswith("/public/{tenant") and "GET" in route.methods
                    and route.path.count("{") == 1})
    assert "/public/{tenant:str}/odr-units" in paths and "/public/{tenant:str}/jurisdictions" in paths
    urls = [p.replace("{tenant:str}", SLUG) for p in paths]
    urls += [f"{URL}?name=八佰伴", f"{URL}?node=320205", f"{URL}?q=91", f"{URL}?limit=1&offset=1"]
    scanned = 0
    for url in urls:
        r = await client.get(url)
        if r.status_code >= 400 and not url.startswith(URL):
            continue  # e.g. a public page that needs a query parameter: nothing to scan
        assert r.status_code == 200, (url, r.text)
        text = r.text
        assert not PHONE.search(text), (url, PHONE.search(text))
        assert not ID_NUMBER.search(text), (url, ID_NUMBER.search(text))
        for secret in [*names, *secrets]:
            assert secret not in text, (url, secret)
        for header, value in r.headers.items():
            assert not PHONE.search(value) and not any(n in value for n in names), (url, header)
        scanned += 1
    assert scanned >= 6
