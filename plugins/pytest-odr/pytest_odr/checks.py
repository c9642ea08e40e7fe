"""The contract checks of an ODR plugin, runnable without pytest.

Used by the pytest plugin (``pytest --odr-plugin NAME``) and by the platform's ``odr plugins check``.
Only :mod:`odr_plugin_api`, pluggy, msgspec and the standard library are used: nothing of the platform.

A :class:`Subject` is one plugin, found by its entry-point name in the group ``odr.plugins`` (or given
as an object). :func:`plan` lists the checks that apply to it; :meth:`Subject.run` runs one (after the
checks it needs) and returns a :class:`CheckResult` whose message says what is wrong and why.

Checks:
    entry_point      the entry point exists in ``odr.plugins`` (once) and loads
    plugin_info      ``odr_plugin_info`` returns a PluginInfo named like the entry point
    hooks            every ``odr_*`` function is a known, ``@hookimpl``-marked hook whose parameters are a
                     subset of the spec's, not keyword-only and without defaults; defaults are trylast
    families         the declared families and the implemented hooks match
    isolation        registers alone on a fresh ``pluggy.PluginManager("odr")`` (pluggy validation,
                     ``check_pending``)
    config           the config Struct decodes from ``{}`` (every field defaulted), round-trips through
                     msgspec JSON and has a JSON schema
    calendar         ``odr_calendar_day`` over a whole year: DayInfo for the asked day or None, deterministic
    deadline_policy  ``odr_deadline_policy``: days >= 0, valid clocks, deterministic, due never before start
    classification   ``odr_classify_enterprise``: a declared class, deterministic
    scoring          ``odr_score_enterprise``: 0 <= score <= 100, deterministic, None indicators included
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Callable, Iterable

import msgspec
import pluggy

from odr_plugin_api import (
    PROJECT_NAME,
    ClassificationResult,
    DayInfo,
    DeadlineClock,
    DeadlinePlan,
    Family,
    PluginInfo,
    Scope,
    ScoreResult,
    hookspecs,
)
from odr_plugin_api.types import config_schema
from pytest_odr import samples

ENTRY_POINT_GROUP = "odr.plugins"
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
MAX_PERIOD_DAYS = 366
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
        check = CHECKS[check] if isinstance(check, str) else check
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


# -- the checks --------------------------------------------------------------------------------------
def check_entry_point(s: Subject) -> str | None:
    if s._given:
        raise _Skip("the plugin object was given directly, not found through an entry point")
    s.plugin  # raises ContractError with the reason
    ep = s.entry_points()[0]
    return f"{ep.name} = {ep.value} (distribution {ep.dist.name if ep.dist else '?'})"


def check_plugin_info(s: Subject) -> str | None:
    fn = s.hook("odr_plugin_info")
    if fn is None:
        raise ContractError("the plugin has no odr_plugin_info hook: the platform refuses a plugin without it")
    try:
        info = _call(fn)
    except Exception as exc:
        raise ContractError(f"odr_plugin_info raised {type(exc).__name__}: {exc}") from None
    if not isinstance(info, PluginInfo):
        raise ContractError(f"odr_plugin_info returned {_short(info)}, not an odr_plugin_api.PluginInfo")
    problems = []
    if info.name != s.name:
        problems.append(
            f"odr_plugin_info names the plugin {info.name!r} but its entry point is named {s.name!r}:"
            " they must be equal (the platform refuses the plugin)"
        )
    if not info.version:
        problems.append("PluginInfo.version is empty")
    if not info.title:
        problems.append("PluginInfo.title is empty")
    bad = [f for f in info.families if not isinstance(f, Family)]
    if bad:
        problems.append(f"PluginInfo.families holds {_short(bad)}: use odr_plugin_api.Family members")
    if not info.families:
        problems.append("PluginInfo.families is empty: declare the families the plugin implements")
    if len(set(info.families)) != len(info.families):
        problems.append("PluginInfo.families lists a family twice")
    if any(not isinstance(c, str) or not c for c in info.classes) or len(set(info.classes)) != len(info.classes):
        problems.append(f"PluginInfo.classes must be distinct non-empty codes, got {_short(info.classes)}")
    if problems:
        raise _problems("odr_plugin_info does not describe the plugin correctly:", problems)
    return f"{info.name} {info.version}: {info.title}"


def check_hooks(s: Subject) -> str | None:
    info = s.info()
    problems = []
    names = s.hook_names()
    for name in names:
        fn = s.hook(name)
        if fn is None:
            problems.append(f"{name} is not a function")
            continue
        if name not in SPECS:
            problems.append(
                f"{name} is not a hook of odr_plugin_api.hookspecs (known: {', '.join(sorted(SPECS))}):"
                " the platform would never call it"
            )
            continue
        if getattr(fn, f"{PROJECT_NAME}_impl", None) is None:
            problems.append(f"{name} is not marked @hookimpl (from odr_plugin_api import hookimpl): pluggy ignores it")
        spec = SPECS[name]
        for p in inspect.signature(fn).parameters.values():
            if p.kind is p.KEYWORD_ONLY:
                problems.append(
                    f"{name}: parameter {p.name!r} is keyword-only; hook parameters must be ordinary parameters"
                    " (pluggy passes them by name; the platform refuses keyword-only ones)"
                )
            elif p.kind is p.POSITIONAL_ONLY:
                problems.append(f"{name}: parameter {p.name!r} is positional-only; the platform passes it by name")
            elif p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                problems.append(f"{name}: *{p.name} gets nothing; name the parameters you need ({', '.join(spec)})")
                continue
            if p.name not in spec:
                problems.append(
                    f"{name}: parameter {p.name!r} is not a parameter of the hook (the spec has: {', '.join(spec) or 'none'})"
                )
            elif p.default is not p.empty:
                problems.append(
                    f"{name}: parameter {p.name!r} has a default; pluggy never passes a parameter with a default,"
                    " so it would always keep it"
                )
        opts = getattr(fn, f"{PROJECT_NAME}_impl", None) or {}
        if info is not None and info.default and name != "odr_plugin_info" and not opts.get("trylast"):
            problems.append(f"{name}: a built-in default (PluginInfo.default=True) must be @hookimpl(trylast=True)")
    if not [n for n in names if n != "odr_plugin_info"]:
        problems.append("the plugin implements no hook besides odr_plugin_info")
    if problems:
        raise _problems("the plugin's hook functions break the hook contract:", problems)
    return ", ".join(names)


def check_families(s: Subject) -> str | None:
    info = s.info()
    if info is None:
        raise ContractError("odr_plugin_info returns no PluginInfo (see the check 'plugin_info')")
    implemented = {HOOK_FAMILY[n] for n in s.hook_names() if n in HOOK_FAMILY and s.hook(n)}
    declared = set(info.families)
    problems = [
        f"implements {hook} but does not declare Family.{HOOK_FAMILY[hook].name} in PluginInfo.families"
        for hook in sorted(HOOK_FAMILY)
        if HOOK_FAMILY[hook] in implemented - declared
    ]
    problems += [
        f"declares the family {f.value!r} but implements no {next(h for h, fam in HOOK_FAMILY.items() if fam is f)}"
        for f in sorted(declared - implemented, key=lambda f: f.value)
        if isinstance(f, Family)
    ]
    if info.classes and Family.CLASSIFICATION not in declared:
        problems.append("PluginInfo.classes is set but the plugin is not a classification scheme")
    if problems:
        raise _problems("PluginInfo.families does not match the hooks the plugin implements:", problems)
    return ", ".join(sorted(f.value for f in declared))


def check_isolation(s: Subject) -> str | None:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(s.plugin, name=s.name)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ContractError(f"pluggy refuses the plugin on a fresh PluginManager({PROJECT_NAME!r}): {exc}") from None
    try:
        infos = pm.hook.odr_plugin_info()
    except Exception as exc:
        raise ContractError(f"odr_plugin_info raised {type(exc).__name__} when called through pluggy: {exc}") from None
    if len(infos) != 1 or not isinstance(infos[0], PluginInfo) or infos[0].name != s.name:
        raise ContractError(f"called through pluggy, odr_plugin_info answered {_short(infos)}")
    hooks = sorted(c.name for c in pm.get_hookcallers(s.plugin) or [])
    return "registered alone; hooks: " + ", ".join(hooks)


def check_config(s: Subject) -> str | None:
    info = s.info()
    if info is None:
        raise ContractError("odr_plugin_info returns no PluginInfo (see the check 'plugin_info')")
    cfg_type = info.config
    if cfg_type is None:
        return "the plugin takes no configuration"
    if not (isinstance(cfg_type, type) and issubclass(cfg_type, msgspec.Struct)):
        raise ContractError(f"PluginInfo.config is {_short(cfg_type)}, not a msgspec.Struct type")
    problems = []
    try:
        default = msgspec.convert({}, cfg_type)
    except msgspec.ValidationError as exc:
        raise ContractError(
            f"{cfg_type.__name__} does not decode from {{}} ({exc}): every field needs a default, because a node"
            " where the bureau saved nothing uses the defaults"
        ) from None
    try:
        constructed = cfg_type()
        if constructed != default:
            problems.append(f"{cfg_type.__name__}() differs from the Struct decoded from {{}}")
    except TypeError as exc:
        problems.append(f"{cfg_type.__name__}() fails: {exc}")
    try:
        encoded = msgspec.json.encode(default)
        back = msgspec.json.decode(encoded, type=cfg_type)
        if back != default:
            problems.append(f"the defaults do not round-trip through JSON: {encoded.decode()} decodes to {_short(back)}")
        raw = msgspec.json.decode(encoded)
        if msgspec.convert(raw, cfg_type, strict=False) != default:
            problems.append("the defaults, saved as JSON and validated again as the platform does, change")
    except (msgspec.EncodeError, msgspec.DecodeError, TypeError) as exc:
        problems.append(f"the config does not round-trip through msgspec JSON: {type(exc).__name__}: {exc}")
    try:
        config_schema(cfg_type)
    except Exception as exc:
        problems.append(f"no JSON schema can be made of {cfg_type.__name__} (the admin form needs one): {exc}")
    if problems:
        raise _problems(f"the config Struct {cfg_type.__name__} breaks the configuration contract:", problems)
    shown = msgspec.json.encode(default).decode()
    return f"{cfg_type.__name__} defaults: {shown if len(shown) <= 200 else shown[:197] + '...'}"


def _family_calls(
    s: Subject, hook: str, inputs: Iterable[dict[str, Any]], validate: Callable[[dict[str, Any], Any], list[str]]
) -> tuple[int, int, list[str]]:
    """Call ``hook`` with each input under both scopes, twice: collect the validation problems, the
    non-deterministic answers and the differences between no saved config and the default config."""
    fn = s.hook(hook)
    assert fn is not None
    bare, configured = s.scopes()
    problems: list[str] = []
    answered = calls = 0
    for kwargs in inputs:
        shown = ", ".join(f"{k}={_short(v, 80)}" for k, v in kwargs.items())
        try:
            first = _call(fn, scope=configured, **kwargs)
            again = _call(fn, scope=configured, **kwargs)
            unconfigured = _call(fn, scope=bare, **kwargs)
        except Exception as exc:
            problems.append(f"{hook}({shown}) raised {type(exc).__name__}: {exc}")
            continue
        calls += 1
        if first is not None:
            answered += 1
        problems += [f"{hook}({shown}): {p}" for p in validate(kwargs, first)]
        if first != again:
            problems.append(
                f"{hook}({shown}) is not deterministic: the same input gave {_short(first)}, then {_short(again)}"
            )
        elif unconfigured != first:
            problems.append(
                f"{hook}({shown}) answers {_short(unconfigured)} where no config is saved but {_short(first)} with"
                f" the default config: read it with scope.config({s.name!r}, YourConfig())"
            )
    return calls, answered, problems


def check_calendar(s: Subject) -> str | None:
    days = samples.calendar_days()

    def validate(kwargs: dict[str, Any], got: Any) -> list[str]:
        if got is None:
            return []
        if not isinstance(got, DayInfo):
            return [f"returned {_short(got)}, not a DayInfo or None"]
        out = []
        if got.day != kwargs["day"]:
            out.append(f"returned the DayInfo of {got.day} (DayInfo.day must be the asked day)")
        if not isinstance(got.working, bool):
            out.append(f"DayInfo.working is {_short(got.working)}, not a bool")
        if not got.reason:
            out.append("DayInfo.reason is empty: say why the day is (not) a working day")
        return out

    calls, answered, problems = _family_calls(s, "odr_calendar_day", ({"day": d} for d in days), validate)
    if problems:
        raise _problems(f"odr_calendar_day breaks the calendar contract over {samples.CALENDAR_YEAR}:", problems)
    return f"{answered} of {len(days)} days of {samples.CALENDAR_YEAR} answered, the rest deferred"


def _weekday_due(start: dt.datetime, days: int, clock: DeadlineClock, rollover: bool) -> dt.datetime:
    """The platform's counting convention on a Monday-to-Friday calendar: the start day is not counted,
    due at the end of the last day; a natural-day period may roll over to the next working day."""
    local = (start if start.tzinfo else start.replace(tzinfo=samples.TZ)).astimezone(samples.TZ)
    day = last = local.date()
    counted = 0
    while counted < days:
        day += dt.timedelta(days=1)
        if clock is DeadlineClock.WORKING_DAYS and day.weekday() >= 5:
            continue
        counted += 1
        last = day
    if clock is DeadlineClock.NATURAL_DAYS and rollover:
        while last.weekday() >= 5:
            last += dt.timedelta(days=1)
    return dt.datetime.combine(last, dt.time(23, 59, 59), samples.TZ)


def check_deadline_policy(s: Subject) -> str | None:
    def validate(kwargs: dict[str, Any], plan: Any) -> list[str]:
        if plan is None:
            return []
        if not isinstance(plan, DeadlinePlan):
            return [f"returned {_short(plan)}, not a DeadlinePlan or None"]
        out = []
        if not plan.policy or not plan.version:
            out.append("DeadlinePlan.policy and .version must name the policy")
        start = kwargs["request"].start
        for milestone in ("contact", "close"):
            days = getattr(plan, f"{milestone}_days")
            clock = getattr(plan, f"{milestone}_clock")
            if not isinstance(clock, DeadlineClock):
                out.append(f"{milestone}_clock is {_short(clock)}, not a DeadlineClock")
                continue
            if isinstance(days, bool) or not isinstance(days, int):
                out.append(f"{milestone}_days is {_short(days)}, not a whole number of days")
            elif days < 0:
                out.append(f"{milestone}_days is {days}: a period cannot be negative")
            elif days > MAX_PERIOD_DAYS:
                out.append(f"{milestone}_days is {days}: more than {MAX_PERIOD_DAYS} days is no plausible ODR deadline")
            else:
                due = _weekday_due(start, days, clock, bool(plan.holiday_rollover))
                local = (start if start.tzinfo else start.replace(tzinfo=samples.TZ)).astimezone(samples.TZ)
                if due < local:
                    out.append(f"{milestone} due {due.isoformat()} is before the start {local.isoformat()}")
        return out

    requests = samples.DEADLINE_REQUESTS
    calls, answered, problems = _family_calls(
        s, "odr_deadline_policy", ({"request": r} for r in requests), validate
    )
    if calls and not answered:
        problems.append("returned None for every sample request: a deadline policy must answer (None defers to the next policy)")
    if problems:
        raise _problems(f"odr_deadline_policy breaks the deadline-policy contract ({len(requests)} sample requests):", problems)
    return f"{answered} of {len(requests)} sample requests answered"


def check_classification(s: Subject) -> str | None:
    info = s.info()
    classes = tuple(info.classes) if info is not None else ()

    def validate(kwargs: dict[str, Any], got: Any) -> list[str]:
        if got is None:
            return []
        if not isinstance(got, ClassificationResult):
            return [f"returned {_short(got)}, not a ClassificationResult or None"]
        out = []
        if not got.scheme or not got.code:
            out.append("ClassificationResult.scheme and .code must not be empty")
        elif classes and got.code not in classes:
            out.append(f"class {got.code!r} is not among the declared classes {', '.join(classes)} (PluginInfo.classes)")
        return out

    facts = samples.ENTERPRISE_FACTS
    calls, answered, problems = _family_calls(s, "odr_classify_enterprise", ({"facts": f} for f in facts), validate)
    if calls and not answered:
        problems.append("returned None for every sample unit: a classification scheme must answer")
    if problems:
        raise _problems(f"odr_classify_enterprise breaks the classification contract ({len(facts)} sample units):", problems)
    declared = f"classes {', '.join(classes)}" if classes else "no classes declared (PluginInfo.classes): codes not checked"
    return f"{answered} of {len(facts)} sample units classified; {declared}"


def check_scoring(s: Subject) -> str | None:
    def validate(kwargs: dict[str, Any], got: Any) -> list[str]:
        if got is None:
            return []
        if not isinstance(got, ScoreResult):
            return [f"returned {_short(got)}, not a ScoreResult or None"]
        score = got.score
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            return [f"score is {_short(score)}, not a finite number"]
        out = []
        if not 0 <= score <= 100:
            out.append(f"score {score} is outside 0..100")
        bad = {k: v for k, v in got.parts.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)}
        if bad:
            out.append(f"parts {_short(bad)} are not finite numbers")
        return out

    indicators = samples.INDICATORS
    calls, answered, problems = _family_calls(
        s, "odr_score_enterprise", ({"indicators": i} for i in indicators), validate
    )
    if calls and not answered:
        problems.append("returned None for every sample: a scoring formula must answer")
    if problems:
        raise _problems(f"odr_score_enterprise breaks the scoring contract ({len(indicators)} sample indicator sets):", problems)
    return f"{answered} of {len(indicators)} sample indicator sets scored"


CHECKS: dict[str, Check] = {
    c.name: c
    for c in (
        Check("entry_point", f"the entry point exists in the group {ENTRY_POINT_GROUP!r} and loads", check_entry_point),
        Check("plugin_info", "odr_plugin_info returns a PluginInfo named like the entry point", check_plugin_info,
              needs=("entry_point",)),
        Check("hooks", "every odr_* function is a known hook with a subset of the spec's ordinary parameters",
              check_hooks, needs=("entry_point",)),
        Check("families", "the declared families match the implemented hooks", check_families, needs=("entry_point",)),
        Check("isolation", "registers alone on a fresh pluggy PluginManager('odr') with the odr hookspecs",
              check_isolation, needs=("entry_point",)),
        Check("config", "the config Struct decodes from {} and round-trips through msgspec JSON", check_config,
              needs=("entry_point",)),
        Check("calendar", "DayInfo of the asked day or None for a year of days, deterministic", check_calendar,
              needs=("entry_point",), hook="odr_calendar_day"),
        Check("deadline_policy", "days >= 0, valid clocks, deterministic, never due before the start",
              check_deadline_policy, needs=("entry_point",), hook="odr_deadline_policy"),
        Check("classification", "a declared class, deterministic", check_classification, needs=("entry_point",),
              hook="odr_classify_enterprise"),
        Check("scoring", "a score within 0..100, deterministic, None indicators included", check_scoring,
              needs=("entry_point",), hook="odr_score_enterprise"),
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
