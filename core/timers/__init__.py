"""SLA timers: warnings before and breaches at due moments, fired once across worker processes.

PostgreSQL (the tenant's ``timers`` table) is the record; Valkey (or, in the embedded single-process
default, memory) only schedules. :mod:`core.timers.schedule` is what domain code calls.
"""
