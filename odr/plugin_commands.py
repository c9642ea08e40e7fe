"""``odr plugins list | show NAME | check [NAME ...]``: the installed plugins as this process's plugin
host discovered them (entry points in ``odr.plugins``, filtered by ``ODR_PLUGINS_ALLOW``).

Contract: ``list`` and ``show`` print JSON; ``check`` prints one line per contract check (pytest-odr's
``pytest_odr.checks``) and returns 1 if any failed, 2 when the vendor kit is not installed.
"""

from __future__ import annotations

import sys

import msgspec

from odr.running import print_json


_NOT_ALLOWED = "installed but not on the allow-list (ODR_PLUGINS_ALLOW): never loaded"


def show_plugin(host, name: str) -> int:
    """Print one plugin as JSON: its entry point and distribution, whether it is allowed and loaded, and
    for a loaded one its info, configuration (JSON schema, defaults; secret fields masked) and the hooks it implements. A
    plugin not on the allow-list is never loaded, so only what its distribution metadata says is shown."""
    from odr_plugin_api.secrets import mask_config
    from odr_plugin_api.types import config_schema

    d = host.discovered.get(name)
    if d is None:
        known = ", ".join(sorted(host.discovered)) or "none"
        print(f"no plugin {name!r} is installed (entry points in odr.plugins: {known})", file=sys.stderr)
        return 2
    if not d.allowed:
        status = _NOT_ALLOWED + ": its info, configuration and hooks are not shown"
    elif not d.loaded:
        status = f"allowed, but it failed to load: {d.error}"
    else:
        status = "allowed and loaded"
    out: dict = {"name": d.name, "distribution": d.distribution, "version": d.version, "allowed": d.allowed,
                 "loaded": d.loaded, "status": status, "error": d.error}
    info = d.info if d.loaded else None
    if info is not None:
        out["info"] = {"title": info.title, "description": info.description, "version": info.version,
                       "families": [f.value for f in info.families], "default": info.default,
                       "classes": list(info.classes)}
        out["config"] = None if info.config is None else {
            "type": info.config.__name__,
            "schema": config_schema(info.config),
            "default": mask_config(info.config, msgspec.to_builtins(info.config())),
        }
        plugin = host.pm.get_plugin(name)
        out["hooks"] = sorted(
            (
                {"hook": caller.name, "params": list(impl.argnames), "tryfirst": impl.tryfirst, "trylast": impl.trylast}
                for caller in host.pm.get_hookcallers(plugin) or []
                for impl in caller.get_hookimpls()
                if impl.plugin_name == name
            ),
            key=lambda h: h["hook"],
        )
    print_json(out)
    return 0


def check_plugins(host, names: list[str]) -> int:
    """Run pytest-odr's contract checks (``pytest_odr.checks``, no pytest needed) on the named plugins,
    or on every allowed one. A plugin not on the allow-list is not loaded, so not checked: naming one
    is a failure. Exit 1 if any check failed."""
    try:
        from pytest_odr import checks
    except ImportError:
        print("odr plugins check needs the pytest-odr distribution (the vendor kit): pip install pytest-odr",
              file=sys.stderr)
        return 2
    explicit = bool(names)
    if not explicit:
        names = sorted(n for n, d in host.discovered.items() if d.allowed)
        for d in sorted(host.discovered.values(), key=lambda d: d.name):
            if not d.allowed:
                print(f"{d.name}: not checked, {_NOT_ALLOWED}")
    counts = {checks.PASSED: 0, checks.FAILED: 0, checks.SKIPPED: 0}
    refused = 0
    for name in dict.fromkeys(names):
        d = host.discovered.get(name)
        if d is not None and not d.allowed:
            refused += 1
            print(f"{name}\n  FAIL  not checked: {_NOT_ALLOWED} (add it to ODR_PLUGINS_ALLOW, or run"
                  f" pytest --odr-plugin {name} where the vendor's package is installed)")
            continue
        print(name)
        for r in checks.run_checks(name):
            counts[r.status] += 1
            mark = {checks.PASSED: "ok", checks.FAILED: "FAIL", checks.SKIPPED: "skip"}[r.status]
            lines = r.message.splitlines() or [""]
            print(f"  {mark:<5} {r.check:<16} {lines[0]}".rstrip())
            for line in lines[1:]:
                print(f"  {'':<5} {'':<16} {line}")
    failed = counts[checks.FAILED] + refused
    print(f"odr plugins check: {len(dict.fromkeys(names))} plugin(s), {counts[checks.PASSED]} checks passed,"
          f" {failed} failed, {counts[checks.SKIPPED]} skipped")
    return 1 if failed else 0


def list_plugins(host) -> int:
    """Print every discovered plugin: distribution, version, allowed, loaded, error, default, families."""
    print_json(
        [
            {"name": d.name, "distribution": d.distribution, "version": d.version, "allowed": d.allowed,
             "loaded": d.loaded, "error": d.error, "default": bool(d.info and d.info.default),
             "families": [f.value for f in d.info.families] if d.info else []}
            for d in sorted(host.discovered.values(), key=lambda d: d.name)
        ]
    )
    return 0
