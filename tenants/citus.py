"""``odr check citus-ready``: whether the tenant schemas could become Citus distributed schemas.

Citus schema-based sharding (``citus.enable_schema_based_sharding``, ``citus_schema_distribute``) places
each distributed schema, with all its tables, on one worker node; a query that stays within one schema is
routed whole to that node. It works only if nothing in a tenant schema reaches outside it, except to
*reference tables* (small tables copied to every node; here: the shared schema's tables named in
:data:`REFERENCE_TABLES`) and to ``pg_catalog``.

Contract: :func:`check_citus_ready` reads the catalogs of every cluster (as the runtime login: catalogs
are readable by everyone) for every registered tenant's schema on its cluster, and lists each object
that reaches another schema: foreign keys, views (and materialized views), functions (their bodies,
``SET search_path`` and argument / result types), triggers calling functions of another schema, column
types and defaults (``nextval`` of another schema's sequence), and sequences owned by another
schema's columns. ``ok`` is true when there are none.
"""

from __future__ import annotations

import re

import asyncpg
import msgspec

from core.db import clusters
from core.db.engine import ENGINE, platform_transaction

REFERENCE_TABLES = frozenset({"odr.plugin_packages"})
"""Shared-schema tables a tenant table may reference (they would be Citus reference tables)."""
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    cluster: str
    schema: str
    kind: str
    object: str
    references: str


class CitusReport(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    schemas_checked: int
    findings: list[Finding]
    reference_tables: list[str]


_FOREIGN_KEYS = """
    SELECT c.conrelid::regclass::text AS object, c.confrelid::regclass::text AS target, tn.nspname AS target_schema,
           tn.nspname || '.' || t.relname AS target_name
    FROM pg_constraint c JOIN pg_class t ON t.oid = c.confrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
    WHERE c.contype = 'f' AND c.connamespace = $1::regnamespace AND tn.nspname <> $2"""

_VIEWS = """
    SELECT DISTINCT v.relname AS object, rn.nspname || '.' || r.relname AS target_name, rn.nspname AS target_schema
    FROM pg_class v JOIN pg_rewrite w ON w.ev_class = v.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid AND d.refclassid = 'pg_class'::regclass
    JOIN pg_class r ON r.oid = d.refobjid JOIN pg_namespace rn ON rn.oid = r.relnamespace
    WHERE v.relnamespace = $1::regnamespace AND v.relkind IN ('v', 'm') AND rn.nspname <> $2"""

_FUNCTIONS = """
    SELECT p.oid::regprocedure::text AS object, p.prosrc AS body, coalesce(array_to_string(p.proconfig, ' '), '') AS config,
           ARRAY(SELECT tn.nspname || '.' || ty.typname FROM pg_type ty JOIN pg_namespace tn ON tn.oid = ty.typnamespace
                 WHERE ty.oid = ANY(p.proargtypes::oid[] || p.prorettype)
                   AND tn.nspname NOT IN ('pg_catalog', 'information_schema') AND tn.nspname <> $2) AS foreign_types
    FROM pg_proc p WHERE p.pronamespace = $1::regnamespace"""

_TRIGGERS = """
    SELECT t.tgname || ' ON ' || t.tgrelid::regclass::text AS object, p.oid::regprocedure::text AS target_name,
           pn.nspname AS target_schema
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
    JOIN pg_namespace pn ON pn.oid = p.pronamespace
    WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal AND pn.nspname NOT IN ('pg_catalog', $2)"""

_COLUMNS = """
    SELECT c.relname || '.' || a.attname AS object, tn.nspname || '.' || ty.typname AS target_name, tn.nspname AS target_schema
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type ty ON ty.oid = a.atttypid
    JOIN pg_namespace tn ON tn.oid = ty.typnamespace
    WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') AND a.attnum > 0 AND NOT a.attisdropped
      AND tn.nspname NOT IN ('pg_catalog', 'information_schema', $2)
      AND NOT (ty.typtype = 'c' AND ty.typrelid = c.oid)"""

_DEFAULTS = """
    SELECT c.relname || '.' || a.attname AS object, sn.nspname || '.' || s.relname AS target_name, sn.nspname AS target_schema
    FROM pg_attrdef ad JOIN pg_class c ON c.oid = ad.adrelid
    JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
    JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
    JOIN pg_class s ON s.oid = d.refobjid JOIN pg_namespace sn ON sn.oid = s.relnamespace
    WHERE c.relnamespace = $1::regnamespace AND sn.nspname <> $2"""

_OWNED_SEQUENCES = """
    SELECT sn.nspname || '.' || s.relname AS object, tn.nspname || '.' || t.relname AS target_name, tn.nspname AS target_schema
    FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' JOIN pg_namespace sn ON sn.oid = s.relnamespace
    JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
      AND (s.relnamespace = $1::regnamespace) <> (t.relnamespace = $1::regnamespace)"""


def _other_schema(text: str, own: str) -> str | None:
    """The first ``schema.`` qualifier in ``text`` naming the shared schema or another tenant's."""
    for m in re.finditer(r"\b(odr|t_[a-z][a-z0-9_]*)\s*\.", text or ""):
        if m.group(1) != own:
            return m.group(1)
    return None


async def schema_findings(conn: asyncpg.Connection, cluster: str, schema: str) -> list[Finding]:
    """What in ``schema`` reaches another schema (see the module's contract)."""
    found: list[Finding] = []

    def add(kind: str, obj: str, target: str) -> None:
        found.append(Finding(cluster=cluster, schema=schema, kind=kind, object=obj, references=target))

    for r in await conn.fetch(_FOREIGN_KEYS, schema, schema):
        if r["target_name"] not in REFERENCE_TABLES:
            add("foreign key", r["object"], r["target_name"])
    for r in await conn.fetch(_VIEWS, schema, schema):
        if r["target_schema"] not in SYSTEM_SCHEMAS and r["target_name"] not in REFERENCE_TABLES:
            add("view", f"{schema}.{r['object']}", r["target_name"])
    for r in await conn.fetch(_FUNCTIONS, schema, schema):
        other = _other_schema(r["body"], schema)
        if other:
            add("function body", r["object"], f"schema {other}")
        other = _other_schema(r["config"].replace(",", ". ").replace("=", " ") + ".", schema)
        if other and "search_path" in r["config"]:
            add("function search_path", r["object"], f"schema {other}")
        for t in r["foreign_types"]:
            add("function type", r["object"], t)
    for r in await conn.fetch(_TRIGGERS, schema, schema):
        add("trigger", r["object"], r["target_name"])
    for r in await conn.fetch(_COLUMNS, schema, schema):
        add("column type", f"{schema}.{r['object']}", r["target_name"])
    for r in await conn.fetch(_DEFAULTS, schema, schema):
        add("column default", f"{schema}.{r['object']}", r["target_name"])
    for r in await conn.fetch(_OWNED_SEQUENCES, schema):
        add("owned sequence", r["object"], r["target_name"])  # either side outside the schema
    return found


async def check_citus_ready() -> CitusReport:
    """Every registered tenant's schema on its cluster (see the module's contract)."""
    async with platform_transaction() as conn:
        rows = await conn.fetch("SELECT schema_name, cluster FROM odr.tenants ORDER BY cluster, schema_name")
    findings: list[Finding] = []
    by_cluster: dict[str, list[str]] = {}
    for r in rows:
        by_cluster.setdefault(r["cluster"], []).append(r["schema_name"])
    for name, schemas in by_cluster.items():
        pool = ENGINE.pool if name == clusters.PRIMARY else await clusters.cluster_pool(name)
        async with pool.acquire() as conn:
            for schema in schemas:
                findings += await schema_findings(conn, name, schema)
    return CitusReport(ok=not findings, schemas_checked=len(rows), findings=findings,
                       reference_tables=sorted(REFERENCE_TABLES))
