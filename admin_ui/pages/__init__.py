"""The console's pages, one module per area; each exposes ``HANDLERS`` for :mod:`admin_ui.app`."""
