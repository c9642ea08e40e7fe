"""Hostile input refused at the door, naming the field: the one place where every request's path, query
and body are checked before any handler sees them (API and console, authenticated or not).

Contract (:class:`InputLimits`, app-level middleware after authentication, so an anonymous caller of a
protected path still gets 401 first; its errors are answered by the route's own handlers: JSON with
``field`` for the API, the error page for the console):
- no NUL character (``\\u0000``, ``%00``) in the path, a query parameter's name or value, a JSON string
  or key, a form field's name or value or an uploaded file's name (PostgreSQL refuses NUL in text);
- JSON bodies nested at most :data:`MAX_JSON_DEPTH` deep (checked on the raw bytes, before decoding);
- integers in a JSON body, in ``int`` path parameters and in query parameters declared ``int`` fit a
  64-bit signed integer (PostgreSQL's ``bigint``);
- a query value at most :data:`MAX_QUERY_CHARS` characters, a JSON or form string (or key) at most
  :data:`MAX_TEXT_CHARS` (fields have their own, smaller limits on top).
A request breaking one is answered 400 naming the offending field (``field``: the query parameter, the
path parameter, the dotted body path such as ``items[2].name``, or ``path``), before any work.

Every body that is not a form is taken for JSON (whatever its ``Content-Type``: some handlers decode
it without looking). Cost: a JSON body is decoded here only when a cheap scan of its bytes says it may break a rule (an
escaped NUL, a run of 19 digits, more than :data:`MAX_JSON_DEPTH` brackets, a body longer than
:data:`MAX_TEXT_CHARS`). A form body is parsed here (and kept for the handler, never parsed twice) only
where it would be parsed anyway: console pages and handlers declaring a form body.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

import msgspec
from litestar import Request
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects in a JSON body (a top-level object is depth 1)."""
MAX_TEXT_CHARS = 65_536
"""Longest string (or object key) in a JSON body or form field."""
MAX_QUERY_CHARS = 2_048
"""Longest query parameter value."""
INT_MIN, INT_MAX = -(2**63), 2**63 - 1

_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
_LONG_DIGITS = re.compile(rb"\d{19,}")
_INTEGER = re.compile(r"^[+-]?\d+$")
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _refuse(field: str, message: str, source: str) -> ValidationException:
    return ValidationException(detail=f"{field}: {message}", extra=[{"key": field, "message": message, "source": source}])


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``body`` nests arrays and objects deeper than ``limit`` (strings skipped)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for token in _TOKENS.finditer(body):
        c = token.group()
        if c in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif c in (b"]", b"}"):
            depth -= 1
    return False


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, scalar or key) of a decoded JSON value, iteratively (no recursion)."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                at = f"{where}.{key}" if where else str(key)
                yield at, key
                stack.append((at, inner))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", inner) for i, inner in enumerate(item))
        else:
            yield where, item


def text_problem(value: str, limit: int = MAX_TEXT_CHARS) -> str | None:
    """What is wrong with one text value (NUL, too long), or None."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which is not accepted in text"
    if len(value) > limit:
        return f"is {len(value)} characters long; at most {limit} are accepted"
    return None


def json_problem(body: bytes) -> tuple[str, str] | None:
    """``(field, message)`` for the first rule a JSON body breaks, or None (also for a body that is not
    JSON at all: the handler's decoding says so, naming ``body``)."""
    if json_too_deep(body):
        return "body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    if b"\\u0000" not in body and not _LONG_DIGITS.search(body) and len(body) <= MAX_TEXT_CHARS:
        return None
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    for field, item in _walk(value):
        if isinstance(item, str) and (problem := text_problem(item)):
            return field or "body", problem
        if isinstance(item, int) and not isinstance(item, bool) and not INT_MIN <= item <= INT_MAX:
            return field or "body", "integer out of range (a 64-bit signed integer)"
    return None


def _declared_int(request: Request, name: str) -> bool:
    """Whether the handler takes the query parameter ``name`` (its wire name) as an integer."""
    try:
        parameters = request.route_handler.parsed_fn_signature.parameters
    except AttributeError:
        return False
    for key, definition in parameters.items():
        kwarg = definition.kwarg_definition
        wire = getattr(kwarg, "query", None) or key
        if wire == name:
            return definition.is_subclass_of(int) or any(
                t.is_subclass_of(int) and not t.is_subclass_of(bool) for t in definition.inner_types)
    return False


def _form_expected(request: Request) -> bool:
    if request.scope["path"].startswith("/ui/"):
        return True  # console pages read their forms themselves (admin_ui.forms.read_form)
    try:
        data = request.route_handler.parsed_fn_signature.parameters.get("data")
    except AttributeError:
        return False
    media = getattr(getattr(data, "kwarg_definition", None), "media_type", None)
    return media in (RequestEncodingType.MULTI_PART, RequestEncodingType.URL_ENCODED)


async def check(request: Request) -> None:
    """Raise a 400 :class:`ValidationException` naming the field when the request breaks a rule."""
    scope = request.scope
    for name, value in (scope.get("path_params") or {}).items():
        if isinstance(value, str) and "\x00" in value:
            raise _refuse(name, "contains a NUL character (\\u0000)", "path")
        if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
            raise _refuse(name, "integer out of range (a 64-bit signed integer)", "path")
    if "\x00" in scope["path"]:
        raise _refuse("path", "contains a NUL character (\\u0000)", "path")
    for name, value in request.query_params.multi_items():
        if "\x00" in name:
            raise _refuse("query", "a parameter name contains a NUL character (\\u0000)", "query")
        if problem := text_problem(value, MAX_QUERY_CHARS):
            raise _refuse(name, problem, "query")
        if _INTEGER.match(value) and not INT_MIN <= int(value) <= INT_MAX and _declared_int(request, name):
            raise _refuse(name, "integer out of range (a 64-bit signed integer)", "query")
    if scope["method"] not in _UNSAFE:
        return
    content_type, _ = request.content_type
    if content_type not in (RequestEncodingType.MULTI_PART, RequestEncodingType.URL_ENCODED):
        # JSON, whatever the Content-Type says (some handlers decode the body as JSON without looking)
        found = json_problem(await request.body())
        if found is not None:
            raise _refuse(found[0], found[1], "body")
    elif _form_expected(request):
        form = await request.form()  # kept in the request's state: the handler's parsing reuses it
        for name, value in form.multi_items():
            if problem := text_problem(name):
                raise _refuse("body", f"a form field name {problem}", "body")
            if isinstance(value, UploadFile):
                if value.filename and (problem := text_problem(value.filename, 1024)):
                    raise _refuse(name, f"the file name {problem}", "body")
            elif isinstance(value, str) and (problem := text_problem(value)):
                raise _refuse(name, problem, "body")


class InputLimits:
    """ASGI middleware running :func:`check` on every HTTP request (see the module)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            handler = scope.get("route_handler")
            resolve = getattr(handler, "resolve_request_class", None)  # the handler's own (e.g. CommandRequest)
            await check((resolve() if resolve else Request)(scope, receive, send))
        await self.app(scope, receive, send)
