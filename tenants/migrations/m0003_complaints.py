from core.db.migrations import sql_migration

ID = "0003"
DESCRIPTION = "complaints, their append-only events, messages, attachments, timers and notifications"

forwards = sql_migration(
    ID,
    DESCRIPTION,
    "CREATE SEQUENCE complaint_number_seq",
    """
    CREATE TABLE complaints (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        number text NOT NULL UNIQUE,
        idempotency_key text UNIQUE,
        source text NOT NULL CHECK (source IN ('consumer', 'bureau_forwarded')),
        consumer_account_id uuid,
        consumer_name text NOT NULL,
        consumer_phone text NOT NULL,
        consumer_address text,
        enterprise_id uuid REFERENCES enterprises(id),
        company_name text NOT NULL,
        odr_unit boolean NOT NULL,
        node_code text NOT NULL REFERENCES jurisdictions(code),
        node_path text NOT NULL,
        category text,
        subject text NOT NULL,
        description text NOT NULL,
        amount_claimed numeric CHECK (amount_claimed >= 0),
        state text NOT NULL,
        entered_odr_at timestamptz,
        contact_due timestamptz,
        close_due timestamptz,
        deadline_policy text,
        deadline_policy_version text,
        deadlines jsonb,
        contacted_at timestamptz,
        feedback jsonb,
        settled boolean,
        amount_recovered numeric,
        closed_at timestamptz,
        rating smallint CHECK (rating BETWEEN 1 AND 5),
        rating_comment text,
        breaches text[] NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        version integer NOT NULL DEFAULT 1
    )
    """,
    "CREATE INDEX complaints_node_path_idx ON complaints (node_path text_pattern_ops)",
    "CREATE INDEX complaints_enterprise_idx ON complaints (enterprise_id, state)",
    "CREATE INDEX complaints_consumer_idx ON complaints (consumer_account_id)",
    "CREATE INDEX complaints_state_idx ON complaints (state)",
    """
    CREATE TABLE complaint_events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        complaint_id uuid NOT NULL REFERENCES complaints(id),
        kind text NOT NULL,
        actor_id text NOT NULL,
        actor_role text NOT NULL,
        node_code text,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        before jsonb,
        after jsonb,
        note text
    )
    """,
    "CREATE INDEX complaint_events_complaint_idx ON complaint_events (complaint_id, id)",
    # Append-only: the application (acting as the tenant role, the owner) may insert and read only.
    """
    CREATE FUNCTION complaint_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'complaint_events is append-only' USING ERRCODE = 'insufficient_privilege';
    END$$
    """,
    """
    CREATE TRIGGER complaint_events_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON complaint_events
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_events_append_only()
    """,
    "REVOKE UPDATE, DELETE, TRUNCATE ON complaint_events FROM CURRENT_USER",
    """
    CREATE TABLE complaint_messages (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        complaint_id uuid NOT NULL REFERENCES complaints(id),
        author_id text NOT NULL,
        author_role text NOT NULL,
        body text NOT NULL CHECK (length(body) BETWEEN 1 AND 5000),
        at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX complaint_messages_complaint_idx ON complaint_messages (complaint_id, at)",
    """
    CREATE TABLE complaint_attachments (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        complaint_id uuid NOT NULL REFERENCES complaints(id),
        message_id uuid REFERENCES complaint_messages(id),
        filename text NOT NULL,
        content_type text NOT NULL,
        size integer NOT NULL,
        sha256 text NOT NULL,
        content bytea NOT NULL,
        uploaded_by text NOT NULL,
        at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE timers (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        complaint_id uuid REFERENCES complaints(id),
        liaison_change_id uuid REFERENCES liaison_changes(id),
        kind text NOT NULL CHECK (kind IN ('contact_warning', 'contact_breach', 'close_warning', 'close_breach',
                                            'liaison_breach')),
        due_at timestamptz NOT NULL,
        fired_at timestamptz,
        cancelled_at timestamptz,
        CHECK ((complaint_id IS NULL) <> (liaison_change_id IS NULL))
    )
    """,
    "CREATE UNIQUE INDEX timers_one_per_kind ON timers (coalesce(complaint_id, liaison_change_id), kind)",
    "CREATE INDEX timers_pending_idx ON timers (due_at) WHERE fired_at IS NULL AND cancelled_at IS NULL",
    """
    CREATE TABLE notifications (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        recipient text NOT NULL,
        kind text NOT NULL,
        complaint_id uuid REFERENCES complaints(id),
        enterprise_id uuid REFERENCES enterprises(id),
        payload jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        read_at timestamptz
    )
    """,
    "CREATE INDEX notifications_recipient_idx ON notifications (recipient, id)",
)
