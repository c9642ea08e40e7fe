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
  odr import complaints --tenant T FILE.xlsx|FILE.csv [--mapping FILE.toml] [--dry-run]
                                import a 12315 case export (idempotent on the registration number; a progress
                                line on stderr, the report as JSON; 1 when rows were refused)

The command's parser and dispatch; each command lives in the module named for it (:mod:`odr.processes`,
:mod:`odr.tenant_commands`, :mod:`odr.plugin_commands`, :mod:`odr.deadline_commands`). Part of the
composition root (:mod:`odr`). Exit codes: 0 ok, 1 a failure reported by the command, 2 bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys

from core.runtime import Platform
from core.settings import Settings
from odr import deadline_commands, import_commands, plugin_commands, processes, tenant_commands
from odr.running import run_with_platform


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
    imports = sub.add_parser("import").add_subparsers(dest="action", required=True)
    complaints = imports.add_parser("complaints", help="import a 12315 case export (CSV or XLSX)")
    complaints.add_argument("--tenant", required=True, help="tenant (province) slug, e.g. shanghai")
    complaints.add_argument("file", metavar="FILE", help="the export: .csv (UTF-8 or GB 18030) or .xlsx")
    complaints.add_argument("--mapping", help="column mapping (TOML; default: the tenant's stored one, else the national layout)")
    complaints.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
    args = parser.parse_args(argv)

    if args.command in ("demo", "serve"):
        return processes.serve(settings, demo=args.command == "demo")
    if args.command == "migrate":
        return run_with_platform(processes.migrate)
    if args.command == "worker":
        return run_with_platform(processes.worker)
    if args.command == "tenant" and args.action == "create":
        return tenant_commands.create_tenant(args.manifest, demo_accounts=args.demo_accounts)
    if args.command == "tenant" and args.action == "list":
        return tenant_commands.list_tenants()
    if args.command == "account":
        return tenant_commands.create_operator(args.username)
    if args.command == "plugins" and args.action == "show":
        return plugin_commands.show_plugin(Platform(settings).host, args.name)
    if args.command == "plugins" and args.action == "check":
        return plugin_commands.check_plugins(Platform(settings).host, args.names)
    if args.command == "plugins":
        return plugin_commands.list_plugins(Platform(settings).host)
    if args.command == "deadlines" and args.action == "explain":
        return deadline_commands.explain_deadlines(args.tenant, args.node, args.start)
    if args.command == "deadlines" and args.action == "provisional":
        return deadline_commands.provisional_deadlines(args.tenant, args.apply)
    if args.command == "import":
        return import_commands.import_complaints(args.tenant, args.file, args.mapping, args.dry_run)
    parser.error("unknown command")
    return 2


if __name__ == "__main__":
    sys.exit(main())
