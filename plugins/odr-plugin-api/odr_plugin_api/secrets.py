"""Secret fields of a plugin's configuration Struct: write-only credentials (passwords, signing keys).

Mark a top-level field of your config Struct with :data:`Secret` (a ``str``; add constraints by nesting
``Annotated[Secret, msgspec.Meta(max_length=200)]``)::

    class MyConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
        endpoint: str = "https://gateway.example/send"
        app_secret: Secret = ""

The platform then never shows the value: wherever a configuration is output (API answers, the console's
form, the audit of configuration changes, the JSON schema, the ``odr`` command) a secret reads
:data:`SECRET_MASK` when it is set and ``""`` when it is empty. A save keeps the value in force when
the field is left out or sent as :data:`SECRET_MASK` (so a configuration read back can be saved as it
is), and replaces it with any other value (``""`` clears it). Your plugin receives the real value in
``scope.config(...)`` as before. Only top-level ``str`` fields may be secret.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import msgspec.inspect as mi

SECRET_MASK = "********"
"""How a secret that is set is shown; sent back in a save, it keeps the stored value."""

Secret = Annotated[
    str,
    msgspec.Meta(
        extra={"secret": True},
        extra_json_schema={
            "writeOnly": True,
            "format": "password",
            "description": f"Secret: never shown. Reads {SECRET_MASK!r} when set, '' when not; omit it or send"
                           f" {SECRET_MASK!r} to keep the value in force, '' to clear it.",
        },
    ),
]
"""A write-only configuration field (see the module docs)."""


def _is_secret(t: Any) -> bool:
    if isinstance(t, mi.Metadata):
        return bool((t.extra or {}).get("secret")) or _is_secret(t.type)
    if isinstance(t, mi.UnionType):
        return any(_is_secret(x) for x in t.types)
    return False


_FIELDS: dict[type, frozenset[str]] = {}


def secret_fields(config_type: type | None) -> frozenset[str]:
    """The encoded names of the top-level fields of ``config_type`` marked :data:`Secret`."""
    if config_type is None:
        return frozenset()
    found = _FIELDS.get(config_type)
    if found is None:
        info = mi.type_info(config_type)
        fields = getattr(info, "fields", ())
        found = _FIELDS[config_type] = frozenset(f.encode_name for f in fields if _is_secret(f.type))
    return found


def mask_value(value: Any) -> Any:
    """:data:`SECRET_MASK` for a set secret, the value itself when empty (``""`` or None)."""
    return SECRET_MASK if value not in (None, "") else value


def mask_config(config_type: type | None, config: dict[str, Any] | None) -> dict[str, Any] | None:
    """``config`` (builtins, as stored) with every secret field masked; a new dict, never the input."""
    if config is None:
        return None
    names = secret_fields(config_type)
    if not names:
        return dict(config)
    return {k: (mask_value(v) if k in names else v) for k, v in config.items()}


def keep_secrets(config_type: type | None, submitted: dict[str, Any] | None,
                 current: dict[str, Any] | None) -> dict[str, Any] | None:
    """What to save: ``submitted`` with every secret field that is left out or sent as
    :data:`SECRET_MASK` taken from ``current`` (the configuration in force), or left out when
    ``current`` has none (its default then applies)."""
    names = secret_fields(config_type)
    if submitted is None or not names:
        return submitted
    out = dict(submitted)
    for name in names:
        if name in out and out[name] != SECRET_MASK:
            continue
        out.pop(name, None)
        if current is not None and name in current:
            out[name] = current[name]
    return out


def changed_secrets(config_type: type | None, old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    """The secret fields whose value differs between two stored configurations (for the audit)."""
    return sorted(n for n in secret_fields(config_type) if ((old or {}).get(n) or "") != ((new or {}).get(n) or ""))


def mask_schema(config_type: type | None, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """A config JSON schema with the non-empty defaults of secret fields masked."""
    names = secret_fields(config_type)
    if not schema or not names:
        return schema
    defs = schema.get("$defs", {})
    ref = schema.get("$ref", "")
    root = defs.get(ref.split("/")[-1]) if ref.startswith("#/$defs/") else schema
    for name in names:
        prop = (root or {}).get("properties", {}).get(name)
        if prop is not None and "default" in prop:
            prop["default"] = mask_value(prop["default"])
    return schema
