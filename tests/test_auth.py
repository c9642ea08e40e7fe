"""Principals and roles: login, tenant resolution that fails closed, subtrees, operator-only paths."""

from __future__ import annotations

import jwt

from tests.conftest import login


async def test_login_checks_the_password(client):
    r = await client.post("/api/auth/login", json={"username": "js-officer", "password": "wrong"})
    assert r.status_code == 401
    r = await client.post("/api/auth/login", json={"username": "nobody", "password": "demo12315"})
    assert r.status_code == 401
    r = await client.post("/api/auth/login", json={"username": "js-officer", "password": "demo12315"})
    assert r.status_code == 200
    assert r.json()["principal"]["node_path"] == ["310000", "310116"]


async def test_missing_or_forged_tokens_are_refused(client):
    assert (await client.get("/api/auth/me")).status_code == 401
    forged = jwt.encode({"sub": "x", "exp": 4102444800, "iat": 0, "extras": {"p": {"id": "x", "username": "evil", "role": "operator"}}}, "an-attacker-secret-that-is-long-enough-0123456789", algorithm="HS256")
    r = await client.get("/api/platform/tenants", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


async def test_a_principal_of_one_tenant_gets_nothing_of_another(client):
    headers = await login(client, "js-officer")  # Shanghai / Jinshan
    for path in ("/api/tenants/jiangsu/jurisdictions", "/api/tenants/jiangsu/policy/320205", "/api/tenants/nosuch/jurisdictions"):
        r = await client.get(path, headers=headers)
        assert r.status_code == 404, path
        assert r.json()["detail"] == "tenant not found"


async def test_bureau_roles_see_their_subtree_only(client):
    r = await client.get("/api/tenants/jiangsu/jurisdictions", headers=await login(client, "xs-office-head"))
    assert [n["code"] for n in r.json()] == ["320205-01"]
    r = await client.get("/api/tenants/jiangsu/jurisdictions", headers=await login(client, "wx-officer"))
    assert {n["code"] for n in r.json()} == {"320200", "320205", "320205-01", "320211", "320211-01"}
    r = await client.get("/api/tenants/jiangsu/policy/320211-01", headers=await login(client, "xs-office-head"))
    assert r.status_code == 404  # another Wuxi district's office


async def test_operator_only_paths(client):
    assert (await client.get("/api/platform/plugins", headers=await login(client, "sh-admin"))).status_code == 403
    r = await client.get("/api/platform/plugins", headers=await login(client, "operator"))
    assert r.status_code == 200
    names = {p["name"]: p for p in r.json()}
    assert names["odr_national_deadline"]["default"] is True and names["odr_national_deadline"]["loaded"] is True
    # the operator is no member of a tenant: no tenant data
    assert (await client.get("/api/tenants/shanghai/jurisdictions", headers=await login(client, "operator"))).status_code == 404


async def test_consumers_do_not_see_the_bureau_tree(client):
    r = await client.get("/api/tenants/shanghai/jurisdictions", headers=await login(client, "sh-consumer"))
    assert r.status_code == 403


async def test_bad_input_names_the_field(client):
    r = await client.post("/api/auth/login", json={"username": "x"})
    assert r.status_code == 400 and r.json()["field"] == "password"
    r = await client.post("/api/auth/login", json={"username": "x", "password": 3})
    assert r.status_code == 400 and r.json()["field"] == "password"
    r = await client.post("/api/auth/login", content=b'{"username": "x', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["detail"]
