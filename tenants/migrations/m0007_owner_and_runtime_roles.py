"""Owner and runtime roles (defence in depth): the role requests run as no longer owns the tenant.

Before: ``t_<slug>`` owned the schema and every table, so a request's transaction (which sets that
role) could DROP, TRUNCATE, ALTER or re-GRANT the append-only audit trail. After: a NOLOGIN owner
``owner_<slug>`` owns schema and objects (reached only by the administration login, for onboarding and
``odr migrate``), and ``t_<slug>`` keeps exactly the declared DML (``tenants/privileges.py``; the runner
applies the grants after every migration run).

Runs as the administration login (``RUNS_AS``), not as the schema's owner. Tenants onboarded with both
roles already have this layout, so forwards changes nothing there. Backwards gives everything back to
``t_<slug>`` and drops the owner role.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db.engine import CURRENT_MIGRATION_TENANT, MIGRATION_CONNECTION

ID = "0007"
DESCRIPTION = "owner and runtime roles: owner_<slug> owns the schema, t_<slug> keeps the declared DML"
RUNS_AS = "admin"


def _manager() -> MigrationManager:
    return MigrationManager(migration_id=ID, app_name="odr", description=DESCRIPTION, wrap_in_transaction=False)


async def _split() -> None:
    from tenants.roles import split_ownership

    await split_ownership(MIGRATION_CONNECTION.get(), CURRENT_MIGRATION_TENANT.get())


async def _merge() -> None:
    from tenants.roles import merge_ownership

    await merge_ownership(MIGRATION_CONNECTION.get(), CURRENT_MIGRATION_TENANT.get())


async def forwards() -> MigrationManager:
    manager = _manager()
    manager.add_raw(_split)
    return manager


async def backwards() -> MigrationManager:
    manager = _manager()
    manager.add_raw_backwards(_merge)
    return manager
