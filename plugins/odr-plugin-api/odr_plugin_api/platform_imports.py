"""Finding imports of the platform's own packages in a plugin's source: a plugin may import only
:mod:`odr_plugin_api` (and third-party libraries) of the platform; ``core``, ``odr``, ``admin_ui`` and
``tenants`` are internals that change without notice and hold the platform's credentials.

Used by the platform when it loads a plugin that is not shipped with it (refused when one is found)
and by the vendor kit's ``imports`` check. Reads the source only (``ast``): nothing is imported or run.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

PLATFORM_PACKAGES = ("core", "odr", "admin_ui", "tenants")
"""Top-level packages of the platform that no plugin may import."""


def _module_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        return [node.args[0].value]
    return []


def imports_in_source(text: str, filename: str = "<source>") -> list[str]:
    """``"FILE:LINE imports MODULE"`` for every import of a platform package in ``text`` (also inside
    functions, and ``importlib.import_module("core...")`` with a literal name)."""
    try:
        tree = ast.parse(text, filename)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        for name in _module_names(node):
            if name.split(".")[0] in PLATFORM_PACKAGES:
                found.append(f"{filename}:{node.lineno} imports {name}")
    return found


def package_files(module: str) -> list[Path]:
    """The source files of the top-level package (or module) of ``module``, found without importing it."""
    try:
        spec = importlib.util.find_spec(module.split(".")[0].split(":")[0])
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return sorted(p for where in spec.submodule_search_locations for p in Path(where).rglob("*.py"))
    return [Path(spec.origin)] if spec.origin and spec.origin.endswith(".py") else []


def platform_imports(module: str) -> list[str]:
    """Every import of a platform package in the package that holds ``module`` (an entry point's
    value such as ``acme_plugin`` or ``acme_plugin.hooks:plugin``)."""
    found = []
    for path in package_files(module):
        found += imports_in_source(path.read_text(errors="replace"), str(path))
    return found
