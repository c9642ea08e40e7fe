"""Small builders shared by tests."""

from __future__ import annotations

from tenants.manifest import Manifest, NodeSpec


def small_manifest(slug: str, *, extra_nodes: int = 0, bad_code: bool = False) -> Manifest:
    """A province with one district and one office (plus ``extra_nodes`` offices)."""
    root = f"{abs(hash(slug)) % 900000 + 100000}"
    nodes = [
        NodeSpec(code=root, name=f"{slug} province", level="province"),
        NodeSpec(code=f"{root}-d", parent=root, name=f"{slug} district", level="district"),
        NodeSpec(code=f"{root}-o", parent=f"{root}-d", name=f"{slug} office", level="office"),
    ]
    nodes += [
        NodeSpec(code=f"{root}-x{i}", parent=f"{root}-d", name=f"office {i}", level="office") for i in range(extra_nodes)
    ]
    if bad_code:
        nodes.append(NodeSpec(code="not a valid code!", parent=root, name="bad", level="district"))
    return Manifest(slug=slug, name=f"{slug} 省", nodes=nodes).validate()


async def schema_role_registry(conn, slug: str) -> tuple[bool, bool, bool]:
    """Whether the tenant's schema, either of its roles (runtime, owner) and its registry row exist."""
    role = f"t_{slug}"
    schema = bool(await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", role))
    db_role = bool(await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname IN ($1, $2)", role, f"owner_{slug}"))
    registry = bool(await conn.fetchval("SELECT 1 FROM odr.tenants WHERE slug = $1", slug))
    return schema, db_role, registry


def app_with_settings(platform, **changes):
    """The app built (``odr.app.create_app``, lifecycle not managed) as if the platform's settings had
    ``changes``: what the app wires at build time (stores, limits, the password pool, Valkey) follows
    them; the platform keeps its own settings."""
    import msgspec

    from odr.app import create_app

    plain, platform.settings = platform.settings, msgspec.structs.replace(platform.settings, **changes)
    try:
        return create_app(platform, manage_lifecycle=False)
    finally:
        platform.settings = plain
