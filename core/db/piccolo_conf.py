"""Piccolo's configuration module (``PICCOLO_CONF``): the platform's one engine."""

from core.db.engine import ENGINE as DB  # noqa: F401
