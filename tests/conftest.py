"""Shared fixtures: one real PostgreSQL and one real Valkey per test session, the platform, demo data."""

from __future__ import annotations

import tempfile
from typing import AsyncIterator

import pytest
import pytest_asyncio
import httpx

from odr.app import create_app
from core.runtime import Platform
from core.settings import Settings
from tests.servers import start_embedded_postgres, start_postgres, start_valkey

pytest_plugins = ["tests.pii_scan", "tests.scratch_dir", "tests.run_summary"]

DEMO_PASSWORD = "demo12315"


@pytest.fixture(scope="session")
def pg_url() -> str:
    url, server = start_postgres()
    yield url
    if server is not None:
        server.cleanup()


@pytest.fixture(scope="session")
def second_pg() -> object:
    """A second real PostgreSQL server (embedded, its own data directory): the cluster ``second``."""
    url, server = start_embedded_postgres()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def second_pg_url(second_pg) -> str:
    return second_pg.get_uri()


@pytest.fixture(scope="session")
def valkey_url() -> str:
    url, proc = start_valkey()
    yield url
    proc.terminate()
    proc.wait(5)


@pytest.fixture(scope="session")
def settings(pg_url: str, valkey_url: str) -> Settings:
    return Settings(
        database_url=pg_url,
        valkey_url=valkey_url,
        data_dir=tempfile.mkdtemp(prefix="odr-test-data-"),
        secret_key="test-secret-key-for-jwt-signing-0123456789",
        pool_max=12,
        login_rate_per_minute=1000,
        signup_rate_per_minute=1000,
        outbound_allow_hosts="127.0.0.1",  # the delivery tests' local receivers (tests/receivers.py)
    )


@pytest_asyncio.fixture(scope="session")
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    p = Platform(settings)
    await p.start()
    yield p
    await p.stop()


@pytest_asyncio.fixture(scope="session")
async def demo(platform: Platform) -> Platform:
    """The three demo tenants with their demo accounts, plus an operator account."""
    from core.auth.accounts import create_account
    from core.auth.principal import Role
    from core.db.engine import platform_transaction
    from tenants.manifest import demo_manifests
    from tenants.onboarding import onboard

    for manifest in demo_manifests():
        await onboard(manifest, host=platform.host, actor="tests", demo=True)
    async with platform_transaction() as conn:
        await create_account(conn, username="operator", password=DEMO_PASSWORD, role=Role.OPERATOR, exist_ok=True)
    return platform


SECOND_CLUSTER_TENANTS = {"jiangsu": "jsc2", "fujian": "fjc2"}
"""Demo manifests onboarded again on the cluster ``second`` (slug, demo account names prefixed ``c2-``)."""


@pytest_asyncio.fixture(scope="session")
async def two_clusters(demo: Platform, second_pg_url: str) -> AsyncIterator[Platform]:
    """Two clusters: the demo tenants on the primary, copies of Jiangsu and Fujian (with their demo
    accounts, prefixed ``c2-``) on the cluster ``second``."""
    import msgspec

    from tenants.clusters import add_cluster
    from tenants.manifest import load_manifest
    from tenants.onboarding import onboard

    await add_cluster("second", second_pg_url, app_role=demo.settings.app_role, admin_role=demo.settings.admin_role)
    for source, slug in SECOND_CLUSTER_TENANTS.items():
        m = load_manifest(source)
        accounts = [msgspec.structs.replace(a, username=f"c2-{a.username}") for a in m.demo_accounts]
        manifest = msgspec.structs.replace(m, slug=slug, demo_accounts=accounts)
        result = await onboard(manifest, host=demo.host, actor="tests", demo=True, cluster="second")
        assert result.cluster == "second"
    yield demo
    from core.db import admin, clusters

    await admin.close()  # the second server stops next: close its pools first
    await clusters.close()


@pytest_asyncio.fixture(scope="session")
async def client(demo: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client on the app, in the test's own event loop (the pool lives there too)."""
    app = create_app(demo, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://odr.test") as c:
        yield c


_tokens: dict[str, str] = {}


async def login(client: httpx.AsyncClient, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    """Authorization header for ``username`` (tokens cached per session)."""
    if username not in _tokens:
        r = await client.post("/api/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        _tokens[username] = r.json()["token"]
    return {"Authorization": f"Bearer {_tokens[username]}"}


@pytest_asyncio.fixture
async def jinshan_on_national(demo: Platform):
    """Jinshan (310116) runs its own deadline plugin in the demo manifest. Tests that install another
    deadline policy there first switch Jinshan's back off (a bureau must, too: one decider per node),
    and switch it on again afterwards."""
    from core.db.engine import platform_transaction
    from core.pluginhost.activations import save_activation

    async def set_active(active: bool) -> None:
        paths = {c: n.path for c, n in (await demo.nodes("shanghai")).items()}
        async with platform_transaction() as conn:
            await save_activation(conn, demo.host, tenant="shanghai", node_code="310116", plugin="odr_jinshan_deadline",
                                  active=active, config=None if not active else {"contact_days": 2, "close_days": 7,
                                                                                  "holiday_rollover": True},
                                  actor="tests", node_paths=paths)
        demo.forget_activations("shanghai")

    await set_active(False)
    yield
    await set_active(True)
