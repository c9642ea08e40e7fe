"""Wire the Litestar application: auth, routes, error handling, lifecycle. The one place that does."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import msgspec
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.openapi import OpenAPIConfig
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.security.jwt import JWTAuth, Token
from litestar.stores.memory import MemoryStore
from litestar.stores.registry import StoreRegistry

from core.api.auth import AuthController
from core.api.errors import EXCEPTION_HANDLERS
from core.api.health import health
from core.api.platform_admin import PlatformController
from core.api.policy import PolicyController
from core.auth.principal import Principal
from core.runtime import Platform
from core.settings import Settings

PUBLIC_PATHS = ["/health", "/schema", "/api/auth/login", "/public", "/ui/static"]


async def _principal_from_token(token: Token, connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    try:
        return msgspec.convert(token.extras["p"], Principal)
    except (KeyError, msgspec.ValidationError):
        return None


def _store_factory(settings: Settings):
    """Litestar stores: Valkey (namespaced per store) when ODR_VALKEY_URL is set, else in-memory."""

    def factory(name: str):
        if settings.valkey_url:
            from litestar.stores.valkey import ValkeyStore

            return ValkeyStore.with_client(settings.valkey_url, namespace=f"odr:{name}")
        return MemoryStore()

    return factory


def create_app(platform: Platform | None = None, *, manage_lifecycle: bool = True) -> Litestar:
    """Build the app around ``platform`` (started on startup and stopped on shutdown when
    ``manage_lifecycle``)."""
    platform = platform or Platform()
    settings = platform.settings
    jwt_auth = JWTAuth[Principal](
        retrieve_user_handler=_principal_from_token,
        token_secret=settings.jwt_secret(),
        exclude=PUBLIC_PATHS,
        default_token_expiration=dt.timedelta(hours=settings.token_ttl_hours),
    )

    stores = StoreRegistry(default_factory=_store_factory(settings))
    rate_limit = RateLimitConfig(
        rate_limit=("minute", settings.login_rate_per_minute),
        check_throttle_handler=lambda request: request.url.path == "/api/auth/login",
        store="rate_limit",
    )

    async def startup(app: Litestar) -> None:
        if manage_lifecycle:
            await platform.start()

    async def shutdown(app: Litestar) -> None:
        if manage_lifecycle:
            await platform.stop()
        for name in ("rate_limit",):
            store = stores.get(name)
            if hasattr(store, "__aexit__"):
                await store.__aexit__(None, None, None)

    app = Litestar(
        route_handlers=[health, AuthController, PlatformController, PolicyController],
        on_app_init=[jwt_auth.on_app_init],
        middleware=[rate_limit.middleware],
        stores=stores,
        on_startup=[startup],
        on_shutdown=[shutdown],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(title="12315 ODR platform", version="0.1.0"),
        logging_config=None,
    )
    app.state.platform = platform
    app.state.jwt_auth = jwt_auth
    return app


def create_app_from_env() -> Litestar:
    """Factory for ASGI servers (``granian --factory core.app:create_app_from_env``)."""
    logging.basicConfig(level=Settings.from_env().log_level)
    return create_app()
