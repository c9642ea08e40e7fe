"""Statistics reports (issue 5), computed in SQL inside the tenant's schema from ``complaint_facts``.

One module per report (:mod:`.sql` the class table, :mod:`.states`, :mod:`.coverage`, :mod:`.merchants`,
:mod:`.hotspots`), the registry :data:`REPORTS` / :data:`SPECS` (:mod:`.registry`), one exporter for
CSV and XLSX (:mod:`.export`), coverage targets (:mod:`.targets`) and the API (:mod:`.api`)."""

from core.reports.registry import REPORTS, SPECS

__all__ = ["REPORTS", "SPECS"]
