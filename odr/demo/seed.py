"""``odr demo``'s preparation: the demo provinces onboarded with their demo accounts, their history
(:mod:`odr.demo.history`) and a published evaluation (:mod:`odr.demo.evaluation`), the demo operator,
then every tenant migrated. Idempotent: a second run adds nothing.
"""

from __future__ import annotations

import logging

from core.runtime import Platform

log = logging.getLogger("odr")
DEMO_OPERATOR = ("operator", "demo12315")


async def seed_demo(platform: Platform) -> int:
    from core.auth.accounts import create_account
    from core.auth.principal import Role
    from core.db.engine import platform_transaction
    from odr.demo.evaluation import seed_demo_evaluation
    from odr.demo.history import seed_history
    from tenants.manifest import demo_manifests
    from tenants.onboarding import onboard

    for manifest in demo_manifests():
        result = await onboard(manifest, host=platform.host, actor="demo", demo=True)
        log.info("tenant %s: %s", manifest.slug, "onboarded" if result.created else "already there")
        log.info("tenant %s demo history: %d complaints seeded", manifest.slug, (await seed_history(platform, manifest.slug)).complaints)
        published = await seed_demo_evaluation(platform, manifest.slug)
        if published is not None:
            log.info("tenant %s: evaluation %s run and published", manifest.slug, published.period.label)
    async with platform_transaction() as conn:
        await create_account(conn, username=DEMO_OPERATOR[0], password=DEMO_OPERATOR[1], role=Role.OPERATOR, exist_ok=True)
    from tenants.migrate import migrate_all

    report = await migrate_all(platform.settings.migrate_concurrency)
    return 1 if report.failed else 0
