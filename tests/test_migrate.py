"""``odr migrate``: versions recorded per tenant; a failing tenant is reported, the others go on."""

from __future__ import annotations

from core.db.admin import owner_transaction
from core.db.engine import platform_transaction
from core.db.migrations import discover, latest
from tenants.migrate import migrate_all
from tenants.onboarding import TENANT_MIGRATIONS, offboard, onboard
from tests.helpers import small_manifest


async def test_migrate_reports_a_failing_tenant_and_migrates_the_rest(platform):
    slugs = [f"mig{i}" for i in range(5)]
    for slug in slugs:
        await onboard(small_manifest(slug), host=platform.host)
    newest = latest(discover(TENANT_MIGRATIONS))

    report = await migrate_all(concurrency=3)
    assert {t.slug for t in report.tenants} >= set(slugs)
    assert not report.failed, report.failed

    # Break one tenant: forget that its first migration ran, so re-running it must fail.
    async with owner_transaction("mig2") as conn:
        await conn.execute("DELETE FROM _migrations WHERE id = '0001'")
    report = await migrate_all(concurrency=3)
    failed = {t.slug: t for t in report.failed}
    assert set(failed) == {"mig2"}
    assert "already exists" in failed["mig2"].error
    async with platform_transaction() as conn:
        rows = {r["slug"]: r for r in await conn.fetch("SELECT slug, schema_version, migration_error FROM odr.tenants")}
    assert "already exists" in rows["mig2"]["migration_error"]
    assert all(rows[s]["schema_version"] == newest and rows[s]["migration_error"] is None for s in slugs if s != "mig2")

    # Repair it; the next run clears the recorded error.
    async with owner_transaction("mig2") as conn:
        await conn.execute("INSERT INTO _migrations (id, description) VALUES ('0001', 'repaired')")
    report = await migrate_all(concurrency=3)
    assert not report.failed
    async with platform_transaction() as conn:
        assert await conn.fetchval("SELECT migration_error FROM odr.tenants WHERE slug='mig2'") is None
    for slug in slugs:
        await offboard(slug)
