"""The Litestar application factory: auth, every area's routes, error handling, lifecycle.

Part of the composition root (:mod:`odr`): the one place that wires the app. Each area hands over a
list of route handlers and this module mounts them side by side (:func:`route_handlers`): the core
API (:mod:`core.api.routes`), the tenancy layer's operator endpoints (:mod:`tenants.api`) and the web
console (:mod:`admin_ui.app`, everything under ``/ui``). A deployment without the console drops that
one line.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
from typing import Any

import msgspec
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.security.jwt import JWTAuth, Token
from litestar.stores.memory import MemoryStore
from litestar.stores.registry import StoreRegistry
from valkey.asyncio import Valkey

from admin_ui.app import ui_route_handlers
from core.api import routes as core_routes
from core.api.backpressure import InflightLimit
from core.api.errors import EXCEPTION_HANDLERS
from core.api.input_limits import InputLimits
from core.api.security_headers import add_security_headers
from core.auth.principal import Principal
from core.auth import passwords
from core.auth.lockout import LoginLockout, counts_for
from core.auth.tokens import CachingJWTMiddleware
from core.notifications.bus import make_bus
from core.pluginhost.invalidation import PolicyInvalidation
from core.runtime import Platform
from core.settings import Settings
from tenants import api as tenant_routes

PUBLIC_PATHS = [r"^/health$", r"^/schema(?:/|$)", r"^/api/auth/login$", r"^/public/", r"^/ui/static/"]
"""Paths the bearer authentication skips: regular expressions, each anchored at the start of the path
(Litestar searches them anywhere in it), so ``/api/tenants/x/complaints/public`` is not one of them.
The console (``/ui``) and ``/health`` also opt out per route (``exclude_from_auth``)."""


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


def route_handlers(settings: Settings) -> list:
    """Every area's route handlers, in mounting order (one line per area)."""
    return [
        *core_routes.route_handlers(settings),  # the core API: health, login, every core area's controllers
        *tenant_routes.route_handlers(),  # the platform operator's endpoints: provinces, plugin packages
        *ui_route_handlers(settings),  # the web console under /ui; drop this line for a deployment without it
    ]


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
        authentication_middleware_class=CachingJWTMiddleware,
    )

    stores = StoreRegistry(default_factory=_store_factory(settings))

    # Live notifications: Valkey pub/sub when configured, else in-process (shared with the in-process
    # timer worker below).
    notify_bus = make_bus(settings.valkey_url)
    # Plugin toggles reach every process's caches at once through Valkey pub/sub (publishing works
    # without the subscription; the subscription follows the app lifecycle).
    policy_invalidation = PolicyInvalidation(platform, settings.valkey_url)
    timer_worker = None
    delivery_worker = None

    async def startup(app: Litestar) -> None:
        nonlocal timer_worker, delivery_worker
        if manage_lifecycle:
            await platform.start()
            await policy_invalidation.start()
            # Deadlines counted provisionally (no holiday notice for their year then) are recounted
            # once, with an event each, when a calendar that knows the notice is now installed.
            from core.deadlines.provisional import recompute_on_start

            await recompute_on_start(platform, notify_bus)
            if not settings.valkey_url:
                # Embedded single-process default: the timer worker runs here. With Valkey, run
                # ``odr worker`` processes instead.
                from core.timers.queue import MemoryTimerQueue
                from core.timers.worker import TimerWorker

                timer_worker = TimerWorker(platform, MemoryTimerQueue(), notify_bus, name="in-process-timers")
                timer_worker.start()
                app.state.timer_worker = timer_worker
                from core.notifications.delivery_worker import DeliveryWorker

                delivery_worker = DeliveryWorker(platform, name="in-process-delivery")
                delivery_worker.start()

    async def shutdown(app: Litestar) -> None:
        nonlocal timer_worker, delivery_worker
        if delivery_worker is not None:
            await delivery_worker.stop()
            delivery_worker = None
        if timer_worker is not None:
            await timer_worker.stop()
            timer_worker = None
            app.state.timer_worker = None
        await notify_bus.close()
        await policy_invalidation.stop()
        if manage_lifecycle:
            await platform.stop()
        for name in ("rate_limit",):
            store = stores.get(name)
            if hasattr(store, "__aexit__"):
                await store.__aexit__(None, None, None)
        if valkey is not None:
            await valkey.aclose()

    def outermost_backpressure(app_config):
        # after the authentication middleware is inserted, so that refusing under overload costs no work
        app_config.middleware.insert(0, DefineMiddleware(InflightLimit, limit=settings.web_max_inflight,
                                                             per_tenant=settings.web_max_inflight_per_tenant))
        return app_config

    app = Litestar(
        route_handlers=route_handlers(settings),
        # inside the authentication (inserted before it by on_app_init): hostile input answered 400 naming the field
        middleware=[DefineMiddleware(InputLimits)],
        on_app_init=[jwt_auth.on_app_init, outermost_backpressure],
        stores=stores,
        before_send=[add_security_headers],  # nosniff on every answer
        on_startup=[startup],
        on_shutdown=[shutdown],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(title="12315 ODR platform", version="0.1.0"),
        logging_config=None,
    )
    app.state.platform = platform
    app.state.jwt_auth = jwt_auth
    valkey = Valkey.from_url(settings.valkey_url) if settings.valkey_url else None  # lockouts, /health
    login_counts = counts_for(valkey)
    app.state.login_lockout = LoginLockout(login_counts, limit=settings.login_failures_per_account,
                                           minutes=settings.login_lockout_minutes)
    passwords.configure(settings)
    app.state.valkey = valkey
    app.state.notify_bus = notify_bus
    app.state.policy_invalidation = policy_invalidation
    app.state.timer_worker = None  # the in-process TimerWorker while it runs (embedded default only)
    return app


def create_app_from_env() -> Litestar:
    """Factory for ASGI servers (``granian --factory odr.app:create_app_from_env``)."""
    logging.basicConfig(level=Settings.from_env().log_level)
    # A web worker allocates many short-lived objects per request: collect the youngest generation
    # every 50,000 allocations instead of every 700 (less CPU per request, fewer pauses).
    gc.set_threshold(50_000, 20, 100)
    return create_app()
