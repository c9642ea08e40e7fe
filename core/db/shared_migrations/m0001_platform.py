from core.db.migrations import sql_migration

ID = "0001"
DESCRIPTION = "tenant registry, accounts, installed plugins, plugin activations and their audit"

forwards = sql_migration(
    ID,
    DESCRIPTION,
    """
    CREATE TABLE tenants (
        slug text PRIMARY KEY,
        name text NOT NULL,
        name_en text NOT NULL DEFAULT '',
        schema_name text NOT NULL UNIQUE,
        role_name text NOT NULL UNIQUE,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
        schema_version text,
        migrated_at timestamptz,
        migration_error text,
        manifest jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE accounts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        username text NOT NULL UNIQUE,
        password_hash text NOT NULL,
        role text NOT NULL CHECK (role IN ('operator', 'province_admin', 'bureau_officer', 'office_head',
                                            'enterprise_specialist', 'consumer')),
        tenant text REFERENCES tenants(slug) ON DELETE CASCADE,
        node_code text,
        enterprise_id uuid,
        display_name text NOT NULL DEFAULT '',
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((role = 'operator') = (tenant IS NULL)),
        CHECK (role NOT IN ('province_admin', 'bureau_officer', 'office_head') OR node_code IS NOT NULL),
        CHECK (role <> 'enterprise_specialist' OR enterprise_id IS NOT NULL)
    )
    """,
    """
    CREATE TABLE plugin_packages (
        name text PRIMARY KEY,
        distribution text NOT NULL,
        version text NOT NULL,
        title text NOT NULL DEFAULT '',
        families text[] NOT NULL DEFAULT '{}',
        is_default boolean NOT NULL DEFAULT false,
        allowed boolean NOT NULL,
        loaded boolean NOT NULL,
        error text,
        seen_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE plugin_activations (
        tenant text NOT NULL REFERENCES tenants(slug) ON DELETE CASCADE,
        node_code text NOT NULL,
        plugin text NOT NULL,
        active boolean NOT NULL,
        config jsonb,
        updated_by text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, node_code, plugin)
    )
    """,
    """
    CREATE TABLE plugin_activation_audit (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant text NOT NULL,
        node_code text NOT NULL,
        plugin text NOT NULL,
        actor text NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        old jsonb,
        new jsonb
    )
    """,
)
