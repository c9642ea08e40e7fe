"""Notifications: recorded in the tenant's ``notifications`` table, pushed live to connected clients
(:mod:`core.notifications.bus`) and handed to vendor plugins through the ``odr_notify`` hook
(:mod:`core.notifications.deliver`). Payloads never carry a consumer's personal data."""
