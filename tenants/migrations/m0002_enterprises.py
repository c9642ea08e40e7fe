from core.db.migrations import sql_migration

ID = "0002"
DESCRIPTION = "ODR units (Art. 6-9, 15, 22, 25): enterprises, applications, documents, liaisons, liaison changes"

forwards = sql_migration(
    ID,
    DESCRIPTION,
    """
    CREATE TABLE enterprises (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL CHECK (length(name) BETWEEN 2 AND 200),
        credit_code text NOT NULL UNIQUE CHECK (credit_code ~ '^[0-9A-HJ-NPQRTUWXY]{18}$'),
        unit_type text NOT NULL CHECK (unit_type IN ('enterprise', 'industry_association', 'social_organisation',
                                                     'government_department', 'host_unit')),
        host_unit_id uuid REFERENCES enterprises(id),
        node_code text NOT NULL REFERENCES jurisdictions(code),
        industry text,
        employees integer CHECK (employees >= 0),
        annual_revenue_cny numeric CHECK (annual_revenue_cny >= 0),
        business_scope text,
        address text,
        status text NOT NULL DEFAULT 'applying'
            CHECK (status IN ('applying', 'active', 'suspended', 'revoked', 'rejected')),
        classification jsonb,
        breach_count integer NOT NULL DEFAULT 0,
        approved_at timestamptz,
        approved_by text,
        status_changed_at timestamptz,
        status_changed_by text,
        revocation_ground text CHECK (revocation_ground IS NULL OR revocation_ground IN (
            'deliberate_delay_or_refusal', 'untrue_feedback', 'low_settlement_rate', 'abnormal_or_blacklisted',
            'serious_violation', 'other_failure')),
        revocation_detail text,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX enterprises_node_idx ON enterprises (node_code, status)",
    "CREATE INDEX enterprises_host_idx ON enterprises (host_unit_id) WHERE host_unit_id IS NOT NULL",
    """
    CREATE TABLE enterprise_applications (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        enterprise_id uuid NOT NULL REFERENCES enterprises(id),
        route text NOT NULL CHECK (route IN ('self', 'recommended')),
        recommended_by text,
        conditions jsonb NOT NULL,
        status text NOT NULL DEFAULT 'submitted' CHECK (status IN ('submitted', 'approved', 'rejected')),
        review_method text CHECK (review_method IN ('written', 'site_inspection', 'comprehensive')),
        reviewer text,
        reviewed_at timestamptz,
        rejection_reason text,
        standing jsonb,
        submitted_by text NOT NULL,
        submitted_at timestamptz NOT NULL DEFAULT now(),
        CHECK (status <> 'rejected' OR length(coalesce(rejection_reason, '')) > 0)
    )
    """,
    """
    CREATE TABLE enterprise_documents (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        application_id uuid NOT NULL REFERENCES enterprise_applications(id),
        kind text NOT NULL CHECK (kind IN ('application_letter', 'commitment', 'business_licence',
                                            'consumer_protection_statement')),
        filename text NOT NULL,
        content_type text NOT NULL,
        size integer NOT NULL,
        sha256 text NOT NULL,
        content bytea NOT NULL,
        uploaded_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (application_id, kind)
    )
    """,
    """
    CREATE TABLE liaisons (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        enterprise_id uuid NOT NULL REFERENCES enterprises(id),
        role text NOT NULL CHECK (role IN ('person_in_charge', 'staff')),
        name text NOT NULL,
        phone text NOT NULL,
        account_id uuid,
        active boolean NOT NULL DEFAULT true,
        filed_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE UNIQUE INDEX liaisons_one_active_per_role ON liaisons (enterprise_id, role) WHERE active",
    """
    CREATE TABLE liaison_changes (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        enterprise_id uuid NOT NULL REFERENCES enterprises(id),
        role text NOT NULL CHECK (role IN ('person_in_charge', 'staff')),
        changed_on date NOT NULL,
        due_at timestamptz NOT NULL,
        filed_at timestamptz,
        status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'filed', 'overdue')),
        deadline_explanation jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
)
