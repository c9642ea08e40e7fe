"""Migrations of the shared ``odr`` schema: the cluster registry and each tenant's placement."""
from core.db.migrations import sql_migration

ID = "0002"
DESCRIPTION = "cluster registry (primary, tenant clusters, read replicas), tenant placement, write pause and moves"

forwards = sql_migration(
    ID,
    DESCRIPTION,
    """
    CREATE TABLE clusters (
        name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{1,29}$'),
        role text NOT NULL DEFAULT 'tenants' CHECK (role IN ('primary', 'tenants')),
        url text,
        admin_url text,
        replica_urls text[] NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((role = 'primary') = (url IS NULL))
    )
    """,
    "CREATE UNIQUE INDEX clusters_one_primary ON clusters (role) WHERE role = 'primary'",
    "INSERT INTO clusters (name, role) VALUES ('primary', 'primary')",
    "ALTER TABLE tenants ADD COLUMN cluster text NOT NULL DEFAULT 'primary' REFERENCES clusters(name)",
    "ALTER TABLE tenants ADD COLUMN writes_paused_at timestamptz",
    """
    CREATE TABLE tenant_moves (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant text NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
        source text NOT NULL REFERENCES clusters(name),
        target text NOT NULL REFERENCES clusters(name),
        state text NOT NULL CHECK (state IN ('copying', 'switching', 'switched', 'done', 'rolled_back')),
        started_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        pause_ms double precision,
        report jsonb
    )
    """,
    "CREATE UNIQUE INDEX tenant_moves_one_open ON tenant_moves (tenant) WHERE state IN ('copying', 'switching', 'switched')",
)
