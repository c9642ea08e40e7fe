"""Migrations applied to every tenant schema, run as the tenant role."""
