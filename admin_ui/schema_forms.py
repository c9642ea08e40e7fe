"""Forms generated from a plugin's configuration Struct (its JSON Schema, ``odr_plugin_api.types.config_schema``).

Contract:
- :func:`fields` turns the schema into field descriptions for the ``config_fields`` macro: one per
  property, with its widget (number, checkbox, select, text, lines, json), constraints (min, max,
  step, length, pattern) for the browser, the value in force and the default. Input names are
  ``cfg.<property>``. Its ``title`` and ``help`` (``{"zh": ..., "en": ...}`` or None) come from the
  config Struct itself (``msgspec.Meta(title=..., description=...)`` under the convention of
  :mod:`odr_plugin_api.labels`); the form shows them before the console's own ``cfg.<property>``
  label and the raw name.
- A secret property (``"writeOnly": true`` in the schema, ``odr_plugin_api.Secret``) is a password
  input that never carries a value: the field says only whether a secret is set (``set``). Submitted
  empty it is left out of the configuration (the service keeps the value in force); its ``clear``
  checkbox (``cfg.<property>.clear``) sends ``""``.
- :func:`parse` turns a submitted form back into the configuration dict, converting each value to its
  schema type; values that cannot be converted give ``{property: message}`` errors. The plugin's own
  validation (``PluginHost.decode_config``, run by the service on save) stays the authority: its
  errors are mapped back to the property they name by :func:`attach_error`.
"""

from __future__ import annotations

import json
from typing import Any

from odr_plugin_api.labels import bilingual

PREFIX = "cfg."


def _root(schema: dict) -> dict:
    ref = schema.get("$ref")
    if ref and ref.startswith("#/$defs/"):
        return schema["$defs"][ref.split("/")[-1]]
    return schema


def _resolve(prop: dict, defs: dict) -> dict:
    ref = prop.get("$ref")
    if ref and ref.startswith("#/$defs/"):
        return {**defs.get(ref.split("/")[-1], {}), **{k: v for k, v in prop.items() if k != "$ref"}}
    return prop


def _shape(prop: dict, defs: dict) -> tuple[dict, bool]:
    """(the property's own schema, nullable) with ``anyOf [X, null]`` unwrapped."""
    prop = _resolve(prop, defs)
    variants = prop.get("anyOf")
    if variants:
        non_null = [_resolve(v, defs) for v in variants if v.get("type") != "null"]
        nullable = len(non_null) < len(variants)
        if len(non_null) == 1:
            return {**non_null[0], **{k: v for k, v in prop.items() if k != "anyOf"}}, nullable
        return {**prop, "type": "object"}, nullable
    return prop, False


def _widget(prop: dict) -> str:
    if prop.get("writeOnly") or prop.get("format") == "password":
        return "secret"
    if "enum" in prop:
        return "select"
    kind = prop.get("type")
    if kind == "boolean":
        return "checkbox"
    if kind in ("integer", "number"):
        return "number"
    if kind == "string":
        return "text"
    if kind == "array" and _resolve(prop.get("items", {}), {}).get("type") in ("string", "integer", "number"):
        return "lines"
    return "json"


def fields(schema: dict | None, current: dict | None) -> list[dict]:
    """Field descriptions for the form (see the module contract)."""
    if not schema:
        return []
    defs = schema.get("$defs", {})
    root = _root(schema)
    required = set(root.get("required", []))
    out = []
    for name, raw in root.get("properties", {}).items():
        prop, nullable = _shape(raw, defs)
        widget = _widget(prop)
        value = (current or {}).get(name, prop.get("default"))
        secret_set = False
        if widget == "secret":  # never rendered: only whether one is set (the API shows it masked)
            secret_set, value = value not in (None, ""), ""
        if widget == "lines":
            shown: Any = "\n".join(str(v) for v in (value or []))
        elif widget == "json":
            shown = "" if value is None else json.dumps(value, ensure_ascii=False, indent=1)
        else:
            shown = value
        # the property's own title and help, never those of a Struct it refers to (its class name, docstring)
        title = bilingual(raw.get("title"), raw.get("x-title-en"))
        help_ = bilingual(raw.get("description"), raw.get("x-description-en"))
        out.append({
            "name": name,
            "title": {"zh": title[0], "en": title[1]} if any(title) else None,
            "help": {"zh": help_[0], "en": help_[1]} if any(help_) else None,
            "input": PREFIX + name,
            "widget": widget,
            "value": shown,
            "set": secret_set,
            "default": None if widget == "secret" else prop.get("default"),
            "options": [str(v) for v in prop.get("enum", [])],
            "min": prop.get("minimum", prop.get("exclusiveMinimum")),
            "max": prop.get("maximum", prop.get("exclusiveMaximum")),
            "step": "1" if prop.get("type") == "integer" else "any",
            "minlength": prop.get("minLength"),
            "maxlength": prop.get("maxLength"),
            "pattern": prop.get("pattern"),
            "required": name in required and not nullable,
            "nullable": nullable,
            "item_type": _resolve(prop.get("items", {}), defs).get("type") if widget == "lines" else None,
        })
    return out


def parse(schema: dict | None, form: dict[str, Any]) -> tuple[dict | None, dict[str, str]]:
    """(configuration dict, errors) from the submitted ``cfg.*`` inputs."""
    if not schema:
        return None, {}
    config: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields(schema, None):
        raw = form.get(f["input"])
        if f["widget"] == "checkbox":
            config[f["name"]] = str(raw or "").lower() in ("on", "true", "1", "yes")
            continue
        if f["widget"] == "secret":  # kept unless replaced (a new value) or cleared (the checkbox)
            if isinstance(raw, str) and raw != "":
                config[f["name"]] = raw
            elif str(form.get(f["input"] + ".clear", "")).lower() in ("on", "true", "1", "yes"):
                config[f["name"]] = ""
            continue
        text = raw.strip() if isinstance(raw, str) else ""
        if text == "":
            if f["nullable"]:
                config[f["name"]] = None
            continue  # the default applies
        try:
            config[f["name"]] = _convert(f, text)
        except ValueError as exc:
            errors[f["name"]] = str(exc)
    return config, errors


def _convert(f: dict, text: str) -> Any:
    widget = f["widget"]
    if widget == "number":
        try:
            return int(text) if f["step"] == "1" else float(text)
        except ValueError:
            raise ValueError("a whole number is required / 请输入整数" if f["step"] == "1" else "a number is required / 请输入数字") from None
    if widget == "lines":
        items = [line.strip() for line in text.splitlines() if line.strip()]
        if f["item_type"] in ("integer", "number"):
            try:
                return [int(i) if f["item_type"] == "integer" else float(i) for i in items]
            except ValueError:
                raise ValueError("one number per line / 每行一个数字") from None
        return items
    if widget == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno}) / JSON格式有误") from None
    return text


def attach_error(errors: dict[str, str], schema: dict | None) -> dict[str, str]:
    """Move a ``_form`` error that names a property (e.g. a ``__post_init__`` check) to that property."""
    message = errors.get("_form")
    if not message or not schema:
        return errors
    for name in _root(schema).get("properties", {}):
        if message.startswith(name) or f"`{name}`" in message:
            return {name: message}
    return errors
