"""The ``odr`` command.

  odr demo                      embedded or configured database, demo tenants and accounts, serve
  odr serve                     serve the platform (ODR_WORKERS web workers, granian)
  odr migrate                   shared schema and every tenant schema to the latest migrations
  odr worker                    SLA timer worker (run one or more with ODR_VALKEY_URL) until SIGTERM/SIGINT
  odr tenant create MANIFEST    onboard a province (a manifest path or a name in tenants/manifests)
  odr tenant list
  odr account create-operator USERNAME   (password read from ODR_NEW_PASSWORD or asked)
  odr plugins list
  odr plugins show NAME         one plugin: info, config schema and defaults, hooks, allowed/loaded
  odr plugins check [NAME ...]  the plugin contract checks of pytest-odr (default: every allowed plugin); 1 on failures
  odr deadlines explain --tenant T --node CODE --start ISO
                                the deadline policy's due moments at a node, with every skipped day
  odr deadlines provisional [--tenant T] [--apply]
                                running complaints whose provisional deadlines (counted without the year's
                                holiday notice) the calendars installed now would change; --apply recounts
                                them (an event each), as the platform does when it starts
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from typing import Awaitable, Callable

import msgspec

from core.db.embedded import EmbeddedPostgres
from core.runtime import Platform
from core.settings import Settings

log = logging.getLogger("odr")
DEMO_OPERATOR = ("operator", "demo12315")


def _print_json(value) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")


def _run(fn: Callable[[Platform], Awaitable[int]]) -> int:
    async def main() -> int:
        platform = Platform()
        await platform.start()
        try:
            return await fn(platform)
        finally:
            await platform.stop()

    return asyncio.run(main())


async def _migrate(platform: Platform) -> int:
    from tenants.migrate import migrate_all

    report = await migrate_all(platform.settings.migrate_concurrency)
    _print_json(report)
    for failure in report.failed:
        log.error("tenant %s failed to migrate: %s", failure.slug, failure.error)
    return 1 if report.failed else 0


async def _seed_demo(platform: Platform) -> int:
    from core.auth.accounts import create_account
    from core.auth.principal import Role
    from core.db.engine import platform_transaction
    from core.evaluation.demo import seed_demo_evaluation
    from tenants.demo_history import seed_history
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


def _explain_deadlines(tenant: str, node: str, start: str) -> int:
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
        _print_json(await complaint_deadlines(platform, tenant, n.code, moment))
        return 0

    return _run(go)


def _provisional_deadlines(tenant: str | None, apply: bool) -> int:
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
        _print_json(results)
        return 0

    return _run(go)


_NOT_ALLOWED = "installed but not on the allow-list (ODR_PLUGINS_ALLOW): never loaded"


def _show_plugin(host, name: str) -> int:
    """Print one plugin as JSON: its entry point and distribution, whether it is allowed and loaded, and
    for a loaded one its info, configuration (JSON schema, defaults) and the hooks it implements. A
    plugin not on the allow-list is never loaded, so only what its distribution metadata says is shown."""
    from odr_plugin_api.types import config_schema

    d = host.discovered.get(name)
    if d is None:
        known = ", ".join(sorted(host.discovered)) or "none"
        print(f"no plugin {name!r} is installed (entry points in odr.plugins: {known})", file=sys.stderr)
        return 2
    if not d.allowed:
        status = _NOT_ALLOWED + ": its info, configuration and hooks are not shown"
    elif not d.loaded:
        status = f"allowed, but it failed to load: {d.error}"
    else:
        status = "allowed and loaded"
    out: dict = {"name": d.name, "distribution": d.distribution, "version": d.version, "allowed": d.allowed,
                 "loaded": d.loaded, "status": status, "error": d.error}
    info = d.info if d.loaded else None
    if info is not None:
        out["info"] = {"title": info.title, "description": info.description, "version": info.version,
                       "families": [f.value for f in info.families], "default": info.default,
                       "classes": list(info.classes)}
        out["config"] = None if info.config is None else {
            "type": info.config.__name__,
            "schema": config_schema(info.config),
            "default": msgspec.to_builtins(info.config()),
        }
        plugin = host.pm.get_plugin(name)
        out["hooks"] = sorted(
            (
                {"hook": caller.name, "params": list(impl.argnames), "tryfirst": impl.tryfirst, "trylast": impl.trylast}
                for caller in host.pm.get_hookcallers(plugin) or []
                for impl in caller.get_hookimpls()
                if impl.plugin_name == name
            ),
            key=lambda h: h["hook"],
        )
    _print_json(out)
    return 0


def _check_plugins(host, names: list[str]) -> int:
    """Run pytest-odr's contract checks (``pytest_odr.checks``, no pytest needed) on the named plugins,
    or on every allowed one. A plugin not on the allow-list is not loaded, so not checked: naming one
    is a failure. Exit 1 if any check failed."""
    try:
        from pytest_odr import checks
    except ImportError:
        print("odr plugins check needs the pytest-odr distribution (the vendor kit): pip install pytest-odr",
              file=sys.stderr)
        return 2
    explicit = bool(names)
    if not explicit:
        names = sorted(n for n, d in host.discovered.items() if d.allowed)
        for d in sorted(host.discovered.values(), key=lambda d: d.name):
            if not d.allowed:
                print(f"{d.name}: not checked, {_NOT_ALLOWED}")
    counts = {checks.PASSED: 0, checks.FAILED: 0, checks.SKIPPED: 0}
    refused = 0
    for name in dict.fromkeys(names):
        d = host.discovered.get(name)
        if d is not None and not d.allowed:
            refused += 1
            print(f"{name}\n  FAIL  not checked: {_NOT_ALLOWED} (add it to ODR_PLUGINS_ALLOW, or run"
                  f" pytest --odr-plugin {name} where the vendor's package is installed)")
            continue
        print(name)
        for r in checks.run_checks(name):
            counts[r.status] += 1
            mark = {checks.PASSED: "ok", checks.FAILED: "FAIL", checks.SKIPPED: "skip"}[r.status]
            lines = r.message.splitlines() or [""]
            print(f"  {mark:<5} {r.check:<16} {lines[0]}".rstrip())
            for line in lines[1:]:
                print(f"  {'':<5} {'':<16} {line}")
    failed = counts[checks.FAILED] + refused
    print(f"odr plugins check: {len(dict.fromkeys(names))} plugin(s), {counts[checks.PASSED]} checks passed,"
          f" {failed} failed, {counts[checks.SKIPPED]} skipped")
    return 1 if failed else 0


async def _worker(platform: Platform) -> int:
    """Fire SLA timers until SIGTERM or SIGINT. With ODR_VALKEY_URL several may run side by side
    (shared queue, live push through Valkey); without it the queue and live push stay in this
    process (notifications are still recorded), so prefer the web app's in-process worker there."""
    import signal

    from core.notifications.bus import make_bus
    from core.timers.queue import make_queue
    from core.timers.worker import TimerWorker

    settings = platform.settings
    if not settings.valkey_url:
        log.warning("ODR_VALKEY_URL is not set: queue in memory, live push reaches no web process")
    queue = make_queue(settings.valkey_url)
    bus = make_bus(settings.valkey_url)
    worker = TimerWorker(platform, queue, bus, name=f"timer-worker-{os.getpid()}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = worker.start()
    stopped = asyncio.ensure_future(stop.wait())
    log.info("timer worker started (queue: %s, reconcile every %s s)", queue.name, worker.reconcile_seconds)
    try:
        await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        await worker.stop()
        await bus.close()
        await queue.close()
        log.info("timer worker stopped after firing %d timers", worker.fired)
    return 0


def serve(settings: Settings, *, demo: bool) -> int:
    """Start the embedded database if none is configured, prepare, then serve until interrupted."""
    embedded = None
    if not settings.database_url:
        embedded = EmbeddedPostgres(settings.data_path)
        os.environ["ODR_DATABASE_URL"] = embedded.start()
        settings = Settings.from_env()
    try:
        prepare = _seed_demo if demo else (lambda p: asyncio.sleep(0, 0))
        code = _run(prepare)
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
            "core.app:create_app_from_env",
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


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="odr", description="12315 ODR platform")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="set up demo tenants and serve")
    sub.add_parser("serve", help="serve the platform")
    sub.add_parser("migrate", help="migrate the shared schema and every tenant")
    sub.add_parser("worker", help="run the SLA timer worker until SIGTERM/SIGINT")
    tenant = sub.add_parser("tenant").add_subparsers(dest="action", required=True)
    create = tenant.add_parser("create", help="onboard a province from a manifest")
    create.add_argument("manifest")
    create.add_argument("--demo-accounts", action="store_true", help="also create the manifest's demo accounts")
    tenant.add_parser("list")
    account = sub.add_parser("account").add_subparsers(dest="action", required=True)
    op = account.add_parser("create-operator")
    op.add_argument("username")
    plugins = sub.add_parser("plugins").add_subparsers(dest="action", required=True)
    plugins.add_parser("list")
    show = plugins.add_parser("show", help="one plugin: info, config schema and defaults, hooks, allowed/loaded")
    show.add_argument("name", help="entry-point name (group odr.plugins)")
    check = plugins.add_parser("check", help="run the plugin contract checks (pytest-odr); exit 1 on failures")
    check.add_argument("names", nargs="*", metavar="NAME", help="entry-point names (default: every allowed plugin)")
    deadlines = sub.add_parser("deadlines").add_subparsers(dest="action", required=True)
    explain = deadlines.add_parser("explain", help="due moments of a complaint at a node, explained day by day")
    explain.add_argument("--tenant", required=True, help="tenant (province) slug, e.g. shanghai")
    explain.add_argument("--node", required=True, help="jurisdiction node code, e.g. 310116")
    explain.add_argument("--start", required=True, help="ISO 8601 date-time; without an offset: Asia/Shanghai")
    provisional = deadlines.add_parser(
        "provisional", help="running complaints whose provisional deadlines the installed calendars now change")
    provisional.add_argument("--tenant", help="only this tenant (province) slug")
    provisional.add_argument("--apply", action="store_true", help="recount them, with an event each (default: list only)")
    args = parser.parse_args(argv)

    if args.command in ("demo", "serve"):
        return serve(settings, demo=args.command == "demo")
    if args.command == "migrate":
        return _run(_migrate)
    if args.command == "worker":
        return _run(_worker)
    if args.command == "tenant" and args.action == "create":
        from tenants.manifest import load_manifest
        from tenants.onboarding import onboard

        try:
            manifest = load_manifest(args.manifest)
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            print(f"manifest: {exc}", file=sys.stderr)
            return 2

        async def go(platform: Platform) -> int:
            _print_json(await onboard(manifest, host=platform.host, actor="cli", demo=args.demo_accounts))
            return 0

        return _run(go)
    if args.command == "tenant" and args.action == "list":

        async def go(platform: Platform) -> int:
            from core.db.engine import platform_transaction

            async with platform_transaction() as conn:
                rows = await conn.fetch("SELECT slug, name, status, schema_version, migration_error FROM odr.tenants ORDER BY slug")
            _print_json([dict(r) for r in rows])
            return 0

        return _run(go)
    if args.command == "account":
        password = os.environ.get("ODR_NEW_PASSWORD") or getpass.getpass("password: ")

        async def go(platform: Platform) -> int:
            from core.auth.accounts import create_account
            from core.auth.principal import Role
            from core.db.engine import platform_transaction

            async with platform_transaction() as conn:
                await create_account(conn, username=args.username, password=password, role=Role.OPERATOR)
            return 0

        return _run(go)
    if args.command == "plugins" and args.action == "show":
        return _show_plugin(Platform(settings).host, args.name)
    if args.command == "plugins" and args.action == "check":
        return _check_plugins(Platform(settings).host, args.names)
    if args.command == "plugins":
        host = Platform(settings).host
        _print_json(
            [
                {"name": d.name, "distribution": d.distribution, "version": d.version, "allowed": d.allowed,
                 "loaded": d.loaded, "error": d.error, "default": bool(d.info and d.info.default),
                 "families": [f.value for f in d.info.families] if d.info else []}
                for d in sorted(host.discovered.values(), key=lambda d: d.name)
            ]
        )
        return 0
    if args.command == "deadlines" and args.action == "explain":
        return _explain_deadlines(args.tenant, args.node, args.start)
    if args.command == "deadlines" and args.action == "provisional":
        return _provisional_deadlines(args.tenant, args.apply)
    parser.error("unknown command")
    return 2


if __name__ == "__main__":
    sys.exit(main())
