"""Statistics facts, evaluations (Art. 20-22), revocation proposals and coverage targets.

``complaint_facts`` is a narrow copy of what reports and evaluations read from each complaint (about a
tenth of a complaint row), kept exact by triggers: one definition, the view ``complaint_facts_source``,
feeds the triggers on ``complaints`` (once per INSERT statement over its new rows; per updated row when
a column the facts read changed) and the backfill, so the table always equals the view.
A unit's reclassification updates its facts' ``enterprise_class``.

Verdicts (NULL = no verdict yet):
- ``contact_late``: true when a contact breach was recorded or the contact came after ``contact_due``;
  false once the consumer was contacted in time.
- ``close_late``: true when a close breach was recorded; false once the close clock stopped in time
  (feedback submitted, case closed, returned, left ODR or withdrawn).
- ``cycle_seconds``: entered ODR -> closed (handling cycle, 处理周期), for closed complaints.
- ``amount_recovered_fen``: the amount recovered in fen (分, integer): summing integers over millions of
  rows is several times cheaper than summing ``numeric``; divide the sum by 100.

The trigger functions keep the tenant's search_path of their creation (``SET search_path FROM CURRENT``),
so a write that names the table with its schema from another search_path still lands in this tenant.

``evaluation_results`` and ``evaluation_policies`` are immutable (like ``complaint_events``): a stored
evaluation is the record of what was scored, with which plugin version and configuration.
"""

from core.db.migrations import sql_migration

ID = "0004"
DESCRIPTION = "complaint facts for reports, evaluations and their results, revocation proposals, coverage targets"

# Fixed-width columns first, texts last: aggregates deform fewer bytes per row (5 million rows matter).
FACT_COLUMNS = """complaint_id, enterprise_id, received_at, entered_odr_at, closed_at, cycle_seconds, breaches, rating,
    fed, settled, contact_late, close_late, amount_recovered_fen, enterprise_class, state, source, node_code, category,
    node_path, company_name"""

# The facts' definitions as builders: migration 0006 (spot-check findings) replaces them with one more column.
FACT_SOURCE = """c.id AS complaint_id,
           c.enterprise_id,
           c.created_at AS received_at,
           c.entered_odr_at,
           c.closed_at,
           CASE WHEN c.closed_at IS NOT NULL AND c.entered_odr_at IS NOT NULL
                THEN greatest(0, round(extract(epoch FROM c.closed_at - c.entered_odr_at)))::integer END
               AS cycle_seconds,
           cardinality(c.breaches)::smallint AS breaches,
           c.rating,
           c.feedback IS NOT NULL AS fed,
           c.settled,
           CASE WHEN 'contact' = ANY (c.breaches) OR c.contacted_at > c.contact_due THEN true
                WHEN c.contacted_at IS NOT NULL THEN false END AS contact_late,
           CASE WHEN 'close' = ANY (c.breaches) THEN true
                WHEN c.entered_odr_at IS NOT NULL
                     AND (c.feedback IS NOT NULL OR c.state IN ('closed', 'returned', 'left_odr', 'withdrawn'))
                THEN false END AS close_late,
           round(c.amount_recovered * 100)::bigint AS amount_recovered_fen,
           e.classification->>'code' AS enterprise_class,
           c.state,
           c.source,
           c.node_code,
           c.category,
           c.node_path,
           c.company_name"""
"""The select list of the view ``complaint_facts_source`` (over ``complaints c`` and ``enterprises e``)."""
FACT_UPDATES = """enterprise_id = EXCLUDED.enterprise_id, enterprise_class = EXCLUDED.enterprise_class,
            company_name = EXCLUDED.company_name, node_code = EXCLUDED.node_code, node_path = EXCLUDED.node_path,
            category = EXCLUDED.category, source = EXCLUDED.source, state = EXCLUDED.state,
            received_at = EXCLUDED.received_at, entered_odr_at = EXCLUDED.entered_odr_at, fed = EXCLUDED.fed,
            settled = EXCLUDED.settled, closed_at = EXCLUDED.closed_at, cycle_seconds = EXCLUDED.cycle_seconds,
            rating = EXCLUDED.rating, amount_recovered_fen = EXCLUDED.amount_recovered_fen,
            contact_late = EXCLUDED.contact_late, close_late = EXCLUDED.close_late, breaches = EXCLUDED.breaches"""
WATCHED = """{0}.state, {0}.enterprise_id, {0}.company_name, {0}.node_code, {0}.category, {0}.entered_odr_at,
           {0}.feedback IS NULL, {0}.settled, {0}.closed_at, {0}.rating, {0}.amount_recovered, {0}.contacted_at,
           {0}.contact_due, {0}.breaches"""
"""The complaint columns the facts read (``{0}``: OLD or NEW): an update changing none of them leaves the facts alone."""


def facts_sync_sql(*, source: str, columns: str, updates: str, watched: str, create: str = "CREATE") -> list[str]:
    """The view, its two sync functions and their triggers (``create``: CREATE, or CREATE OR REPLACE for
    the view and functions, the caller dropping the update trigger first)."""
    return [
        f"""
    {create} VIEW complaint_facts_source AS
    SELECT {source}
    FROM complaints c
    LEFT JOIN enterprises e ON e.id = c.enterprise_id
    """,
        f"""
    {create} FUNCTION complaint_facts_sync() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
        INSERT INTO complaint_facts ({columns})
        SELECT {columns} FROM complaint_facts_source WHERE complaint_id = NEW.id
        ON CONFLICT (complaint_id) DO UPDATE SET
            {updates};
        RETURN NULL;
    END$$
    """,
        # Inserts: once per statement over its new rows (a group commit files many complaints in one INSERT).
        f"""
    {create} FUNCTION complaint_facts_sync_inserted() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
        INSERT INTO complaint_facts ({columns})
        SELECT v.* FROM inserted n
        CROSS JOIN LATERAL (SELECT {columns} FROM complaint_facts_source s WHERE s.complaint_id = n.id) v;
        RETURN NULL;
    END$$
    """,
    ] + ([
        """
    CREATE TRIGGER complaint_facts_on_insert AFTER INSERT ON complaints REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_facts_sync_inserted()
    """,
    ] if create == "CREATE" else []) + [
        f"""
    CREATE TRIGGER complaint_facts_on_update AFTER UPDATE ON complaints FOR EACH ROW
    WHEN (({watched.format("OLD")})
          IS DISTINCT FROM
          ({watched.format("NEW")}))
    EXECUTE FUNCTION complaint_facts_sync()
    """,
    ]


forwards = sql_migration(
    ID,
    DESCRIPTION,
    """
    CREATE TABLE complaint_facts (
        complaint_id uuid PRIMARY KEY REFERENCES complaints(id),
        enterprise_id uuid,
        received_at timestamptz NOT NULL,
        entered_odr_at timestamptz,
        closed_at timestamptz,
        cycle_seconds integer,
        breaches smallint NOT NULL,
        rating smallint,
        fed boolean NOT NULL,
        settled boolean,
        contact_late boolean,
        close_late boolean,
        amount_recovered_fen bigint,
        enterprise_class text,
        state text NOT NULL,
        source text NOT NULL,
        node_code text NOT NULL,
        category text,
        node_path text NOT NULL,
        company_name text NOT NULL
    )
    """,
    "CREATE INDEX complaint_facts_node_path_idx ON complaint_facts (node_path text_pattern_ops)",
    # A unit's complaints by arrival, with the path: the top-merchants count streams over it (index-only).
    """CREATE INDEX complaint_facts_enterprise_idx ON complaint_facts (enterprise_id, received_at)
       INCLUDE (node_path) WHERE enterprise_id IS NOT NULL""",
    # Each unit's closed complaints in cycle order: the evaluation's 90th percentile per unit is read from
    # this index alone (index-only scan, no sort of millions of rows).
    """CREATE INDEX complaint_facts_unit_cycle_idx ON complaint_facts (enterprise_id, cycle_seconds)
       INCLUDE (entered_odr_at) WHERE cycle_seconds IS NOT NULL AND enterprise_id IS NOT NULL""",
    "CREATE INDEX complaint_facts_entered_idx ON complaint_facts (entered_odr_at)",
    "CREATE INDEX complaint_facts_received_idx ON complaint_facts (received_at)",
    *facts_sync_sql(source=FACT_SOURCE, columns=FACT_COLUMNS, updates=FACT_UPDATES, watched=WATCHED),
    """
    CREATE FUNCTION complaint_facts_reclassify() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
        UPDATE complaint_facts SET enterprise_class = NEW.classification->>'code' WHERE enterprise_id = NEW.id;
        RETURN NULL;
    END$$
    """,
    """
    CREATE TRIGGER complaint_facts_on_reclassify AFTER UPDATE OF classification ON enterprises FOR EACH ROW
    WHEN (OLD.classification->>'code' IS DISTINCT FROM NEW.classification->>'code')
    EXECUTE FUNCTION complaint_facts_reclassify()
    """,
    f"INSERT INTO complaint_facts ({FACT_COLUMNS}) SELECT {FACT_COLUMNS} FROM complaint_facts_source",
    # --- evaluations (Art. 20-21) -------------------------------------------------------------------
    """
    CREATE TABLE evaluation_periods (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        kind text NOT NULL CHECK (kind IN ('monthly', 'quarterly', 'yearly')),
        label text NOT NULL,
        starts_on date NOT NULL,
        ends_on date NOT NULL,
        status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
        final_evaluation_id uuid,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        closed_by text,
        closed_at timestamptz,
        UNIQUE (kind, starts_on),
        CHECK (ends_on >= starts_on)
    )
    """,
    """
    CREATE TABLE evaluations (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        period_id uuid NOT NULL REFERENCES evaluation_periods(id),
        run_no integer NOT NULL,
        settings jsonb NOT NULL,
        started_by text NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz NOT NULL,
        units integer NOT NULL,
        scored integer NOT NULL,
        published_at timestamptz,
        published_by text,
        UNIQUE (period_id, run_no)
    )
    """,
    """
    ALTER TABLE evaluation_periods ADD CONSTRAINT evaluation_periods_final_fk
        FOREIGN KEY (final_evaluation_id) REFERENCES evaluations(id)
    """,
    """
    CREATE TABLE evaluation_policies (
        evaluation_id uuid NOT NULL REFERENCES evaluations(id),
        node_code text NOT NULL,
        plugin text NOT NULL,
        plugin_version text NOT NULL,
        config jsonb,
        PRIMARY KEY (evaluation_id, node_code, plugin)
    )
    """,
    """
    CREATE TABLE evaluation_results (
        evaluation_id uuid NOT NULL REFERENCES evaluations(id),
        enterprise_id uuid NOT NULL REFERENCES enterprises(id),
        name text NOT NULL,
        credit_code text NOT NULL,
        node_code text NOT NULL,
        node_path text NOT NULL,
        enterprise_class text,
        handled integer NOT NULL,
        with_feedback integer NOT NULL,
        settled integer NOT NULL,
        settlement_rate float8,
        rated integer NOT NULL,
        satisfaction float8,
        closed integer NOT NULL,
        avg_cycle_days float8,
        p90_cycle_days float8,
        on_time_contact_rate float8,
        on_time_close_rate float8,
        breaches integer NOT NULL,
        amount_recovered numeric NOT NULL,
        complaints_previous_period integer,
        indicators jsonb,
        score float8,
        score_parts jsonb,
        plugin text,
        plugin_version text,
        class_rank integer,
        class_size integer,
        candidate boolean NOT NULL DEFAULT false,
        below_threshold boolean NOT NULL DEFAULT false,
        PRIMARY KEY (evaluation_id, enterprise_id)
    )
    """,
    "CREATE INDEX evaluation_results_enterprise_idx ON evaluation_results (enterprise_id)",
    """
    CREATE FUNCTION evaluation_record_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is immutable', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
    END$$
    """,
    """
    CREATE TRIGGER evaluation_results_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON evaluation_results
    FOR EACH STATEMENT EXECUTE FUNCTION evaluation_record_immutable()
    """,
    """
    CREATE TRIGGER evaluation_policies_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON evaluation_policies
    FOR EACH STATEMENT EXECUTE FUNCTION evaluation_record_immutable()
    """,
    "REVOKE UPDATE, DELETE, TRUNCATE ON evaluation_results, evaluation_policies FROM CURRENT_USER",
    # --- exit (Art. 22) ----------------------------------------------------------------------------
    """
    CREATE TABLE revocation_proposals (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        enterprise_id uuid NOT NULL REFERENCES enterprises(id),
        ground text NOT NULL CHECK (ground IN (
            'deliberate_delay_or_refusal', 'untrue_feedback', 'low_settlement_rate', 'abnormal_or_blacklisted',
            'serious_violation', 'other_failure')),
        source text NOT NULL CHECK (source IN ('evaluation', 'complaint', 'spot_check')),
        evaluation_id uuid REFERENCES evaluations(id),
        complaint_id uuid REFERENCES complaints(id),
        detail text NOT NULL,
        raised_by text NOT NULL,
        raised_at timestamptz NOT NULL DEFAULT now(),
        status text NOT NULL DEFAULT 'proposed' CHECK (status IN ('proposed', 'revoked', 'dismissed')),
        decided_by text,
        decided_node text,
        decided_at timestamptz,
        decision_note text
    )
    """,
    "CREATE INDEX revocation_proposals_enterprise_idx ON revocation_proposals (enterprise_id, status)",
    """
    CREATE UNIQUE INDEX revocation_proposals_one_open_per_evaluation
        ON revocation_proposals (enterprise_id, evaluation_id) WHERE evaluation_id IS NOT NULL
    """,
    # --- coverage targets (Jiangsu: ODR units per county, every county covered, 510 by year end) ---
    """
    CREATE TABLE coverage_targets (
        node_code text NOT NULL REFERENCES jurisdictions(code),
        year integer NOT NULL CHECK (year BETWEEN 2018 AND 2100),
        target_units integer NOT NULL CHECK (target_units >= 0),
        set_by text NOT NULL,
        set_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (node_code, year)
    )
    """,
)
