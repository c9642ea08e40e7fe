"""The ``odr`` command.

  odr demo                      embedded or configured database, demo tenants and accounts, serve
  odr serve                     serve the platform (ODR_WORKERS web workers, granian)
  odr migrate                   shared schema and every tenant schema to the latest migrations
  odr worker                    SLA timer worker (run one or more with ODR_VALKEY_URL) until SIGTERM/SIGINT
  odr tenant create MANIFEST    onboard a province (a manifest path or a name in tenants/manifests)
  odr tenant create MANIFEST --cluster NAME   onboard it on that cluster (default: primary)
  odr tenant list
  odr tenant move T --to CLUSTER [--abort]
                                move a tenant's schema to another cluster (logical replication, a short
                                write pause; prints it); resumes an interrupted move, --abort rolls it back
  odr tenant drop-source T      drop the schema a finished move left on its source cluster
  odr cluster add NAME URL [--admin-url URL] [--replica URL ...]
                                register a PostgreSQL cluster tenants may be placed on
  odr cluster list              clusters, their replicas and the tenants on each
  odr cluster set-replicas NAME [URL ...]
                                the cluster's read replicas (reports and evaluation reads go there while
                                their lag is below ODR_REPLICA_MAX_LAG_SECONDS); none: clear them
  odr check citus-ready          whether every tenant schema could be a Citus distributed schema (nothing in it
                                reaches another schema but reference tables); 1 when something does
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
                                line on stderr, the report as JSON; 1 when rows were refused); the run is
                                recorded (its id first on stderr) and, if the process dies, shown interrupted
  odr import resume --tenant T RUN_ID
                                go on with an interrupted or failed import run from its last committed batch

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
from odr import cluster_commands, deadline_commands, import_commands, plugin_commands, processes, tenant_commands
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
    create.add_argument("--cluster", default="primary", help="the cluster to place it on (odr cluster list)")
    tenant.add_parser("list")
    move = tenant.add_parser("move", help="move a tenant to another cluster (logical replication)")
    move.add_argument("tenant")
    move.add_argument("--to", required=True, help="target cluster (odr cluster list)")
    move.add_argument("--abort", action="store_true", help="roll back the tenant's open move instead")
    drop = tenant.add_parser("drop-source", help="drop the schema a finished move left on its source cluster")
    drop.add_argument("tenant")
    cluster = sub.add_parser("cluster").add_subparsers(dest="action", required=True)
    cadd = cluster.add_parser("add", help="register a PostgreSQL cluster tenants may be placed on")
    cadd.add_argument("name")
    cadd.add_argument("url", help="superuser URL (logins made there) or the runtime login's URL")
    cadd.add_argument("--admin-url", help="the administration login's URL there (with a runtime login's URL)")
    cadd.add_argument("--replica", action="append", default=[], help="a read replica's URL (repeatable)")
    cluster.add_parser("list")
    creps = cluster.add_parser("set-replicas", help="the cluster's read replicas (streaming standbys)")
    creps.add_argument("name")
    creps.add_argument("urls", nargs="*", metavar="URL")
    checks = sub.add_parser("check").add_subparsers(dest="action", required=True)
    checks.add_parser("citus-ready", help="no tenant schema reaches another schema but reference tables")
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
    resume = imports.add_parser("resume", help="resume an interrupted or failed import run from its last batch")
    resume.add_argument("--tenant", required=True, help="tenant (province) slug, e.g. shanghai")
    resume.add_argument("run_id", metavar="RUN_ID", help="the run's id (printed when it started; shown in the console)")
    args = parser.parse_args(argv)

    if args.command in ("demo", "serve"):
        return processes.serve(settings, demo=args.command == "demo")
    if args.command == "migrate":
        return run_with_platform(processes.migrate)
    if args.command == "worker":
        return run_with_platform(processes.worker)
    if args.command == "tenant" and args.action == "create":
        return tenant_commands.create_tenant(args.manifest, demo_accounts=args.demo_accounts, cluster=args.cluster)
    if args.command == "tenant" and args.action == "list":
        return tenant_commands.list_tenants()
    if args.command == "tenant" and args.action == "move":
        return cluster_commands.move_tenant(args.tenant, args.to, abort=args.abort)
    if args.command == "tenant" and args.action == "drop-source":
        return cluster_commands.drop_source(args.tenant)
    if args.command == "cluster" and args.action == "add":
        return cluster_commands.add_cluster(args.name, args.url, admin_url=args.admin_url, replicas=args.replica)
    if args.command == "cluster" and args.action == "set-replicas":
        return cluster_commands.set_replicas(args.name, args.urls)
    if args.command == "cluster":
        return cluster_commands.list_clusters()
    if args.command == "check":
        return cluster_commands.check_citus_ready()
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
    if args.command == "import" and args.action == "resume":
        return import_commands.resume_import(args.tenant, args.run_id)
    if args.command == "import":
        return import_commands.import_complaints(args.tenant, args.file, args.mapping, args.dry_run)
    parser.error("unknown command")
    return 2


if __name__ == "__main__":
    sys.exit(main())
