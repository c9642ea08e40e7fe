"""Database access: the embedded server, the one engine and pool, and tenant-scoped transactions."""
