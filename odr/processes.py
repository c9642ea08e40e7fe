"""The platform's processes: ``odr serve`` / ``odr demo`` (web workers under granian), ``odr worker``
(SLA timers) and ``odr migrate``.

Contract:
- :func:`serve` starts the embedded PostgreSQL when ``ODR_DATABASE_URL`` is unset (and exports its URL
  to the web workers), prepares (``demo``: the demo provinces, :func:`odr.demo.seed.seed_demo`), then
  serves :func:`odr.app.create_app_from_env` on ``ODR_HOST``:``ODR_PORT`` with ``ODR_WORKERS`` workers
  until interrupted; the embedded database is stopped on the way out. It refuses to start (exit 1, one
  line naming the port) when another process holds that port (:mod:`odr.ports`: granian's
  ``SO_REUSEPORT`` would otherwise share it silently).
- :func:`worker` fires SLA timers and sends queued notification deliveries (e-mail, webhook, SMS
  channels) until SIGTERM or SIGINT.
- :func:`migrate` migrates the shared schema and every tenant; 1 when a tenant failed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from core.db.embedded import EmbeddedPostgres
from core.runtime import Platform
from core.settings import Settings
from odr.demo.seed import DEMO_OPERATOR, seed_demo
from odr.ports import port_in_use
from odr.running import print_json, run_with_platform

log = logging.getLogger("odr")


async def migrate(platform: Platform) -> int:
    from tenants.migrate import migrate_all

    report = await migrate_all(platform.settings.migrate_concurrency)
    print_json(report)
    for failure in report.failed:
        log.error("tenant %s failed to migrate: %s", failure.slug, failure.error)
    return 1 if report.failed else 0


async def worker(platform: Platform) -> int:
    """Fire SLA timers until SIGTERM or SIGINT. With ODR_VALKEY_URL several may run side by side
    (shared queue, live push through Valkey); without it the queue and live push stay in this
    process (notifications are still recorded), so prefer the web app's in-process worker there."""
    import signal

    from core.notifications.bus import make_bus
    from core.notifications.delivery_worker import DeliveryWorker
    from core.timers.queue import make_queue
    from core.timers.worker import TimerWorker

    settings = platform.settings
    if not settings.valkey_url:
        log.warning("ODR_VALKEY_URL is not set: queue in memory, live push reaches no web process")
    queue = make_queue(settings.valkey_url)
    bus = make_bus(settings.valkey_url)
    worker = TimerWorker(platform, queue, bus, name=f"timer-worker-{os.getpid()}")
    # Placement changes (a tenant moved to another cluster) and plugin toggles reach this process too.
    from core.pluginhost.invalidation import PolicyInvalidation

    invalidation = PolicyInvalidation(platform, settings.valkey_url)
    await invalidation.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    delivery = DeliveryWorker(platform, name=f"delivery-worker-{os.getpid()}")
    task = worker.start()
    delivering = delivery.start()
    stopped = asyncio.ensure_future(stop.wait())
    log.info("timer worker started (queue: %s, reconcile every %s s)", queue.name, worker.reconcile_seconds)
    log.info("delivery worker started (poll every %s s, %d attempts)", delivery.poll_seconds, delivery.max_attempts)
    try:
        await asyncio.wait([task, delivering, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        await delivery.stop()
        await worker.stop()
        await invalidation.stop()
        await bus.close()
        await queue.close()
        log.info("timer worker stopped after firing %d timers; %d deliveries sent", worker.fired, delivery.sent)
    return 0


def serve(settings: Settings, *, demo: bool) -> int:
    """Start the embedded database if none is configured, prepare, then serve until interrupted; 1 at once
    (one line on stderr) when another process holds ``ODR_HOST``:``ODR_PORT``."""
    if (held := port_in_use(settings.host, settings.port)) is not None:
        print(f"odr: {held}", file=sys.stderr, flush=True)
        return 1
    embedded = None
    if not settings.database_url:
        embedded = EmbeddedPostgres(settings.data_path)
        os.environ["ODR_DATABASE_URL"] = embedded.start()
        settings = Settings.from_env()
    try:
        prepare = seed_demo if demo else (lambda p: asyncio.sleep(0, 0))
        code = run_with_platform(prepare)
        if code:
            return code
        if demo:
            print(
                f"\nODR platform on http://{settings.host}:{settings.port}  (OpenAPI: /schema, health: /health)\n"
                f"demo logins (password {DEMO_OPERATOR[1]}): operator; sh-admin, js-officer, js-office-head (Shanghai);"
                " js-province-admin, wx-officer, xs-office-head (Jiangsu); fj-admin, fz-officer, gl-office-head (Fujian)\n",
                flush=True,
            )
        from granian import Granian

        Granian(
            "odr.app:create_app_from_env",
            factory=True,
            interface="asgi",
            address=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level.lower(),
        ).serve()
        return 0
    finally:
        if embedded is not None:
            embedded.stop()
