"""Migrations of the shared ``odr`` schema (platform tables)."""
