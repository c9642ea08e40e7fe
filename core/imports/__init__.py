"""Import of the national 12315 platform's case exports (issue 15): CSV or XLSX files whose columns are
named by a per-tenant mapping (:mod:`core.imports.mapping`), each row checked
(:mod:`core.imports.rows`) and filed through the intake's own statement
(:func:`core.complaints.batching.intake_sql`), one transaction per batch, idempotent on the national
registration number (:mod:`core.imports.service`)."""
