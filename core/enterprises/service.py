"""ODR units (enterprises): application, review, liaisons, status and the public directory.

This module only re-exports the package's public names so callers keep one import path; the code
lives in, by responsibility:

- :mod:`core.enterprises.applications` -- application intake, document checks, reading applications;
- :mod:`core.enterprises.review` -- the standing check, classification, approval and rejection (Art. 9);
- :mod:`core.enterprises.liaisons` -- liaison changes and filing (Art. 15);
- :mod:`core.enterprises.status` -- suspension, reinstatement, revocation and account (de)activation (Art. 22);
- :mod:`core.enterprises.directory` -- the bureaus' unit views and the public directory (Art. 23);
- :mod:`core.enterprises.common` -- shared errors, access checks, row helpers and :func:`find_active_unit`.

Contract (all modules):
- Every command runs in ONE tenant transaction (:func:`~core.db.engine.tenant_transaction`); accounts
  in the shared schema are opened or closed in that same transaction through
  :func:`~core.db.engine.as_platform`, so an approval or a revocation is all or nothing.
- Plugin scopes are worked out from the cached jurisdiction tree and activations *before* the
  transaction opens, so hooks can be called inside it without nesting transactions.
- Access: the reviewing bureau is a ``bureau_officer`` / ``province_admin`` whose subtree covers the
  unit's node; outside it a unit or application does not exist (404). A specialist acts on their own
  unit only. Liaison names and phones are returned to those two only and are never logged.
- ``status_changed_by`` / ``approved_by`` record ``username@node`` (the person and the deciding bureau).
"""

from __future__ import annotations

from core.enterprises.applications import (
    check_document,
    check_reviewing_node,
    get_application,
    get_document,
    list_applications,
    read_application,
    submit_application,
)
from core.enterprises.common import ROLE_LABEL, FieldError, find_active_unit, require_reviewer, unit_from_row
from core.enterprises.directory import directory, get_unit, list_units
from core.enterprises.liaisons import (
    ART15_BASIS,
    LIAISON_CHANGE_WORKING_DAYS,
    file_liaison,
    list_liaison_changes,
    open_liaison_change,
)
from core.enterprises.review import STANDING_STATUSES, check_standing, classify, review_application
from core.enterprises.status import change_status

__all__ = [
    "ART15_BASIS",
    "LIAISON_CHANGE_WORKING_DAYS",
    "ROLE_LABEL",
    "STANDING_STATUSES",
    "FieldError",
    "change_status",
    "check_document",
    "check_reviewing_node",
    "check_standing",
    "classify",
    "directory",
    "file_liaison",
    "find_active_unit",
    "get_application",
    "get_document",
    "get_unit",
    "list_applications",
    "list_liaison_changes",
    "list_units",
    "open_liaison_change",
    "read_application",
    "require_reviewer",
    "review_application",
    "submit_application",
    "unit_from_row",
]
