"""Migrations of the shared ``odr`` schema: audit rows written before secret configuration fields were
write-only get those values masked (the built-in channels' and the vendor example's credentials).

Since then :func:`core.pluginhost.activations.save_activation` writes masked audit rows itself, and the
audit endpoint masks on reading for every loaded plugin's ``Secret`` fields; this rewrites the stored
past so that no database copy or backup keeps them either."""
from core.db.migrations import sql_migration

ID = "0003"
DESCRIPTION = "mask the secret configuration values in plugin_activation_audit (odr_webhook, odr_email, acme_sms_gateway)"

SECRET_FIELDS = (("odr_webhook", "secret"), ("odr_email", "password"), ("acme_sms_gateway", "app_secret"))
"""(plugin, field) of the configuration secrets known when this migration was written."""


def _masked(column: str, field: str) -> str:
    return (f"CASE WHEN jsonb_typeof({column}->'config') = 'object'"
            f" AND coalesce({column}->'config'->>'{field}', '') NOT IN ('', '********')"
            f" THEN jsonb_set({column}, ARRAY['config', '{field}'], '\"********\"') ELSE {column} END")


def mask_statements() -> list[str]:
    """One UPDATE per (plugin, field): idempotent, touches only rows holding a value."""
    return [
        f"UPDATE plugin_activation_audit SET old = {_masked('old', field)}, new = {_masked('new', field)}"
        f" WHERE plugin = '{plugin}'"
        f" AND (coalesce(old->'config'->>'{field}', '') NOT IN ('', '********')"
        f" OR coalesce(new->'config'->>'{field}', '') NOT IN ('', '********'))"
        for plugin, field in SECRET_FIELDS
    ]


forwards = sql_migration(ID, DESCRIPTION, *mask_statements())
