"""``odr deadlines explain`` and ``odr deadlines provisional``.

Contract: both print JSON on stdout and return the exit code: 0, or 2 on bad input with a message on
stderr naming the argument (an unknown tenant or node too).
"""

from __future__ import annotations

import sys

from core.runtime import Platform
from odr.running import print_json, run_with_platform


def explain_deadlines(tenant: str, node: str, start: str) -> int:
    """Print the JSON of ``GET /api/tenants/{tenant}/deadlines/explain``; 2 on bad input (message on
    stderr naming the argument), for an unknown tenant or node too."""
    from core.db.engine import TenantNotFound
    from core.deadlines.api import QueryInvalid, parse_start
    from core.deadlines.service import complaint_deadlines

    try:
        moment = parse_start(start)
    except QueryInvalid as exc:
        print(f"--{exc.field}: {exc.problem}", file=sys.stderr)
        return 2

    async def go(platform: Platform) -> int:
        try:
            n = await platform.node(tenant, node)
        except TenantNotFound:
            print(f"--tenant: no active tenant {tenant!r}", file=sys.stderr)
            return 2
        except KeyError:
            print(f"--node: no node {node!r} in tenant {tenant!r}", file=sys.stderr)
            return 2
        print_json(await complaint_deadlines(platform, tenant, n.code, moment))
        return 0

    return run_with_platform(go)


def provisional_deadlines(tenant: str | None, apply: bool) -> int:
    """Print, per tenant (or the one named), what :func:`core.deadlines.provisional.recompute_provisional`
    changes (``--apply``: and apply it, one transaction per tenant); 2 for an unknown tenant."""
    from core.db.engine import TenantNotFound
    from core.deadlines.provisional import active_tenants, recompute_provisional
    from core.notifications.deliver import deliver

    async def go(platform: Platform) -> int:
        slugs = await active_tenants()
        if tenant is not None:
            try:
                await platform.tenant(tenant)
            except TenantNotFound:
                print(f"--tenant: no active tenant {tenant!r}", file=sys.stderr)
                return 2
            slugs = [tenant]
        results = []
        for slug in slugs:
            outbox: list = []
            results.append(await recompute_provisional(platform, slug, apply=apply, outbox=outbox))
            for out in outbox:
                await deliver(platform, None, out)
        print_json(results)
        return 0

    return run_with_platform(go)
