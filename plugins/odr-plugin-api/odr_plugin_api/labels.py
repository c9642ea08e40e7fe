"""Labels and help of configuration fields, in Chinese (zh-CN) and English, taken from the config
Struct itself: the console builds its forms from them.

The convention: give each field ``msgspec.Meta(title=..., description=...)`` in Chinese, and the English
in ``extra={"title_en": ..., "description_en": ...}``::

    class ScoreConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
        settlement_weight: Annotated[float, msgspec.Meta(
            ge=0, le=1, title="和解率权重", description="和解率在总分中的占比（0..1）",
            extra={"title_en": "Settlement weight", "description_en": "Share of the score given to the settlement rate (0..1)"},
        )] = 0.5

A ``title`` or ``description`` written ``"中文 / English"`` (one " / ") is read as both languages too.
A language left out shows the other one; a field with no title shows its name. The JSON schema of the
configuration (:func:`odr_plugin_api.types.config_schema`) carries ``title`` / ``description`` (zh-CN)
and ``x-title-en`` / ``x-description-en`` (English) for every property.
"""

from __future__ import annotations

from typing import Any

import msgspec.inspect as mi

SEPARATOR = " / "


def bilingual(text: str | None, english: str | None = None) -> tuple[str, str]:
    """(zh-CN, English) of a title or description under the convention above ("" when missing)."""
    text = (text or "").strip()
    zh, en = text, ""
    if SEPARATOR in text:
        zh, en = (part.strip() for part in text.split(SEPARATOR, 1))
    if english:
        en = english.strip()
    return zh or en, en or zh


def _meta(t: Any) -> tuple[dict, dict]:
    """(json-schema extras, extra) of a field's Annotated metadata, outermost last."""
    schema: dict = {}
    extra: dict = {}
    while isinstance(t, mi.Metadata):
        schema = {**(t.extra_json_schema or {}), **schema}
        extra = {**(t.extra or {}), **extra}
        t = t.type
    return schema, extra


def english_extras(config_type: type | None) -> dict[str, dict[str, str]]:
    """Encoded field name -> ``{"x-title-en": ..., "x-description-en": ...}`` (only what is given),
    from ``extra={"title_en", "description_en"}`` or a "中文 / English" title or description."""
    if config_type is None:
        return {}
    out: dict[str, dict[str, str]] = {}
    for f in getattr(mi.type_info(config_type), "fields", ()):
        schema, extra = _meta(f.type)
        found = {}
        for key in ("title", "description"):
            given = extra.get(f"{key}_en")
            if given or SEPARATOR in str(schema.get(key, "")):
                found[f"x-{key}-en"] = bilingual(schema.get(key), given)[1]
        if found:
            out[f.encode_name] = found
    return out
