"""Load plugins from entry points (group ``odr.plugins``) behind an allow-list and call their hooks.

Contract:
- Every plugin, built-in or vendor, is a distribution with an entry point; the host registers them the
  same way. A plugin built for an incompatible plugin API (``PluginInfo.api_version``, see
  :mod:`odr_plugin_api.versioning`) is refused with the reason, and so is a plugin not shipped with
  the platform whose source imports the platform's internals (:mod:`odr_plugin_api.platform_imports`).
  Refused and broken plugins are listed by :attr:`PluginHost.load_failures` (``/health`` shows them).
  Built-in defaults (``PluginInfo.default``) mark their implementations ``trylast``, so any active
  plugin overrides them.
- A plugin is called only where it is *active*: defaults everywhere, others per tenant and node
  (see :mod:`core.pluginhost.activations`).
- Every call of an implementation goes through :func:`core.pluginhost.calling.call_impl`: it gets a
  Scope holding only its own configuration, runs within the hook's time budget, and is skipped while
  its circuit breaker is open at the node (:mod:`core.pluginhost.health`, :attr:`PluginHost.health`).
- A plugin that raises, overruns its budget, or whose answer breaks the hook's contract
  (:func:`odr_plugin_api.contracts.check_answer`, checked in :func:`core.pluginhost.calling.accept_answer`,
  the one place an implementation's answer comes back), is skipped for that call and counted in
  :attr:`PluginHost.failures`; the next implementation (ultimately the default) answers. An in-process
  failure is logged with its traceback (frames and exception type; the message with digit runs and
  e-mail addresses scrubbed). :meth:`PluginHost.first_answerer` also says which plugins failed before
  the answer (:class:`PluginFailure`), so a caller can record that a default answered in their place.
  If no implementation answers a "who decides" hook, :class:`PluginUnavailable` is raised (with the
  failures), which the API turns into a clear 503.
- Plugins of distributions outside :data:`BUILTIN_DISTRIBUTIONS` and not named in ``trusted``
  (``ODR_PLUGINS_TRUSTED``) are *isolated*: their hooks are called in a supervised worker process
  (:mod:`core.pluginhost.isolation`) with no credentials. Their module is still imported in this
  process once, at load, to read ``odr_plugin_info`` and the hook declarations; its hooks never run
  here. Call a hook whose active plugins may be isolated off the event loop (:meth:`PluginHost.off_loop`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Iterable

import msgspec
import pluggy

from core.pluginhost.calling import PluginFailed, call_impl, call_impl_batch, scrub
from core.pluginhost.health import HealthBoard
from core.pluginhost.isolation import IsolatedWorker, worker_for
from core.pluginhost.limits import NETWORK_FAMILIES, PluginLimits
from odr_plugin_api import PROJECT_NAME, PluginInfo, Scope, hookspecs
from odr_plugin_api.contracts import ContractViolation
from odr_plugin_api.platform_imports import platform_imports
from odr_plugin_api.versioning import incompatibility

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "odr.plugins"
BUILTIN_DISTRIBUTIONS = frozenset(
    {
        "odr-builtin-calendar",
        "odr-national-deadline",
        "odr-jinshan-policy",
        "odr-classification-schemes",
        "odr-scoring-formulas",
        "odr-builtin-standing",
        "odr-channel-email",
        "odr-channel-webhook",
    }
)


class PluginFailure(msgspec.Struct, frozen=True, kw_only=True):
    """One failed call of a plugin's hook as the bureau is shown it: which plugin, which hook, when,
    the error's type (``ContractViolation`` for an answer out of contract, with its problems in
    ``detail``; an exception's message is never kept, it could hold personal data) and how often that
    plugin's hook has failed in this process (``failures``, this one included)."""

    plugin: str
    hook: str
    error: str
    detail: str = ""
    at: dt.datetime
    failures: int = 1


class FirstAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """A "who decides" hook's answer, the plugin that gave it, and the active plugins that failed before
    it (empty when the first one answered)."""

    result: Any
    plugin: str
    failed: tuple[PluginFailure, ...] = ()


class PluginUnavailable(RuntimeError):
    """No active plugin could answer a hook (every implementation failed or none is active);
    ``failures`` says how each failed."""

    def __init__(self, hook: str, failed: list[str], failures: tuple[PluginFailure, ...] = ()):
        self.hook = hook
        self.failed = failed
        self.failures = failures
        super().__init__(f"no plugin could answer {hook}" + (f" (failed: {', '.join(failed)})" if failed else ""))


@dataclass(frozen=True)
class Discovered:
    name: str
    distribution: str
    version: str
    allowed: bool
    loaded: bool
    error: str | None = None
    info: PluginInfo | None = None
    isolated: bool = False


def names(setting: str) -> set[str]:
    return {a.strip() for a in setting.split(",") if a.strip()}


class PluginHost:
    def __init__(self, allow: str = "builtin", *, trusted: str = "", limits: PluginLimits | None = None) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.allow = names(allow)
        self.trusted = names(trusted)
        """Entry-point or distribution names the operator trusts to run in-process (ODR_PLUGINS_TRUSTED)."""
        self.limits = limits or PluginLimits()
        self.infos: dict[str, PluginInfo] = {}
        self.discovered: dict[str, Discovered] = {}
        self.failures: Counter[tuple[str, str]] = Counter()
        self.health = HealthBoard(self.limits)
        """Per plugin and node: failures, overruns, circuit breaker (see :mod:`core.pluginhost.health`)."""
        self.workers: dict[str, IsolatedWorker] = {}
        """The isolated plugins' workers, by plugin name."""
        self._executor: ThreadPoolExecutor | None = None

    # -- loading ---------------------------------------------------------------------------------
    def allowed(self, name: str, distribution: str) -> bool:
        if "*" in self.allow or name in self.allow:
            return True
        return "builtin" in self.allow and distribution in BUILTIN_DISTRIBUTIONS

    def runs_isolated(self, name: str, distribution: str) -> bool:
        """Whether a plugin is called in an isolated worker: not shipped here and not trusted."""
        return distribution not in BUILTIN_DISTRIBUTIONS and not ({name, distribution} & self.trusted)

    def load_entry_points(self) -> None:
        """Register every allowed entry point of the group; record refused and broken ones."""
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            if not self.allowed(ep.name, dist):
                self.discovered[ep.name] = Discovered(ep.name, dist, version, allowed=False, loaded=False)
                log.info("plugin %s (%s) installed but not on the allow-list: not loaded", ep.name, dist)
                continue
            if dist not in BUILTIN_DISTRIBUTIONS and (found := platform_imports(ep.value)):
                error = (f"imports the platform's internals, which plugins may not ({'; '.join(found[:3])}):"
                         " use only odr_plugin_api")
                log.error("plugin %s (%s) refused: %s", ep.name, dist, error)
                self.discovered[ep.name] = Discovered(ep.name, dist, version, True, False, error=error)
                continue
            isolate = ep.value if self.runs_isolated(ep.name, dist) else None
            try:
                info = self.register(ep.load(), name=ep.name, isolate=isolate)
                self.discovered[ep.name] = Discovered(ep.name, dist, version, True, True, info=info,
                                                      isolated=isolate is not None)
            except Exception as exc:  # a broken plugin never stops the platform
                log.error("plugin %s (%s) failed to load: %s", ep.name, dist, exc)
                self.discovered[ep.name] = Discovered(ep.name, dist, version, True, False, error=str(exc))

    def register(self, plugin: Any, *, name: str, isolate: str | None = None) -> PluginInfo:
        """Register ``plugin`` under ``name``; its ``odr_plugin_info`` must name it the same.

        ``isolate``: the import target (``module`` or ``module:attribute``, an entry point's value) of
        the plugin, to call its hooks in an isolated worker process that imports it from there."""
        info_impl = getattr(plugin, "odr_plugin_info", None)
        if info_impl is None:
            raise ValueError(f"plugin {name} has no odr_plugin_info hook")
        info = info_impl()
        if not isinstance(info, PluginInfo) or info.name != name:
            raise ValueError(f"plugin {name}: odr_plugin_info must return PluginInfo(name={name!r}, ...)")
        if why := incompatibility(info.api_version):
            raise ValueError(f"plugin {name}: {why}")
        if info.config is not None:
            try:
                info.config()
            except TypeError as exc:
                raise ValueError(f"plugin {name}: every config field needs a default ({exc})") from None
        kwonly = [
            attr
            for attr in dir(plugin)
            if attr.startswith("odr_")
            and callable(getattr(plugin, attr))
            and any(p.kind is p.KEYWORD_ONLY for p in inspect.signature(getattr(plugin, attr)).parameters.values())
        ]
        if kwonly:
            raise ValueError(
                f"plugin {name}: hook parameters must not be keyword-only (pluggy passes them by name"
                f" as ordinary parameters): {', '.join(kwonly)}"
            )
        self.pm.register(plugin, name=name)
        if info.default:
            eager = [
                caller.name
                for caller in self.pm.get_hookcallers(plugin) or []
                for impl in caller.get_hookimpls()
                if impl.plugin_name == name and not impl.trylast and caller.name != "odr_plugin_info"
            ]
            if eager:
                self.pm.unregister(plugin)
                raise ValueError(f"default plugin {name} must mark its hooks trylast: {', '.join(eager)}")
        self.pm.check_pending()
        self.infos[name] = info
        if isolate is not None:
            deny = not (set(info.families) & NETWORK_FAMILIES)
            self.workers[name] = worker_for(name, isolate, self.limits, deny_network=deny)
        return info

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.infos.pop(name, None)
        self.health.forget(name)
        worker = self.workers.pop(name, None)
        if worker is not None:
            worker.close()

    def close(self) -> None:
        """Stop the isolated workers and the thread pool that waits for them."""
        for worker in self.workers.values():
            worker.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # -- isolation -------------------------------------------------------------------------------
    def isolates_any(self, active: Iterable[str]) -> bool:
        """Whether any plugin in ``active`` runs in an isolated worker (its calls block for up to the budget)."""
        return bool(self.workers) and any(n in self.workers for n in active)

    def isolates_hook(self, hook: str, active: Iterable[str]) -> bool:
        """Whether an isolated plugin in ``active`` implements ``hook``."""
        return bool(self.workers) and any(i.plugin_name in self.workers for i in self._impls(hook, active))

    async def off_loop(self, active: Iterable[str], fn, /, *args, **kwargs):
        """``fn(*args, **kwargs)`` (code calling hooks synchronously): directly when every plugin in
        ``active`` runs in-process, else in the host's thread pool, so that waiting for an isolated
        worker never blocks the event loop (other provinces' requests go on meanwhile)."""
        if not self.isolates_any(active):
            return fn(*args, **kwargs)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="odr-plugin-call")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    @property
    def load_failures(self) -> list[Discovered]:
        """Allowed plugins that did not load (broken, refused for their imports or API version)."""
        return [d for d in self.discovered.values() if d.allowed and not d.loaded]

    @property
    def defaults(self) -> frozenset[str]:
        return frozenset(n for n, i in self.infos.items() if i.default)

    # -- configuration ---------------------------------------------------------------------------
    def decode_config(self, plugin: str, raw: dict | None) -> Any:
        """Validate ``raw`` against the plugin's config Struct, strictly (``"2"`` is no integer, as for
        the kit's checks); ``msgspec.ValidationError`` names the field."""
        info = self.infos[plugin]
        if info.config is None:
            if raw:
                raise msgspec.ValidationError(f"plugin {plugin} takes no configuration")
            return None
        return msgspec.convert(raw or {}, info.config)

    # -- calling ---------------------------------------------------------------------------------
    def _impls(self, hook: str, active: Iterable[str]) -> list[pluggy.HookImpl]:
        caller = getattr(self.pm.hook, hook)
        active = set(active)
        # pluggy calls the last registered first; tryfirst/trylast are already sorted in.
        return [i for i in reversed(caller.get_hookimpls()) if i.plugin_name in active]

    def has_active_impl(self, hook: str, active: Iterable[str]) -> bool:
        """Whether any plugin active in ``active`` implements ``hook``."""
        return bool(self._impls(hook, active))

    def call_first(self, hook: str, *, active: Iterable[str], scope: Scope, **kwargs: Any) -> tuple[Any, str]:
        """Call a "who decides" hook: first non-None answer of an active plugin, and who gave it."""
        return self.first_caller(hook, active=active)(scope=scope, **kwargs)

    def first_caller(self, hook: str, *, active: Iterable[str]):
        """:meth:`call_first` with the active implementations resolved once, for calling the same hook
        many times in one scope (e.g. scoring every unit of a node): ``caller(scope=..., **kwargs)``."""
        answer = self.first_answerer(hook, active=active)

        def caller(*, scope: Scope, **kwargs: Any) -> tuple[Any, str]:
            first = answer(scope=scope, **kwargs)
            return first.result, first.plugin

        return caller

    def first_answerer(self, hook: str, *, active: Iterable[str]):
        """Like :meth:`first_caller`, but ``caller(scope=..., **kwargs)`` returns a :class:`FirstAnswer`
        (the answer, who gave it, who failed before); :class:`PluginUnavailable` when none answered."""
        impls = self._impls(hook, active)

        def caller(*, scope: Scope, **kwargs: Any) -> FirstAnswer:
            failed: list[PluginFailure] = []
            kwargs["scope"] = scope
            for impl in impls:
                try:
                    result = call_impl(self, impl, hook, kwargs)
                except Exception as exc:
                    failed.append(self._failure(impl.plugin_name, hook, exc))
                    continue
                if result is not None:
                    return FirstAnswer(result=result, plugin=impl.plugin_name, failed=tuple(failed))
            raise PluginUnavailable(hook, [f.plugin for f in failed], tuple(failed))

        return caller

    def first_batch(self, hook: str, *, active: Iterable[str], scope: Scope,
                    calls: list[dict[str, Any]]) -> list[tuple[Any, str] | None]:
        """:meth:`call_first` for many argument sets in one scope (e.g. scoring every unit of a node):
        each implementation is asked about all the sets still unanswered at once (an isolated plugin
        in one round trip to its worker). Per set, ``(answer, plugin)`` or None when no plugin answered."""
        return [None if plugin is None else (answer, plugin)
                for answer, plugin, _ in self.first_batch_answers(hook, active=active, scope=scope, calls=calls)]

    def first_batch_answers(self, hook: str, *, active: Iterable[str], scope: Scope, calls: list[dict[str, Any]]
                            ) -> list[tuple[Any, str | None, tuple[PluginFailure, ...]]]:
        """:meth:`first_batch` that also says, per set, which plugins failed before the answer (as
        :meth:`first_answerer` does): ``(answer, plugin, failed)``, ``(None, None, failed)`` when none answered."""
        results: list[tuple[Any, str] | None] = [None] * len(calls)
        failed: list[list[PluginFailure]] = [[] for _ in calls]
        pending = list(range(len(calls)))
        for impl in self._impls(hook, active):
            if not pending:
                break
            answers = call_impl_batch(self, impl, hook, [{**calls[i], "scope": scope} for i in pending])
            still = []
            for i, (answer, exc) in zip(pending, answers):
                if exc is None and answer is not None:
                    results[i] = (answer, impl.plugin_name)
                else:
                    if exc is not None:
                        failed[i].append(self._failure(impl.plugin_name, hook, exc))
                    still.append(i)
            pending = still
        return [(r[0], r[1], tuple(f)) if r is not None else (None, None, tuple(f)) for r, f in zip(results, failed)]

    def call_all(self, hook: str, *, active: Iterable[str], scope: Scope, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every active implementation; failures are recorded and left out."""
        kwargs["scope"] = scope
        out = []
        for impl in self._impls(hook, active):
            try:
                out.append((impl.plugin_name, call_impl(self, impl, hook, kwargs)))
            except Exception:
                pass  # recorded by call_impl
        return out

    def call_plugin(self, hook: str, *, plugin: str, scope: Scope, **kwargs: Any) -> Any:
        """Call ``plugin``'s own implementation of ``hook`` (a delivery channel's send). Unlike the
        other calls its exception is raised to the caller (after being counted), who decides what a
        failure means (a retry); :class:`LookupError` when the plugin is not loaded or lacks the hook,
        :class:`~core.pluginhost.calling.PluginSkipped` while its circuit breaker is open at the node."""
        impls = [i for i in self._impls(hook, {plugin})]
        if not impls:
            raise LookupError(f"plugin {plugin} is not loaded or has no {hook}")
        kwargs["scope"] = scope
        return call_impl(self, impls[0], hook, kwargs)

    def _failure(self, plugin: str, hook: str, exc: Exception) -> PluginFailure:
        """What the bureau is shown of a failed call (already counted and logged by
        :func:`core.pluginhost.calling.call_impl`)."""
        detail = "; ".join(exc.problems) if isinstance(exc, ContractViolation) else ""
        error = exc.kind if isinstance(exc, PluginFailed) else type(exc).__name__
        return PluginFailure(plugin=plugin, hook=hook, error=error, detail=scrub(detail)[:500],
                             at=dt.datetime.now(dt.timezone.utc), failures=self.failures[(plugin, hook)])
