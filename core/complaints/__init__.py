"""Complaints: intake, the ODR state machine, events (append-only), messages, attachments, ratings."""
