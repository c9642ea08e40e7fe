"""Form handling shared by the pages: submitted form -> typed request Struct, and errors -> the field
they belong to (shown next to that field).

Contract:
- :func:`read_form` returns the submitted fields as a plain dict of strings (uploads as
  :class:`~litestar.datastructures.UploadFile`), without the CSRF field.
- :func:`to_struct` converts such a dict to a request Struct of the service layer (the API's own
  types, so the UI validates exactly as the API does): blank optional text becomes absent, listed
  checkboxes become booleans. It raises ``msgspec.ValidationError`` like the API.
- :func:`field_errors` maps an error of the service layer to ``{field: message}``: a
  ``FieldError``'s field, msgspec's ``- at `$.field``` / ``missing required field `field```, or a
  ``"field: message"`` prefix of a ValueError; anything else goes under ``"_form"``.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

import msgspec
from litestar import Request
from litestar.datastructures import UploadFile

from admin_ui.session import CSRF_FIELD

_AT = re.compile(r" - at `\$\.?([^`]*)`$")
_MISSING = re.compile(r"missing required field `([^`]+)`")
_PREFIX = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z0-9_\[\]]+)*): (.+)$", re.S)


async def read_form(request: Request) -> dict[str, Any]:
    form = await request.form()
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key == CSRF_FIELD:
            continue
        if isinstance(value, UploadFile) and not value.filename:
            continue  # an empty file input
        if key in out and not isinstance(value, UploadFile):
            existing = out[key]
            out[key] = (existing if isinstance(existing, list) else [existing]) + [value]
        else:
            out[key] = value
    return out


def to_struct(data: dict[str, Any], kind: type, *, checkboxes: Iterable[str] = (), keep_blank: Iterable[str] = ()) -> Any:
    """``data`` converted to ``kind`` (non-strict: "3" -> 3, "true" -> True), blanks dropped."""
    clean: dict[str, Any] = {}
    keep = set(keep_blank)
    for key, value in data.items():
        if isinstance(value, str):
            value = value.strip()
            if value == "" and key not in keep:
                continue
        clean[key] = value
    for box in checkboxes:
        clean[box] = str(clean.get(box, "")).lower() in ("on", "true", "1", "yes")
    return msgspec.convert(clean, kind, strict=False)


_FRIENDLY = (
    (re.compile(r"^Expected `\w+` matching regex .*$"), "格式不正确 / wrong format"),
    (re.compile(r"^Expected `str` of length >= (\d+)$"), "至少 {0} 个字符 / at least {0} characters"),
    (re.compile(r"^Expected `str` of length <= (\d+)$"), "最多 {0} 个字符 / at most {0} characters"),
    (re.compile(r"^Expected `(?:int|float)` >= (\S+)$"), "不能小于 {0} / must be at least {0}"),
    (re.compile(r"^Expected `(?:int|float)` > (\S+)$"), "必须大于 {0} / must be greater than {0}"),
    (re.compile(r"^Expected `(?:int|float)` <= (\S+)$"), "不能大于 {0} / must be at most {0}"),
    (re.compile(r"^Expected `int`, got `\w+`$"), "请输入整数 / a whole number is required"),
    (re.compile(r"^Expected `(?:float|number)`, got `\w+`$"), "请输入数字 / a number is required"),
    (re.compile(r"^Invalid enum value .*$"), "不是可选的值 / not one of the choices"),
    (re.compile(r"^Expected `array` of length >= (\d+)$"), "至少 {0} 项 / at least {0} items"),
)


def friendly(message: str) -> str:
    """msgspec's validation wording in plain words (both languages); other messages unchanged."""
    for pattern, text in _FRIENDLY:
        match = pattern.match(message.strip())
        if match:
            return text.format(*match.groups())
    return message


def field_errors(exc: Exception) -> dict[str, str]:
    """``{field: message}`` for an error of the service layer (see the module contract); msgspec's
    wording is made plain (:func:`friendly`)."""
    return {k: friendly(v) for k, v in _field_errors(exc).items()}


def _field_errors(exc: Exception) -> dict[str, str]:
    field = getattr(exc, "field", None)
    if isinstance(field, str) and field:
        return {field.split(".")[-1]: getattr(exc, "message", None) or str(exc)}
    message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    if isinstance(exc, msgspec.ValidationError):
        match = _AT.search(message)
        if match and match.group(1):
            return {match.group(1).split(".")[-1].split("[")[0]: _AT.sub("", message)}
        missing = _MISSING.search(message)
        if missing:
            return {missing.group(1): "required / 必填"}
        return {"_form": message}
    match = _PREFIX.match(message)
    if match:
        name = match.group(1).split(".")[-1]
        return {name: match.group(2)}
    return {"_form": message}
