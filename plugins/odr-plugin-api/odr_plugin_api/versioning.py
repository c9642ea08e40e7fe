"""The plugin API's version and what a plugin may rely on from it.

``odr-plugin-api`` follows semantic versioning (see its CHANGELOG.md): a new major version may break
plugins, a new minor version only adds (hooks, Struct fields with defaults, helpers), a patch fixes.
A plugin states the version it was built against in ``PluginInfo.api_version`` (normally
``odr_plugin_api.API_VERSION`` at build time; ``""`` means 1.0, the API before versions were declared).
The platform loads it when :func:`compatible` says so: the same major version, and a minor version no
newer than the platform's (a plugin built for 1.3 may use what 1.2 lacks).
"""

from __future__ import annotations

API_VERSION = "1.1.0"
"""The version of this plugin API (equal to the ``odr-plugin-api`` distribution's version)."""


def _parse(version: str) -> tuple[int, int]:
    parts = version.strip().split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 and parts[1] else 0
    except ValueError:
        raise ValueError(f"api_version {version!r} is not a version such as '1.1' or '1.1.0'") from None


def incompatibility(plugin_api_version: str, platform_api_version: str = API_VERSION) -> str | None:
    """Why a plugin built against ``plugin_api_version`` cannot run on ``platform_api_version``, or
    None when it can (see the module docs)."""
    try:
        wanted = _parse(plugin_api_version or "1.0")
    except ValueError as exc:
        return str(exc)
    have = _parse(platform_api_version)
    if wanted[0] != have[0]:
        return (f"built for odr-plugin-api {plugin_api_version} (major version {wanted[0]}), but this platform"
                f" provides {platform_api_version} (major version {have[0]}): install a release of the plugin"
                f" built for odr-plugin-api {have[0]}.x")
    if wanted[1] > have[1]:
        return (f"built for odr-plugin-api {plugin_api_version}, newer than this platform's {platform_api_version}:"
                f" upgrade the platform, or install a release of the plugin built for {have[0]}.{have[1]} or older")
    return None


def compatible(plugin_api_version: str, platform_api_version: str = API_VERSION) -> bool:
    return incompatibility(plugin_api_version, platform_api_version) is None
