from core.db.migrations import sql_migration

ID = "0001"
DESCRIPTION = "jurisdiction tree: province -> city -> district/county -> office"

forwards = sql_migration(
    ID,
    DESCRIPTION,
    """
    CREATE TABLE jurisdictions (
        code text PRIMARY KEY CHECK (code ~ '^[0-9A-Za-z_-]{1,32}$'),
        parent_code text REFERENCES jurisdictions(code),
        level text NOT NULL CHECK (level IN ('province', 'city', 'district', 'office')),
        name text NOT NULL,
        name_en text NOT NULL DEFAULT '',
        path text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((level = 'province') = (parent_code IS NULL))
    )
    """,
    "CREATE INDEX jurisdictions_path_idx ON jurisdictions (path text_pattern_ops)",
)
