async def test_health_and_openapi(client):
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json()["tenants"] >= 3
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    assert "/api/auth/login" in r.json()["paths"]
