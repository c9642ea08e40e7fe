"""What a tenant's runtime role ``t_<slug>`` may do on each relation of its schema: the declared table.

:func:`tenants.roles.apply_runtime_grants` makes the database equal to this table after every migration
run (revoking everything else), and the privilege-matrix test compares what the runtime role can
really do with it. A relation in a tenant schema that is missing here makes migrating fail, so every
new table is declared. Nothing here may ever give TRUNCATE, REFERENCES or TRIGGER, nor UPDATE or DELETE
on an append-only record (:data:`APPEND_ONLY`); DDL, GRANT and trigger control belong to the owner role
alone and cannot be granted at all.
"""

from __future__ import annotations

RUNTIME_PRIVILEGES: dict[str, frozenset[str]] = {
    name: frozenset(p.strip() for p in privileges.split(",") if p.strip())
    for name, privileges in {
        # jurisdiction tree: written at onboarding only (by the owner)
        "jurisdictions": "SELECT",
        # ODR units and their applications, documents, liaisons: state changes
        "enterprises": "SELECT, INSERT, UPDATE",
        "enterprise_applications": "SELECT, INSERT, UPDATE",
        "enterprise_documents": "SELECT, INSERT",
        "liaisons": "SELECT, INSERT, UPDATE",
        "liaison_changes": "SELECT, INSERT, UPDATE",
        # complaints: the case changes state; its events, messages and attachments are records
        "complaints": "SELECT, INSERT, UPDATE",
        "complaint_events": "SELECT, INSERT",
        "complaint_messages": "SELECT, INSERT",
        "complaint_attachments": "SELECT, INSERT",
        "timers": "SELECT, INSERT, UPDATE",
        "notifications": "SELECT, INSERT, UPDATE",
        # delivery outbox (state, attempts; delivered rows removed after ODR_DELIVERY_RETENTION_DAYS),
        # channel choices per account, case-event subscriptions
        "deliveries": "SELECT, INSERT, UPDATE, DELETE",
        "channel_preferences": "SELECT, INSERT, UPDATE",
        "event_subscriptions": "SELECT, INSERT, UPDATE",
        # kept by triggers on complaints and enterprises, which run as the writing role
        "complaint_facts": "SELECT, INSERT, UPDATE",
        "complaint_facts_source": "SELECT",  # view read by those triggers
        # evaluation: periods and runs change state; policies and results are immutable records
        "evaluation_periods": "SELECT, INSERT, UPDATE",
        "evaluations": "SELECT, INSERT, UPDATE",
        "evaluation_policies": "SELECT, INSERT",
        "evaluation_results": "SELECT, INSERT",
        "revocation_proposals": "SELECT, INSERT, UPDATE",
        # a bureau replaces or withdraws a year's coverage target
        "coverage_targets": "SELECT, INSERT, UPDATE, DELETE",
        # imports of 12315 exports (core/imports): the tenant's column mapping, uploaded files, runs
        "import_mappings": "SELECT, INSERT, UPDATE",
        "import_files": "SELECT, INSERT, UPDATE",  # UPDATE: the content purged after ODR_IMPORT_RETENTION_DAYS
        "import_runs": "SELECT, INSERT, UPDATE",
        # the schema's migration record: the owner's alone
        "_migrations": "",
    }.items()
}
"""relation -> the privileges the runtime role holds on it (exactly these)."""

APPEND_ONLY = frozenset({"complaint_events", "evaluation_policies", "evaluation_results"})
"""Records that are never changed or removed once written (Art. 17 supervision, evaluation)."""

DML = ("SELECT", "INSERT", "UPDATE", "DELETE")
NEVER_GRANTED = frozenset({"TRUNCATE", "REFERENCES", "TRIGGER"})


def check_declaration(declared: dict[str, frozenset[str]] | None = None) -> list[str]:
    """Problems of the declared table (default :data:`RUNTIME_PRIVILEGES`; empty when it keeps the rules
    above)."""
    problems = []
    for name, privileges in (RUNTIME_PRIVILEGES if declared is None else declared).items():
        unknown = privileges - set(DML)
        if unknown:
            problems.append(f"{name}: {', '.join(sorted(unknown))} may not be granted to the runtime role")
        if name in APPEND_ONLY and privileges & {"UPDATE", "DELETE"}:
            problems.append(f"{name}: append-only, but UPDATE or DELETE declared")
    return problems
