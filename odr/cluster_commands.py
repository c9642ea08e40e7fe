"""``odr cluster add NAME URL [--admin-url URL] [--replica URL ...]``, ``odr cluster list``,
``odr tenant move T --to CLUSTER [--abort]`` and ``odr tenant drop-source T``.

Contract: ``cluster add`` registers a PostgreSQL cluster tenants may be placed on
(:func:`tenants.clusters.add_cluster`: its logins prepared and checked first; 2 and a message naming the
field for bad input); ``cluster list`` prints every cluster with its tenants, URLs without passwords.
``tenant move`` runs :func:`tenants.move.move_tenant` (or ``abort_move``), telling every process through
Valkey to forget the tenant's placement, prints the report and the write pause; 2 for bad input.
"""

from __future__ import annotations

import sys

from core.runtime import Platform
from odr.running import print_json, run_with_platform


def add_cluster(name: str, url: str, *, admin_url: str | None, replicas: list[str]) -> int:
    from tenants.clusters import ClusterError, add_cluster as add

    async def go(platform: Platform) -> int:
        try:
            added = await add(name, url, admin_url=admin_url, replica_urls=replicas,
                              app_role=platform.settings.app_role, admin_role=platform.settings.admin_role)
        except ClusterError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        print_json({"cluster": name, "added": added})
        return 0

    return run_with_platform(go)


def list_clusters() -> int:
    from tenants.clusters import list_clusters as rows

    async def go(platform: Platform) -> int:
        print_json(await rows())
        return 0

    return run_with_platform(go)


def move_tenant(slug: str, target: str, *, abort: bool) -> int:
    from core.pluginhost.invalidation import PLACEMENT_CHANNEL, PolicyInvalidation
    from tenants.move import MoveError, abort_move, move_tenant as move

    async def go(platform: Platform) -> int:
        invalidation = PolicyInvalidation(platform, platform.settings.valkey_url)

        async def publish(tenant: str) -> None:
            await invalidation.publish(tenant, PLACEMENT_CHANNEL)

        try:
            report = await (abort_move(slug, publish=publish) if abort else move(slug, target, publish=publish))
        except MoveError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        finally:
            await invalidation.stop()
        print_json(report)
        if report.state == "done":
            print(f"moved {slug} from {report.source} to {report.target}: {report.rows} rows in {len(report.tables)} tables "
                  f"verified (counts and checksums), write pause {report.write_pause_ms:.0f} ms")
        return 0

    return run_with_platform(go)


def drop_source(slug: str) -> int:
    from tenants.move import MoveError, drop_source as drop

    async def go(platform: Platform) -> int:
        try:
            print_json(await drop(slug))
        except MoveError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        return 0

    return run_with_platform(go)


def set_replicas(name: str, urls: list[str]) -> int:
    from tenants.clusters import ClusterError, set_replicas as replace

    async def go(platform: Platform) -> int:
        try:
            await replace(name, urls)
        except ClusterError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        print_json({"cluster": name, "replica_urls": len(urls)})
        return 0

    return run_with_platform(go)


def check_citus_ready() -> int:
    """``odr check citus-ready``: the report as JSON; 1 when any tenant schema reaches another schema."""
    from tenants.citus import check_citus_ready as check

    async def go(platform: Platform) -> int:
        report = await check()
        print_json(report)
        return 0 if report.ok else 1

    return run_with_platform(go)
