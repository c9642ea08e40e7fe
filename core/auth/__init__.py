"""Principals, roles, accounts, passwords (argon2) and JWT authentication."""
