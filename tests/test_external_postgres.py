"""An external PostgreSQL prepared as ``deploy/examples/postgres-setup.sql`` says (issue 17): the file
itself is run (with its role and database names changed) against the test server, then a platform
process logs in with the two logins it makes — the runtime one pooled, the administration one for
onboarding — and a runtime login that could make roles is refused at start."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from core.db.logins import with_user

SETUP = Path(__file__).resolve().parent.parent / "deploy" / "examples" / "postgres-setup.sql"
NAMES = {"odr": "odrx", "odr_admin": "odrx_admin", "odr_backup": "odrx_backup"}


def setup_statements() -> tuple[list[str], list[str]]:
    """The file's statements before and after its ``\\connect``, names and passwords filled in."""
    text = SETUP.read_text()
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    text = re.sub(r":'(\w+)_password'", "'secret'", text)
    text = re.sub(r"\b(odr_admin|odr_backup|odr)\b", lambda m: NAMES[m.group(1)], text)
    before, _, after = text.partition("\\connect odrx")
    split = lambda part: [s.strip() for s in part.split(";") if s.strip()]  # noqa: E731
    return split(before), split(after)


def database_url(url: str, user: str, database: str) -> str:
    parts = urlsplit(with_user(url, user))
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def run_platform(runtime_url: str, admin_url: str | None, data_dir: str, body: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        f"""
        import asyncio, json
        from core.runtime import Platform
        from core.settings import Settings

        async def main():
            p = Platform(Settings(database_url={runtime_url!r}, admin_database_url={admin_url!r}, data_dir={data_dir!r}))
            await p.start()
            try:
        {textwrap.indent(textwrap.dedent(body), ' ' * 16)}
            finally:
                await p.stop()

        asyncio.run(main())
        """
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


ONBOARD_AND_USE = """
from core.db.admin import owner_transaction
from core.db.engine import tenant_transaction
from tenants.onboarding import onboard
from tests.helpers import small_manifest
result = await onboard(small_manifest("extprov"), host=p.host)
async with tenant_transaction("extprov") as conn:
    await conn.execute("INSERT INTO notifications (recipient, kind) VALUES ('x', 'probe')")
    seen = await conn.fetchval("SELECT count(*) FROM notifications")
    user = await conn.fetchval("SELECT session_user::text || '/' || current_user::text")
    try:
        await conn.execute("TRUNCATE complaint_events")
        truncated = True
    except Exception:
        truncated = False
async with owner_transaction("extprov") as conn:
    owner = await conn.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 't_extprov'")
print(json.dumps({"created": result.created, "seen": seen, "user": user, "owner": owner, "truncated": truncated}))
"""


async def test_a_server_prepared_by_the_setup_file_runs_the_platform_with_two_logins(pg_url, tmp_path):
    before, after = setup_statements()
    su = await asyncpg.connect(pg_url)
    try:
        for statement in before:
            await su.execute(statement)
        db = await asyncpg.connect(database_url(pg_url, "postgres", "odrx"))
        try:
            for statement in after:
                await db.execute(statement)
        finally:
            await db.close()
        runtime_url = database_url(pg_url, "odrx", "odrx")
        admin_url = database_url(pg_url, "odrx_admin", "odrx")

        done = run_platform(runtime_url, admin_url, str(tmp_path), ONBOARD_AND_USE)
        assert done.returncode == 0, done.stderr[-3000:]
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        assert figures == {"created": True, "seen": 1, "user": "odrx/t_extprov", "owner": "owner_extprov",
                           "truncated": False}

        # Without the administration login, onboarding says which setting is missing.
        done = run_platform(runtime_url, None, str(tmp_path), """
from tenants.onboarding import onboard
from tests.helpers import small_manifest
await onboard(small_manifest("extprov2"), host=p.host)
""")
        assert done.returncode != 0 and "ODR_ADMIN_DATABASE_URL" in done.stderr

        # A runtime login that can make roles (the earlier one-login setup) is refused at start.
        done = run_platform(admin_url, admin_url, str(tmp_path), "pass")
        assert done.returncode != 0
        assert "the runtime login odrx_admin has CREATEROLE" in done.stderr
    finally:
        await su.execute("DROP DATABASE IF EXISTS odrx WITH (FORCE)")
        for role in ("t_extprov", "owner_extprov", "odrx_backup", "odrx_admin", "odrx"):
            await su.execute(f"DROP ROLE IF EXISTS {role}")
        await su.close()
