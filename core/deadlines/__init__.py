"""Deadlines: the active policy's plan counted on the active calendar, with a full explanation."""
