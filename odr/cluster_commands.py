"""``odr cluster add NAME URL [--admin-url URL] [--replica URL ...]`` and ``odr cluster list``.

Contract: ``cluster add`` registers a PostgreSQL cluster tenants may be placed on
(:func:`tenants.clusters.add_cluster`: its logins prepared and checked first; 2 and a message naming the
field for bad input); ``cluster list`` prints every cluster with its tenants, URLs without passwords.
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
