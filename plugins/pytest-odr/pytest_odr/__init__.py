"""pytest-odr: the vendor kit of the ODR platform.

``pytest_odr.checks`` holds the plugin contract checks and needs no pytest (the platform's
``odr plugins check`` runs the same checks); ``pytest_odr.plugin`` is the pytest plugin (entry point
``pytest11``) that turns them into tests for the plugins named with ``--odr-plugin`` or the
``odr_plugins`` ini option.
"""

__version__ = "1.1.0"
