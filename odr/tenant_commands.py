"""``odr tenant create MANIFEST [--demo-accounts]``, ``odr tenant list`` and ``odr account
create-operator USERNAME``.

Contract: ``tenant create`` onboards a province from a manifest (a path or a name in
``tenants/manifests``; idempotent) and prints the result, 2 for a manifest that does not load;
``tenant list`` prints the registry; ``account create-operator`` creates a platform operator with the
password of ``ODR_NEW_PASSWORD`` (asked when unset).
"""

from __future__ import annotations

import getpass
import os
import sys

import msgspec

from core.runtime import Platform
from odr.running import print_json, run_with_platform


def create_tenant(manifest_name: str, *, demo_accounts: bool, cluster: str = "primary") -> int:
    from tenants.manifest import load_manifest
    from tenants.onboarding import onboard

    try:
        manifest = load_manifest(manifest_name)
    except (OSError, ValueError, msgspec.DecodeError) as exc:
        print(f"manifest: {exc}", file=sys.stderr)
        return 2

    async def go(platform: Platform) -> int:
        try:
            print_json(await onboard(manifest, host=platform.host, actor="cli", demo=demo_accounts, cluster=cluster))
        except ValueError as exc:  # OnboardingError: the message names the field
            print(str(exc), file=sys.stderr)
            return 2
        return 0

    return run_with_platform(go)


def list_tenants() -> int:
    async def go(platform: Platform) -> int:
        from core.db.engine import platform_transaction

        async with platform_transaction() as conn:
            rows = await conn.fetch("SELECT slug, name, status, schema_version, migration_error, cluster FROM odr.tenants ORDER BY slug")
        print_json([dict(r) for r in rows])
        return 0

    return run_with_platform(go)


def create_operator(username: str) -> int:
    password = os.environ.get("ODR_NEW_PASSWORD") or getpass.getpass("password: ")

    async def go(platform: Platform) -> int:
        from core.auth.accounts import create_account
        from core.auth.principal import Role
        from core.db.engine import platform_transaction

        async with platform_transaction() as conn:
            await create_account(conn, username=username, password=password, role=Role.OPERATOR)
        return 0

    return run_with_platform(go)
