"""The vocabulary of the contract checks and the plugin under check.

Contract: a :class:`Subject` is one plugin, found by its entry-point name in the group ``odr.plugins``
(or given as an object); :meth:`Subject.run` runs one check after the checks it ``needs`` and returns a
:class:`CheckResult` (``passed``, ``failed`` with what is wrong and why, or ``skipped``). A check
function raises :class:`ContractError` for a breach and returns a short note otherwise. :data:`SPECS`
and :data:`HOOK_FAMILY` are read from :mod:`odr_plugin_api.hookspecs`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Callable

import msgspec

from odr_plugin_api import Family, PluginInfo, Scope, hookspecs


ENTRY_POINT_GROUP = "odr.plugins"
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
MAX_LISTED = 5

#: The hook specifications: name -> parameter names.
SPECS: dict[str, tuple[str, ...]] = {
    name: tuple(inspect.signature(fn).parameters)
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("odr_") and fn.__module__ == hookspecs.__name__
}
#: The family each hook belongs to (``odr_plugin_info`` belongs to all).
HOOK_FAMILY: dict[str, Family] = {
    "odr_calendar_day": Family.CALENDAR,
    "odr_deadline_policy": Family.DEADLINE_POLICY,
    "odr_classify_enterprise": Family.CLASSIFICATION,
    "odr_score_enterprise": Family.SCORING,
    "odr_check_enterprise_standing": Family.STANDING_CHECK,
    "odr_notify": Family.NOTIFICATION,
    "odr_channel_send": Family.CHANNEL,
}


class ContractError(Exception):
    """A check found the plugin in breach of the contract; the message says what and why."""


@dataclass(frozen=True)
class CheckResult:
    plugin: str
    check: str
    status: str  # passed, failed or skipped
    message: str = ""
    description: str = ""

    @property
    def ok(self) -> bool:
        return self.status != FAILED

    def report(self) -> str:
        """A few lines for a human: which plugin, which check, what the check wants, what is wrong."""
        head = f"ODR plugin {self.plugin!r}: contract check {self.check!r} {self.status}"
        if self.description:
            head += f" ({self.description})"
        if not self.message:
            return head
        return head + "\n" + "\n".join("  " + line for line in self.message.splitlines())


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    run: Callable[["Subject"], str | None]
    needs: tuple[str, ...] = ()
    hook: str | None = None  # a per-family check applies when the plugin implements this hook


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _problems(title: str, problems: list[str]) -> ContractError:
    listed = problems[:MAX_LISTED]
    more = f"\n- ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return ContractError(title + "\n" + "\n".join(f"- {p}" for p in listed) + more)


def _passed_args(fn: Callable[..., Any]) -> list[str]:
    """The parameters the platform passes: those pluggy sees (named, without default). Keyword-only ones
    are passed here too, so that the family checks can look past that fault (``hooks`` reports it)."""
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty:
            out.append(p.name)
    return out


def _call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    return fn(**{a: kwargs[a] for a in _passed_args(fn) if a in kwargs})


class Subject:
    """One plugin under test: ``name`` is its entry-point name; ``plugin`` an object to test instead
    of loading the entry point (then the ``entry_point`` check only says so)."""

    _MISSING: Any = object()

    def __init__(self, name: str, plugin: Any = _MISSING) -> None:
        self.name = name
        self._given = plugin is not Subject._MISSING
        self._plugin = plugin if self._given else None
        self._load_error: str | None = None
        self._loaded = self._given
        self.results: dict[str, CheckResult] = {}

    # -- what the checks look at -------------------------------------------------------------------
    def entry_points(self) -> list[EntryPoint]:
        seen: dict[tuple[str, str], EntryPoint] = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == self.name:
                seen.setdefault((ep.value, ep.dist.name if ep.dist else "?"), ep)
        return list(seen.values())

    @property
    def plugin(self) -> Any:
        """The plugin object (the entry point loaded once); :class:`ContractError` if it cannot be had."""
        if not self._loaded:
            self._loaded = True
            eps = self.entry_points()
            if not eps:
                installed = sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})
                self._load_error = (
                    f"no entry point named {self.name!r} in the group {ENTRY_POINT_GROUP!r} (is the distribution"
                    f" installed? declare it under [project.entry-points.\"{ENTRY_POINT_GROUP}\"] in pyproject.toml;"
                    f" installed: {', '.join(installed) or 'none'})"
                )
            elif len(eps) > 1:
                self._load_error = f"{len(eps)} entry points are named {self.name!r}: " + ", ".join(
                    f"{ep.value} (distribution {ep.dist.name if ep.dist else '?'})" for ep in eps
                ) + "; a plugin name must be unique"
            else:
                try:
                    self._plugin = eps[0].load()
                except Exception as exc:
                    self._load_error = f"loading {self.name} = {eps[0].value} failed: {type(exc).__name__}: {exc}"
        if self._load_error:
            raise ContractError(self._load_error)
        return self._plugin

    def hook_names(self) -> list[str]:
        plugin = self.plugin
        return sorted(a for a in dir(plugin) if a.startswith("odr_"))

    def hook(self, name: str) -> Callable[..., Any] | None:
        fn = getattr(self.plugin, name, None)
        return fn if callable(fn) else None

    def info(self) -> PluginInfo | None:
        """What ``odr_plugin_info`` returns if it is a PluginInfo (even a misnamed one), else None."""
        fn = self.hook("odr_plugin_info")
        if fn is None:
            return None
        try:
            info = _call(fn)
        except Exception:
            return None
        return info if isinstance(info, PluginInfo) else None

    def default_config(self) -> Any:
        info = self.info()
        if info is None or info.config is None:
            return None
        try:
            return msgspec.convert({}, info.config)
        except Exception:
            return None

    def scopes(self) -> tuple[Scope, Scope]:
        """A scope where the node has saved no configuration, and one with the default configuration."""
        path = ("100000", "100100")
        cfg = self.default_config()
        return (
            Scope(tenant="pytest-odr", node_path=path),
            Scope(tenant="pytest-odr", node_path=path, configs={self.name: cfg} if cfg is not None else {}),
        )

    # -- running -----------------------------------------------------------------------------------
    def run(self, check: str | Check) -> CheckResult:
        if isinstance(check, str):
            from pytest_odr.checks import CHECKS  # the registry is built from the checks, which need Subject

            check = CHECKS[check]
        if check.name in self.results:
            return self.results[check.name]
        for need in check.needs:
            if self.run(need).status == FAILED:
                result = CheckResult(self.name, check.name, SKIPPED,
                                     f"not run: the check {need!r} it needs did not pass", check.description)
                self.results[check.name] = result
                return result
        try:
            note = check.run(self)
        except ContractError as exc:
            result = CheckResult(self.name, check.name, FAILED, str(exc), check.description)
        except _Skip as exc:
            result = CheckResult(self.name, check.name, SKIPPED, str(exc), check.description)
        except Exception as exc:  # a bug of the kit must still name the plugin and the check
            result = CheckResult(self.name, check.name, FAILED,
                                 f"the check itself raised {type(exc).__name__}: {exc}", check.description)
        else:
            result = CheckResult(self.name, check.name, PASSED, note or "", check.description)
        self.results[check.name] = result
        return result


class _Skip(Exception):
    pass
