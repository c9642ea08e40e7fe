"""The checks every plugin gets: its entry point, ``odr_plugin_info``, the hooks it implements, its
families, registration alone on a fresh plugin manager, and its config Struct.
"""

from __future__ import annotations

import inspect

import msgspec
import pluggy

from odr_plugin_api import PROJECT_NAME, Family, PluginInfo, hookspecs
from odr_plugin_api.platform_imports import PLATFORM_PACKAGES, package_files, platform_imports
from odr_plugin_api.secrets import keep_secrets, mask_config, secret_fields
from odr_plugin_api.versioning import incompatibility
from odr_plugin_api.types import config_schema
from pytest_odr.subject import HOOK_FAMILY, SPECS, ContractError, Subject, _call, _problems, _short, _Skip


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
    if why := incompatibility(info.api_version):
        problems.append(f"PluginInfo.api_version: the platform would refuse the plugin, {why}")
    if problems:
        raise _problems("odr_plugin_info does not describe the plugin correctly:", problems)
    declared = f"odr-plugin-api {info.api_version}" if info.api_version else "no api_version (taken as 1.0)"
    return f"{info.name} {info.version}: {info.title}; built for {declared}"


def check_imports(s: Subject) -> str | None:
    """No import of the platform's packages: what the platform refuses when it loads the plugin."""
    if s._given:
        module = getattr(inspect.getmodule(s.plugin), "__name__", "") or getattr(s.plugin, "__module__", "")
    else:
        module = s.entry_points()[0].value
    found = platform_imports(module) if module else []
    if found:
        raise _problems(
            f"the plugin imports the platform's internals ({', '.join(PLATFORM_PACKAGES)}), which the platform"
            " refuses to load: use only odr_plugin_api (and third-party libraries)", found)
    return f"{len(package_files(module))} source files of {module.split('.')[0].split(':')[0]} import nothing of the platform"


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
    if info.address not in ("", "email", "phone"):
        problems.append(f"PluginInfo.address is {info.address!r}: use 'email', 'phone' or '' (a configured endpoint)")
    if info.address and Family.CHANNEL not in declared:
        problems.append("PluginInfo.address is set but the plugin is not a delivery channel")
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
        if msgspec.convert(raw, cfg_type) != default:
            problems.append("the defaults, saved as JSON and validated again as the platform does, change")
    except (msgspec.EncodeError, msgspec.DecodeError, TypeError) as exc:
        problems.append(f"the config does not round-trip through msgspec JSON: {type(exc).__name__}: {exc}")
    try:
        config_schema(cfg_type)
    except Exception as exc:
        problems.append(f"no JSON schema can be made of {cfg_type.__name__} (the admin form needs one): {exc}")
    secrets = sorted(secret_fields(cfg_type))
    if secrets:  # read back masked and saved again as it is, a configuration must not change
        raw = msgspec.to_builtins(default)
        odd = [n for n in secrets if not isinstance(raw.get(n), (str, type(None)))]
        if odd:
            problems.append(f"Secret fields must be str: {', '.join(odd)}")
        else:
            try:
                again = msgspec.convert(keep_secrets(cfg_type, mask_config(cfg_type, raw), raw), cfg_type)
                if again != default:
                    problems.append("the defaults, shown with secrets masked and saved again, change")
            except msgspec.ValidationError as exc:
                problems.append(f"the defaults, shown with secrets masked and saved again, are refused: {exc}")
    if problems:
        raise _problems(f"the config Struct {cfg_type.__name__} breaks the configuration contract:", problems)
    shown = msgspec.json.encode(mask_config(cfg_type, msgspec.to_builtins(default))).decode()
    shown = shown if len(shown) <= 200 else shown[:197] + '...'
    return f"{cfg_type.__name__} defaults: {shown}" + (f" (write-only secrets: {', '.join(secrets)})" if secrets else "")
