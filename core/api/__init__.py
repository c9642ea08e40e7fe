"""HTTP API controllers, one module per area; wired in :mod:`core.app`."""
