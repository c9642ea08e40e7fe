"""Evaluation runs (Art. 20-21), reproduction, publication (Art. 23) and exit proposals (Art. 22).

Contracts:

- A provincial admin defines periods (:mod:`core.evaluation.periods`) and runs evaluations of them. A run scores every active or suspended ODR unit
  of the province with the scoring plugin active for the unit's node (first answer among the plugins
  active there; a failing plugin is skipped, as everywhere), ranks the scored units within their class
  (competition ranking, highest score first) and stores, in ONE transaction: the run and its settings,
  per node the scoring plugins active there with their versions and configurations, and per unit its
  indicators (exactly the :class:`odr_plugin_api.Indicators` the plugin saw), score, parts, rank,
  Art. 21 candidacy and whether it fell below the exit threshold. Stored results are immutable.
- :func:`reproduce` scores a stored run again from its stored indicators with the stored plugins and
  configurations (whatever is configured now) and reports whether every score and part is identical.
- Publishing a run closes its period with that run as the period's result; a closed period takes no
  new runs (reproduce it instead). Published runs are what the public pages show.
- After a run, units below the threshold in ``exit_consecutive_periods`` contiguous periods of the same
  kind (each earlier period counted by its result: its final run, else its latest) are proposed for
  revocation on the Art. 22(3) ground, unless already proposed and undecided. Proposals can also be
  raised from a complaint or a spot check (:mod:`core.evaluation.proposals`); the reviewing bureau decides (revoke: the unit's status,
  accounts and timers change in the same transaction as the decision; or dismiss), with a note.

The service's public face; the work is split by responsibility: :mod:`core.evaluation.running` (a run
and its exit proposals), :mod:`core.evaluation.scoring` (indicators, scorers, ranks),
:mod:`core.evaluation.reading`, :mod:`core.evaluation.reproduction`, :mod:`core.evaluation.publication`.
"""

from __future__ import annotations

from core.evaluation.publication import publish, published, published_results  # noqa: F401
from core.evaluation.reading import get_evaluation, list_evaluations, result_filters, results  # noqa: F401
from core.evaluation.reproduction import reproduce  # noqa: F401
from core.evaluation.running import run_evaluation  # noqa: F401
