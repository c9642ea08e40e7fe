"""The contract checks of an ODR plugin, runnable without pytest.

Used by the pytest plugin (``pytest --odr-plugin NAME``) and by the platform's ``odr plugins check``.
Only :mod:`odr_plugin_api`, pluggy, msgspec and the standard library are used: nothing of the platform.

A :class:`Subject` is one plugin, found by its entry-point name in the group ``odr.plugins`` (or given
as an object). :func:`plan` lists the checks that apply to it; :meth:`Subject.run` runs one (after the
checks it needs) and returns a :class:`CheckResult` whose message says what is wrong and why.

Checks:
    entry_point      the entry point exists in ``odr.plugins`` (once) and loads
    plugin_info      ``odr_plugin_info`` returns a PluginInfo named like the entry point, with an
                     ``api_version`` the platform accepts
    imports          no import of the platform's packages (``core``, ``odr``, ``admin_ui``, ``tenants``)
    hooks            every ``odr_*`` function is a known, ``@hookimpl``-marked hook whose parameters are a
                     subset of the spec's, not keyword-only and without defaults; defaults are trylast
    families         the declared families and the implemented hooks match
    isolation        registers alone on a fresh ``pluggy.PluginManager("odr")`` (pluggy validation,
                     ``check_pending``)
    config           the config Struct decodes from ``{}`` (every field defaulted), round-trips through
                     msgspec JSON (also shown with its ``Secret`` fields masked and saved again) and has a
                     JSON schema
    calendar         ``odr_calendar_day`` over a whole year: DayInfo for the asked day or None, deterministic
    deadline_policy  ``odr_deadline_policy``: days 1..366, valid clocks, deterministic, due never before start
                     (counted on the mainland China calendar)
    classification   ``odr_classify_enterprise``: a declared class, deterministic
    scoring          ``odr_score_enterprise``: 0 <= score <= 100, deterministic, None indicators included
    isolated         run as the platform runs a vendor's plugin, in an isolated worker (no credentials, no
                     network for policy families, memory limit): each sample answered within the 250 ms
                     budget, the same as in-process next to another plugin's configuration, deterministic

Every answer is checked with :func:`odr_plugin_api.contracts.answer_problems`, the check the platform
itself applies to every answer (a violation there is treated like an exception).

The checks live in :mod:`pytest_odr.general_checks` and :mod:`pytest_odr.family_checks`, the
vocabulary (:class:`Subject`, :class:`CheckResult`, :class:`ContractError`) in :mod:`pytest_odr.subject`;
this module is the registry and the runner.
"""

from __future__ import annotations

from typing import Any, Iterable

from pytest_odr.family_checks import check_calendar, check_classification, check_deadline_policy, check_scoring
from pytest_odr.isolated_checks import check_isolated
from pytest_odr.general_checks import (
    check_config,
    check_entry_point,
    check_families,
    check_hooks,
    check_imports,
    check_isolation,
    check_plugin_info,
)
from pytest_odr.subject import (  # noqa: F401 (the kit's public names)
    ENTRY_POINT_GROUP,
    FAILED,
    HOOK_FAMILY,
    PASSED,
    SKIPPED,
    SPECS,
    Check,
    CheckResult,
    ContractError,
    Subject,
)


CHECKS: dict[str, Check] = {
    c.name: c
    for c in (
        Check("entry_point", f"the entry point exists in the group {ENTRY_POINT_GROUP!r} and loads", check_entry_point),
        Check("plugin_info", "odr_plugin_info returns a PluginInfo named like the entry point", check_plugin_info,
              needs=("entry_point",)),
        Check("imports", "imports nothing of the platform (core, odr, admin_ui, tenants): only odr_plugin_api",
              check_imports, needs=("entry_point",)),
        Check("hooks", "every odr_* function is a known hook with a subset of the spec's ordinary parameters",
              check_hooks, needs=("entry_point",)),
        Check("families", "the declared families match the implemented hooks", check_families, needs=("entry_point",)),
        Check("isolation", "registers alone on a fresh pluggy PluginManager('odr') with the odr hookspecs",
              check_isolation, needs=("entry_point",)),
        Check("config", "the config Struct decodes from {} and round-trips through msgspec JSON", check_config,
              needs=("entry_point",)),
        Check("calendar", "DayInfo of the asked day or None for a year of days, deterministic", check_calendar,
              needs=("entry_point",), hook="odr_calendar_day"),
        Check("deadline_policy", "days 1..366, valid clocks, deterministic, never due before the start",
              check_deadline_policy, needs=("entry_point",), hook="odr_deadline_policy"),
        Check("classification", "a declared class, deterministic", check_classification, needs=("entry_point",),
              hook="odr_classify_enterprise"),
        Check("scoring", "a score within 0..100, deterministic, None indicators included", check_scoring,
              needs=("entry_point",), hook="odr_score_enterprise"),
        Check("isolated", "answers in an isolated worker (no credentials, no network for policy families, memory"
              " limit) within the time budget, deterministically, seeing only its own configuration", check_isolated,
              needs=("entry_point", "plugin_info", "hooks")),
    )
}


def plan(subject: Subject) -> list[Check]:
    """The checks that apply: the general ones, and a family check for each hook the plugin has (none
    if the plugin cannot be loaded: ``entry_point`` fails then)."""
    try:
        hooks = set(subject.hook_names())
    except ContractError:
        hooks = set()
    return [c for c in CHECKS.values() if c.hook is None or c.hook in hooks]


def run_checks(name: str, plugin: Any = Subject._MISSING) -> list[CheckResult]:
    """Run every applicable check on the plugin ``name`` (its entry point, or ``plugin``)."""
    subject = Subject(name, plugin)
    return [subject.run(c) for c in plan(subject)]


def failures(results: Iterable[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.status == FAILED]
