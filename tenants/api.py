"""The tenancy layer's HTTP surface, the platform operator's endpoints: onboard provinces, list tenants
and the installed plugin packages.

Contract: operators only (``require_operator``); onboarding is :func:`tenants.onboarding.onboard`
(idempotent, all-or-nothing) and forgets the platform's cached tenant entry. The composition root
mounts :func:`route_handlers` beside the core API (:mod:`odr.app`); the console calls the same
handler functions (``admin_ui.pages.operator``).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.params import FromQuery, JSONBody
from litestar import Controller, Request, Response, get, post

from core.api.access import platform_of, require_operator
from core.auth.principal import Principal
from core.db.engine import platform_transaction
from core.db.clusters import PRIMARY
from tenants.clusters import ClusterRow, list_clusters
from tenants.manifest import Manifest
from tenants.onboarding import OnboardResult, onboard


class TenantRow(msgspec.Struct, kw_only=True):
    slug: str
    name: str
    name_en: str
    status: str
    schema_version: str | None
    migration_error: str | None
    cluster: str = "primary"


class PluginPackage(msgspec.Struct, kw_only=True):
    name: str
    distribution: str
    version: str
    title: str
    families: list[str]
    default: bool
    allowed: bool
    loaded: bool
    error: str | None
    failures: int
    isolated: bool = False
    """Runs in an isolated worker process (not shipped with the platform, not in ODR_PLUGINS_TRUSTED)."""
    overruns: int = 0
    """Calls over their time budget in this process (every node)."""


class PlatformController(Controller):
    path = "/api/platform"
    tags = ["platform operator"]

    @get("/tenants")
    async def list_tenants(self, request: Request[Principal, Any, Any]) -> list[TenantRow]:
        require_operator(request)
        async with platform_transaction() as conn:
            rows = await conn.fetch(
                "SELECT slug, name, name_en, status, schema_version, migration_error, cluster FROM odr.tenants ORDER BY slug"
            )
        return [TenantRow(**dict(r)) for r in rows]

    @get("/clusters")
    async def list_clusters(self, request: Request[Principal, Any, Any]) -> list[ClusterRow]:
        """The database clusters and the tenants placed on each (URLs without passwords)."""
        require_operator(request)
        return await list_clusters()

    @post("/tenants")
    async def create_tenant(self, request: Request[Principal, Any, Any], data: JSONBody[Manifest],
                            cluster: FromQuery[str] = PRIMARY) -> Response[OnboardResult]:
        """Onboard a province from a manifest on ``cluster`` (default the primary; idempotent: 201 when
        created, 200 when it existed)."""
        operator = require_operator(request)
        platform = platform_of(request)
        result = await onboard(data, host=platform.host, actor=operator.username, cluster=cluster)
        platform.forget_tenant(data.slug)
        return Response(result, status_code=201 if result.created else 200)

    @get("/plugins")
    async def list_plugins(self, request: Request[Principal, Any, Any]) -> list[PluginPackage]:
        require_operator(request)
        host = platform_of(request).host
        out = []
        for d in sorted(host.discovered.values(), key=lambda d: d.name):
            out.append(
                PluginPackage(
                    name=d.name,
                    distribution=d.distribution,
                    version=d.version,
                    title=d.info.title if d.info else "",
                    families=[f.value for f in d.info.families] if d.info else [],
                    default=bool(d.info and d.info.default),
                    allowed=d.allowed,
                    loaded=d.loaded,
                    error=d.error,
                    failures=sum(n for (p, _), n in host.failures.items() if p == d.name),
                    isolated=d.name in host.workers,
                    overruns=sum(h.overruns for h in host.health.records() if h.plugin == d.name),
                )
            )
        return out


def route_handlers() -> list:
    """The tenancy layer's route handlers, for the composition root to mount."""
    return [PlatformController]
