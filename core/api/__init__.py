"""HTTP API controllers, one module per area; listed in :mod:`core.api.routes` and mounted by the
composition root (:mod:`odr.app`)."""
