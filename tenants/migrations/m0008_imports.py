"""Import of the national 12315 platform's case exports (issue 15, ``core/imports``).

- ``complaints.registration_number``: the national registration number (登记编号 / 投诉编号) of an
  imported case, unique, NULL for complaints filed here; the import is idempotent on it. Imported
  complaints have the source ``imported``.
- ``import_mappings``: the tenant's column mapping (``core.imports.mapping.ColumnMapping`` as JSON), one
  row per kind of import (``complaints``); absent means the default (the national layout).
- ``import_files``: an uploaded export (console or API) kept for its preview, dry run and import.
- ``import_runs``: one dry run or import of a file: progress (rows processed, committed with each batch),
  counts (created / already present / refused) and the refused rows with line and field.
- ``complaint_facts_sync_inserted()`` (migration 0004's statement trigger, with 0006's columns) reads
  each new complaint's facts through the primary key: PostgreSQL assumes a transition table of about
  2,000 rows and planned a hash join over the whole ``complaints`` table for every INSERT statement (a
  group commit of intakes, a batch of an import), so each statement cost grew with the province's
  complaints (141 ms for 500 rows beside 30,000 complaints, 2 ms with the lookup per row: the
  ``OFFSET 0`` keeps the lateral subquery a per-row index scan).
"""

from core.db.migrations import sql_migration
from tenants.migrations import m0006_spot_check_findings as m0006

ID = "0008"
DESCRIPTION = ("imports of 12315 exports: complaints.registration_number, import mappings, files and runs; new complaints'"
               " facts read by primary key")

forwards = sql_migration(
    ID,
    DESCRIPTION,
    "ALTER TABLE complaints ADD COLUMN registration_number text",
    "CREATE UNIQUE INDEX complaints_registration_number_key ON complaints (registration_number)",
    "ALTER TABLE complaints DROP CONSTRAINT complaints_source_check",
    "ALTER TABLE complaints ADD CONSTRAINT complaints_source_check CHECK (source IN ('consumer', 'bureau_forwarded', 'imported'))",
    """
    CREATE TABLE import_mappings (
        kind text PRIMARY KEY CHECK (kind IN ('complaints')),
        mapping jsonb NOT NULL,
        updated_by text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE import_files (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        kind text NOT NULL CHECK (kind IN ('complaints')),
        filename text NOT NULL,
        format text NOT NULL CHECK (format IN ('csv', 'xlsx')),
        size integer NOT NULL,
        sha256 text NOT NULL,
        content bytea NOT NULL,
        uploaded_by text NOT NULL,
        node_code text NOT NULL,
        uploaded_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE import_runs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        file_id uuid REFERENCES import_files(id),
        filename text NOT NULL,
        dry_run boolean NOT NULL,
        status text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
        total integer,
        processed integer NOT NULL DEFAULT 0,
        created integer NOT NULL DEFAULT 0,
        present integer NOT NULL DEFAULT 0,
        refused integer NOT NULL DEFAULT 0,
        problems jsonb NOT NULL DEFAULT '[]',
        error text,
        started_by text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
    )
    """,
    "CREATE INDEX import_runs_file_idx ON import_runs (file_id, started_at)",
    f"""
    CREATE OR REPLACE FUNCTION complaint_facts_sync_inserted() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
    BEGIN
        INSERT INTO complaint_facts ({m0006.FACT_COLUMNS})
        SELECT v.* FROM inserted n
        CROSS JOIN LATERAL (SELECT {m0006.FACT_COLUMNS} FROM complaint_facts_source s
                            WHERE s.complaint_id = n.id OFFSET 0) v;
        RETURN NULL;
    END$$
    """,
)
