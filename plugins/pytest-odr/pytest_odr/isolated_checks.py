"""The ``isolated`` check: the plugin run as the platform runs a vendor's plugin, in an isolated worker
process (:mod:`odr_plugin_api.sandbox`): a clean environment (no credentials, no ``ODR_*`` variable),
a scratch directory, a memory limit, no network for policy families, and a time budget per call.

For each policy hook the plugin implements (calendar, deadline policy, classification, scoring) it
calls the hook on the family's samples in the worker, one call at a time, and fails when a call

- does not answer within the budget (:data:`BUDGET_MS`, the platform's default ``ODR_PLUGIN_BUDGET_MS``)
  twice in a row (a call over budget is tried once more on a fresh worker: a busy CI machine),
- raises in the worker (e.g. it reads an environment variable, a file outside its package, the
  network, or another plugin's configuration: a plugin gets only its own),
- answers differently than in-process with other plugins' configurations next to its own (a plugin
  must not depend on them: on the platform it never sees them),
- answers differently when asked the same again (all samples in one batch, as the platform batches).

Channel, notification and standing-check plugins are only started and loaded in a worker here (their
calls need the receiver); their calls run under the same limits with network allowed.
"""

from __future__ import annotations

import time
import typing
from typing import Any

import msgspec

from odr_plugin_api import Family, Scope, hookspecs
from odr_plugin_api.sandbox import IsolatedWorker, PluginOverrun, WorkerDied
from pytest_odr import samples
from pytest_odr.subject import ContractError, Subject, _call, _passed_args, _problems, _short, _Skip

BUDGET_MS = 250.0
"""The platform's default time budget of one policy hook call (ODR_PLUGIN_BUDGET_MS)."""
NETWORK_FAMILIES = frozenset({Family.CHANNEL, Family.NOTIFICATION, Family.STANDING_CHECK})
DECOY = "acme_other_plugin"
"""Another plugin whose configuration sits next to the plugin's own in the in-process comparison."""


def _inputs() -> dict[str, list[dict[str, Any]]]:
    return {
        "odr_calendar_day": [{"day": d} for d in samples.calendar_days()],
        "odr_deadline_policy": [{"request": r} for r in samples.DEADLINE_REQUESTS],
        "odr_classify_enterprise": [{"facts": f} for f in samples.ENTERPRISE_FACTS],
        "odr_score_enterprise": [{"indicators": i} for i in samples.INDICATORS],
    }


def check_isolated(s: Subject) -> str | None:
    eps = s.entry_points()
    if s._given or len(eps) != 1:
        raise _Skip("the plugin was given as an object, not an entry point: it cannot be imported in a worker")
    info = s.info()
    if info is None:
        raise _Skip("no PluginInfo (see the plugin_info check)")
    worker = IsolatedWorker(s.name, eps[0].value, deny_network=not (set(info.families) & NETWORK_FAMILIES))
    try:
        return _run(s, worker)
    finally:
        worker.close()


def _run(s: Subject, worker: IsolatedWorker) -> str:
    _, configured = s.scopes()
    decoyed = Scope(tenant=configured.tenant, node_path=configured.node_path,
                    configs={**configured.configs, DECOY: {"api_key": "decoy-secret"}})
    budget = BUDGET_MS / 1000
    problems: dict[str, list[str]] = {}
    calls = 0
    slowest = 0.0
    try:
        worker.start()  # loading is not counted against the budget
    except WorkerDied as exc:
        raise ContractError(f"it does not load in an isolated worker ({exc}): does importing it need an"
                            " environment variable, the network or a file outside its package?") from None
    for hook, inputs in _inputs().items():
        fn = s.hook(hook)
        if fn is None:
            continue
        returns = typing.get_type_hints(getattr(hookspecs, hook))["return"]
        names = _passed_args(fn)
        args = [{k: v for k, v in {"scope": configured, **kw}.items() if k in names} for kw in inputs]
        first = []
        for kw, a in zip(inputs, args):
            shown = ", ".join(f"{k}={_short(v, 80)}" for k, v in kw.items())
            started = time.perf_counter()
            try:
                try:
                    outcome = worker.call(hook, [a], budget)[0]
                except PluginOverrun:  # once more, on a fresh worker: the machine may have been busy
                    worker.start()
                    started = time.perf_counter()
                    outcome = worker.call(hook, [a], budget)[0]
            except PluginOverrun:
                problems.setdefault("over budget", []).append(f"{hook}({shown}) gave no answer within its {BUDGET_MS:.0f} ms budget in the isolated"
                                " worker (the platform kills the worker and lets the default decide)")
                first.append(None)
                continue
            except WorkerDied:
                problems.setdefault("worker died", []).append(f"{hook}({shown}): the isolated worker died (memory limit? os._exit?)")
                first.append(None)
                continue
            slowest = max(slowest, time.perf_counter() - started)
            calls += 1
            if outcome.error is not None:
                problems.setdefault("raised isolated", []).append(f"{hook}({shown}) raised {outcome.error} in the isolated worker (no environment,"
                                " no network, only its own configuration)")
                first.append(None)
                continue
            got = msgspec.convert(outcome.value, returns, strict=False)
            first.append(got)
            try:
                there = _call(fn, scope=decoyed, **kw)
            except Exception as exc:
                problems.setdefault("raised in-process", []).append(f"{hook}({shown}) raised {type(exc).__name__} in-process with another plugin's"
                                " configuration next to its own")
                continue
            if there != got:
                problems.setdefault("differs", []).append(f"{hook}({shown}) answers {_short(got)} isolated but {_short(there)} in-process next"
                                " to another plugin's configuration: it must depend on its own configuration only")
        try:
            again = worker.call(hook, args, budget * len(args))  # the platform batches: one round trip
        except (PluginOverrun, WorkerDied) as exc:
            problems.setdefault("batch failed", []).append(f"{hook}: the batch of {len(args)} calls failed in the isolated worker ({type(exc).__name__})")
            continue
        for kw, before, outcome in zip(inputs, first, again):
            after = None if outcome.error else msgspec.convert(outcome.value, returns, strict=False)
            if before is not None and after != before:
                shown = ", ".join(f"{k}={_short(v, 80)}" for k, v in kw.items())
                problems.setdefault("not deterministic", []).append(f"{hook}({shown}) is not deterministic in the isolated worker: {_short(before)},"
                                f" then {_short(after)}")
    if problems:  # the first of each kind, so that every kind of problem is named
        listed = [f"{items[0]}" + (f" (and {len(items) - 1} more like it)" if len(items) > 1 else "")
                  for items in problems.values()]
        raise _problems(f"{sum(map(len, problems.values()))} problem(s) running it isolated as the platform runs a"
                        " vendor's plugin:", listed)
    limits = ", ".join(worker.ready.limits) if worker.ready else ""
    missing = f"; the system refused {', '.join(worker.ready.missing)}" if worker.ready and worker.ready.missing else ""
    return f"{calls} calls answered in an isolated worker ({limits}{missing}); slowest {slowest * 1000:.1f} ms of {BUDGET_MS:.0f} ms"
