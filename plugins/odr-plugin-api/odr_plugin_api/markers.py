"""The pluggy markers of the ODR project. Plugins import ``hookimpl`` from :mod:`odr_plugin_api`."""

import pluggy

PROJECT_NAME = "odr"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
