"""One call of one plugin's implementation of a hook: the single place every hook call goes through.

Contract of :func:`call_impl` (used by every :class:`~core.pluginhost.host.PluginHost` call method):
1. **Least privilege**: the implementation gets a Scope holding only its own plugin's configuration
   (:func:`own_scope`), whatever the caller's scope holds; the other arguments are the hook's.
2. **Circuit breaker**: a plugin whose breaker is open at the scope's node is not called
   (:class:`PluginSkipped`); see :mod:`core.pluginhost.health`.
3. **Time budget** (:meth:`core.pluginhost.limits.PluginLimits.budget`): an isolated plugin that does
   not answer within it is killed (:class:`~core.pluginhost.isolation.PluginOverrun`); a trusted
   in-process plugin cannot be pre-empted, so its overrun is measured, logged and shown in its health
   record, and its answer stands (it neither counts as a failure nor trips the breaker).
4. **Isolation**: a plugin the host isolates is called in its worker process; its answer crosses
   the pipe as MessagePack and is converted back to the hook's declared return type.
5. Every failure (exception, overrun, dead worker) is counted in ``host.failures``, recorded in the
   health board (breaker) and logged by plugin, hook and kind only (no message: it may hold
   personal data), then raised to the caller, who moves on to the next implementation. A channel's
   :class:`~odr_plugin_api.DeliveryFailed` (the receiver refused; retried with back-off) is recorded
   but does not count towards the breaker; from an isolated channel it is raised again here with its
   message (which the contract keeps free of personal data).
6. :func:`accept_answer` is the seam where an answer comes back: it returns the answer as the
   platform will use it, or raises; it checks the answer against the hook's contract
   (:func:`odr_plugin_api.contracts.check_answer`: a :class:`~odr_plugin_api.ContractViolation` is a
   failure like any exception).
7. An in-process plugin's exception is logged with its traceback (frames and the exception's type; its
   message passed through :func:`scrub`), so that a vendor can find the line; frame locals never.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
import typing
from typing import TYPE_CHECKING, Any

import msgspec

from core.pluginhost.isolation import PluginOverrun, WorkerDied
from odr_plugin_api import DeliveryFailed, Scope, hookspecs
from odr_plugin_api.contracts import check_answer

if TYPE_CHECKING:
    import pluggy

    from core.pluginhost.host import PluginHost

log = logging.getLogger("core.pluginhost.host")


class PluginSkipped(RuntimeError):
    """The plugin's circuit breaker is open at this node: it was not called."""


class PluginFailed(RuntimeError):
    """An isolated plugin raised in its worker (``kind`` is the exception's type name)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(kind)


_OWN: dict[tuple[int, str], tuple[Scope, Scope]] = {}


def own_scope(scope: Scope, plugin: str) -> Scope:
    """``scope`` with only ``plugin``'s own configuration in it (memoised per scope object)."""
    key = (id(scope), plugin)
    hit = _OWN.get(key)
    if hit is not None and hit[0] is scope:
        return hit[1]
    mine = scope.configs.get(plugin)
    narrowed = Scope(tenant=scope.tenant, node_path=scope.node_path, configs={} if mine is None else {plugin: mine})
    if len(_OWN) > 8192:
        _OWN.clear()
    _OWN[key] = (scope, narrowed)
    return narrowed


_RETURNS: dict[str, Any] = {}


def return_type(hook: str) -> Any:
    """The declared return type of ``hook`` (from the hook specification)."""
    t = _RETURNS.get(hook)
    if t is None:
        t = _RETURNS[hook] = typing.get_type_hints(getattr(hookspecs, hook)).get("return", Any)
    return t


def accept_answer(host: "PluginHost", plugin: str, hook: str, answer: Any, *, isolated: bool) -> Any:
    """The answer of ``plugin`` to ``hook`` as the platform uses it, or raise. An isolated plugin's
    answer arrives as MessagePack builtins and is converted to the hook's return type
    (``msgspec.ValidationError`` when it does not fit)."""
    if isolated:
        answer = msgspec.convert(answer, return_type(hook), strict=False)
    check_answer(hook, answer, host.infos.get(plugin))
    return answer


def call_impl(host: "PluginHost", impl: "pluggy.HookImpl", hook: str, kwargs: dict[str, Any]) -> Any:
    """Call one implementation under the rules above; returns its answer (None: it declined)."""
    plugin = impl.plugin_name
    scope: Scope = kwargs["scope"]
    node = scope.node_path[-1] if scope.node_path else ""
    if not host.health.allow(plugin, scope.tenant, node, default=host.infos[plugin].default):
        raise PluginSkipped(plugin)
    budget = host.limits.budget(hook)
    worker = host.workers.get(plugin)
    # ``net`` (the checked outbound client) is not sent to an isolated worker: it builds its own
    args = {a: (own_scope(scope, plugin) if a == "scope" else kwargs[a]) for a in impl.argnames
            if not (worker is not None and a == "net")}
    try:
        if worker is not None:
            outcome = worker.call(hook, [args], budget)[0]
            if outcome.error == "DeliveryFailed":
                raise DeliveryFailed(outcome.detail or "DeliveryFailed")
            if outcome.error is not None:
                raise PluginFailed(outcome.error)
            answer = accept_answer(host, plugin, hook, outcome.value, isolated=True)
        else:
            started = time.perf_counter()
            answer = accept_answer(host, plugin, hook, impl.function(**args), isolated=False)
            elapsed = time.perf_counter() - started
            if elapsed > budget:  # cannot be pre-empted in-process: measured, shown, logged; the answer stands
                reason = f"{hook} overran its {budget * 1000:.0f} ms budget ({elapsed * 1000:.0f} ms, in-process: answer kept)"
                host.health.failed(plugin, scope.tenant, node, reason=reason, overrun=True, trip=False)
                log.warning("plugin %s at %s/%s: %s", plugin, scope.tenant, node, reason)
                return answer
    except PluginOverrun:
        record_failure(host, plugin, hook, scope, f"{hook} overran its {budget * 1000:.0f} ms budget"
                       " (worker killed)", overrun=True)
        raise
    except WorkerDied:
        record_failure(host, plugin, hook, scope, f"{hook}: the isolated worker died")
        raise
    except PluginFailed as exc:
        record_failure(host, plugin, hook, scope, f"{hook} raised {exc.kind}")
        raise
    except DeliveryFailed:  # the receiver refused (a retry with back-off follows): not the plugin's fault
        record_failure(host, plugin, hook, scope, f"{hook}: delivery failed (retried)", trip=False)
        raise
    except Exception as exc:
        record_failure(host, plugin, hook, scope, f"{hook} raised {type(exc).__name__}",
                       trace=None if worker is not None else scrubbed_traceback(exc))
        raise
    host.health.succeeded(plugin, scope.tenant, node)
    return answer


def call_impl_batch(host: "PluginHost", impl: "pluggy.HookImpl", hook: str, calls: list[dict[str, Any]]) -> list[tuple[Any, Exception | None]]:
    """:func:`call_impl` for several argument sets of one hook that share one scope (``calls[i]["scope"]``
    is the same object): an isolated plugin answers them all in one round trip to its worker, with a
    budget of the per-call budget times their number. Returns ``(answer, None)`` or ``(None, exception)``
    per argument set, in order; failures are recorded as by :func:`call_impl` (an overrun of the batch
    once)."""
    worker = host.workers.get(impl.plugin_name)
    if worker is None or not calls:
        out = []
        for kwargs in calls:
            try:
                out.append((call_impl(host, impl, hook, kwargs), None))
            except Exception as exc:
                out.append((None, exc))
        return out
    plugin = impl.plugin_name
    scope: Scope = calls[0]["scope"]
    node = scope.node_path[-1] if scope.node_path else ""
    if not host.health.allow(plugin, scope.tenant, node, default=host.infos[plugin].default):
        return [(None, PluginSkipped(plugin))] * len(calls)
    mine = own_scope(scope, plugin)
    budget = host.limits.budget(hook) * len(calls)
    try:
        outcomes = worker.call(hook, [{a: (mine if a == "scope" else kw[a]) for a in impl.argnames if a != "net"}
                                      for kw in calls], budget)
    except PluginOverrun as exc:
        record_failure(host, plugin, hook, scope, f"{hook} overran its {budget * 1000:.0f} ms budget for"
                       f" {len(calls)} calls (worker killed)", overrun=True)
        return [(None, exc)] * len(calls)
    except WorkerDied as exc:
        record_failure(host, plugin, hook, scope, f"{hook}: the isolated worker died")
        return [(None, exc)] * len(calls)
    out = []
    for outcome in outcomes:
        try:
            if outcome.error is not None:
                raise PluginFailed(outcome.error)
            out.append((accept_answer(host, plugin, hook, outcome.value, isolated=True), None))
        except Exception as exc:
            kind = exc.kind if isinstance(exc, PluginFailed) else type(exc).__name__
            record_failure(host, plugin, hook, scope, f"{hook} raised {kind}")
            out.append((None, exc))
    if any(exc is None for _, exc in out):
        host.health.succeeded(plugin, scope.tenant, node)
    return out


def record_failure(host: "PluginHost", plugin: str, hook: str, scope: Scope, reason: str, *, overrun: bool = False,
                   trip: bool = True, trace: str | None = None) -> None:
    """Count, record (towards the breaker unless ``trip`` is False) and log one failure of ``plugin`` in
    ``hook`` at the scope's node (with ``trace``, a :func:`scrubbed_traceback`, when there is one)."""
    host.failures[(plugin, hook)] += 1
    node = scope.node_path[-1] if scope.node_path else ""
    rec = host.health.failed(plugin, scope.tenant, node, reason=reason, overrun=overrun, trip=trip)
    # The plugin, hook, node and kind, and the scrubbed traceback: an exception's message may carry hook
    # arguments (personal data).
    log.error("plugin %s failed at %s/%s: %s; skipped for this call%s%s", plugin, scope.tenant, node, reason,
              "; circuit breaker open" if rec.breaker == "open" else "", f"\n{trace}" if trace else "")


_SCRUB = (
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "<e-mail>"),
    (re.compile(r"\d{5,}"), lambda m: "#" * len(m.group(0))),
)


def scrub(text: str) -> str:
    """``text`` with e-mail addresses and runs of five or more digits (phones, identity and account
    numbers) replaced: what a plugin failure's log may show of an exception's message."""
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


def scrubbed_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` for the log: every frame (file, line, function, source line) and the
    exception's type with its message passed through :func:`scrub` (the hook's arguments can hold
    personal data; frame locals are never shown)."""
    frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
    return f"Traceback (most recent call last):\n{scrub(frames)}{type(exc).__name__}: {scrub(str(exc))[:500]}"
