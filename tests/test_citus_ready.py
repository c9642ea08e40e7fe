"""``odr check citus-ready`` on the live test databases (both clusters): the tenant schemas as the
migrations make them reach no other schema; a deliberately broken tenant schema is caught, each kind of
cross-schema reference named."""

from __future__ import annotations

import asyncpg

from tenants.citus import check_citus_ready
from tenants.onboarding import offboard, onboard
from tests.helpers import small_manifest

BROKEN = "citusbad"


async def test_the_migrated_tenant_schemas_are_citus_ready(two_clusters):
    report = await check_citus_ready()
    assert report.findings == [] and report.ok
    assert report.schemas_checked >= 5  # the demo tenants on the primary, two on the second cluster


async def test_a_schema_reaching_other_schemas_is_caught(two_clusters, pg_url):
    await offboard(BROKEN)
    await onboard(small_manifest(BROKEN), host=two_clusters.host)
    conn = await asyncpg.connect(pg_url)  # a superuser does what no migration may
    try:
        await conn.execute("""
            CREATE TABLE t_citusbad.account_links (account uuid REFERENCES odr.accounts(id),
                                                   plugin text REFERENCES odr.plugin_packages(name));
            CREATE VIEW t_citusbad.tenant_names AS SELECT slug, name FROM odr.tenants;
            CREATE FUNCTION t_citusbad.peek() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM t_shanghai.complaints';
            CREATE SEQUENCE public.shared_numbers;
            CREATE TABLE t_citusbad.numbered (n bigint DEFAULT nextval('public.shared_numbers'));
            CREATE FUNCTION public.stamp() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
            CREATE TRIGGER stamp BEFORE INSERT ON t_citusbad.numbered FOR EACH ROW EXECUTE FUNCTION public.stamp();
        """)
        report = await check_citus_ready()
        mine = {(f.kind, f.references) for f in report.findings if f.schema == "t_citusbad"}
        assert not report.ok
        assert ("foreign key", "odr.accounts") in mine
        assert ("foreign key", "odr.plugin_packages") not in mine  # a reference table
        assert ("view", "odr.tenants") in mine
        assert ("function body", "schema t_shanghai") in mine
        assert ("column default", "public.shared_numbers") in mine
        assert ("trigger", "stamp()") in mine
        assert len(mine) == 5
        # (a sequence OWNED BY a column of another schema is refused by PostgreSQL itself; checked anyway)
        assert {f.schema for f in report.findings} == {"t_citusbad"}  # nothing else is reported
    finally:
        await conn.execute("DROP SCHEMA t_citusbad CASCADE; DROP SEQUENCE IF EXISTS public.shared_numbers;"
                           " DROP FUNCTION IF EXISTS public.stamp()")
        await conn.close()
        await offboard(BROKEN)
