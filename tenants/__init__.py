"""Tenancy: provinces as tenants, each in its own PostgreSQL schema owned by its own role.

- :mod:`tenants.manifest`: the manifest format (TOML files in ``tenants/manifests/``).
- :mod:`tenants.onboarding`: create a tenant in one transaction (idempotent).
- :mod:`tenants.migrate`: bring the shared schema and every tenant schema to the latest migrations.
- :mod:`tenants.registry`: look tenants up (fail closed).
"""
