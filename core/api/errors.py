"""Map domain errors to clear 4xx/5xx answers that name the field or the problem.

The rule (checked for every operation by the fuzz, ``benchmarks/fuzz.py``): an answer that says the
request itself is wrong (400, 413, 422) carries ``field``, the offending parameter as the client writes
it (a query parameter's wire name, e.g. ``class``, not the handler's argument) or body field (a dotted
path for nested ones), or ``body`` when the body as a whole is not what the operation takes (not JSON,
not a form). A ``ValueError`` raised by a service names its field by starting with ``"field: "``. 401,
403, 404, 405, 409 and 429 are answers about identity, rights, existence, method, state or rate: they
name no field. Nothing the client sends answers 5xx.
"""

from __future__ import annotations

import logging
import re

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from core.api.backpressure import ExpensiveBusy
from core.auth.passwords import HashingBusy
from core.complaints.batching import IntakeOverloaded
from core.db.admin import AdminLoginMissing
from core.db.availability import RETRY_AFTER_SECONDS, database_unavailable, store_unavailable, transaction_conflict
from core.db.engine import TenantNotFound, WritesPaused
from core.files import FileTooLarge
from core.pluginhost.activations import ActivationConflict, ActivationTrialFailed
from core.pluginhost.host import PluginUnavailable

log = logging.getLogger(__name__)
_PARAM = re.compile(r"(?:query|path|header|cookie) parameter '([^']+)'")
_MISSING = re.compile(r"missing required field `([^`]+)`")
_AT = re.compile(r" - at `\$\.?(.*)`$")
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.\[\]-]*): ")


def problem(status: int, detail: str, **extra) -> Response:
    return Response({"status_code": status, "detail": detail, **extra}, status_code=status)


def retry_later(detail: str, seconds: int) -> Response:
    """503 with ``Retry-After``: nothing is wrong with the request, the platform cannot take it now."""
    return Response({"status_code": 503, "detail": detail}, status_code=503, headers={"Retry-After": str(seconds)})


def validation_problem(exc: msgspec.ValidationError, prefix: str = "") -> Response:
    message = str(exc)
    match = _AT.search(message)
    # no path: the body as a whole is wrong (e.g. an unknown key at its top level)
    field = (prefix + (match.group(1) if match else "")).strip(".") or "body"
    detail = _AT.sub("", message)
    return problem(400, f"{field}: {detail}" if field else detail, field=field)


def _wire_name(request: Request | None, key: str, source: str | None) -> str:
    """The name the client used for the handler argument ``key`` (``QueryParameter(name="class")``,
    ``Parameter(query="class")``)."""
    try:
        kwarg = request.route_handler.parsed_fn_signature.parameters[key].kwarg_definition
    except (AttributeError, KeyError, TypeError):
        return key
    for attribute in (source if source in ("query", "header", "cookie") else None, "name", "query", "header", "cookie"):
        alias = getattr(kwarg, attribute, None) if attribute else None
        if isinstance(alias, str) and alias:
            return alias
    return key


def named_problem(status: int, exc: Exception) -> Response:
    """A service's error whose message starts with the field it is about (``"office: not an office"``)."""
    field = _FIELD_PREFIX.match(str(exc))
    return problem(status, str(exc), **({"field": field.group(1)} if field else {}))


def http_problem(exc: HTTPException, request: Request | None = None) -> Response:
    """Litestar's own errors; request validation names each offending field in ``detail``."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    for e in extra:
        if isinstance(e, dict) and e.get("key") == "data":
            missing = _MISSING.search(str(e.get("message", "")))
            e["key"] = missing.group(1) if missing else "body"
        elif isinstance(e, dict) and e.get("key"):
            e["key"] = _wire_name(request, str(e["key"]), e.get("source"))
    fields = [e.get("key") for e in extra if isinstance(e, dict) and e.get("key")]
    detail = exc.detail
    if fields:
        detail = "; ".join(
            f"{e.get('key')}: {e.get('message')}" for e in extra if isinstance(e, dict) and e.get("key")
        )
    elif exc.status_code == 400 and (param := _PARAM.search(str(detail))):
        fields = [param.group(1)]
        detail = f"{param.group(1)}: {detail}"
    elif exc.status_code == 413 and not extra:
        fields = ["body"]
        detail = f"body: {detail}"
    elif exc.status_code == 400 and not extra and "Validation failed" not in str(detail):
        fields = ["body"]
        detail = (f"body: not a valid form: {detail}" if "multipart" in str(detail).lower() or "form" in str(detail).lower()
                  else f"body: not valid JSON: {detail}")
    elif extra:
        detail = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in extra)
    body = {"field": fields[0]} if fields else {}
    if extra:
        body["errors"] = extra
    answer = problem(exc.status_code, detail, **body)
    if exc.headers:  # e.g. Retry-After of a 429
        answer.headers.update(exc.headers)
    return answer


class Conflict(Exception):
    """A command not allowed in the current state (409), naming what is allowed instead."""

    def __init__(self, message: str, allowed: list[str]):
        super().__init__(message)
        self.allowed = allowed


class Forbidden(PermissionError):
    pass


class NotFound(LookupError):
    pass


def handle(request: Request, exc: Exception) -> Response:
    if isinstance(exc, msgspec.ValidationError):
        return validation_problem(exc)
    if isinstance(exc, TenantNotFound):
        return problem(404, "tenant not found")
    if isinstance(exc, (NotFound, KeyError)):
        return problem(404, str(exc.args[0]) if exc.args else "not found")
    if isinstance(exc, Forbidden):
        return problem(403, str(exc) or "forbidden")
    if isinstance(exc, ActivationConflict):
        return problem(409, str(exc))
    if isinstance(exc, ActivationTrialFailed):
        return named_problem(422, exc)
    if isinstance(exc, AdminLoginMissing):
        return problem(503, f"onboarding is not available on this host: {exc}")
    if isinstance(exc, PluginUnavailable):
        return problem(503, f"policy plugin unavailable for {exc.hook}; the bureau has been told", failed=exc.failed)
    if isinstance(exc, HTTPException):
        return http_problem(exc, request)
    if isinstance(exc, FileTooLarge):  # also an import file's LimitExceeded
        return named_problem(413, exc)
    if isinstance(exc, ExpensiveBusy):
        return retry_later(str(exc), exc.retry_after)
    if isinstance(exc, Conflict):
        return problem(409, str(exc), allowed=exc.allowed)
    if isinstance(exc, UnicodeDecodeError):  # a form part without a file name is decoded as text (Litestar's parser)
        return problem(400, "body: a form field is not valid text (a file must be sent as a file part, with a file name)",
                       field="body")
    if isinstance(exc, ValueError):
        return named_problem(400, exc)
    if isinstance(exc, WritesPaused) or isinstance(exc.__cause__, WritesPaused):
        return retry_later("this province's data is being moved to another database server; nothing was written: "
                           "retry in a moment (with the same idempotency key)", WritesPaused.retry_after)
    if isinstance(exc, HashingBusy):
        return retry_later(f"{exc}; nothing was written", exc.retry_after)
    if isinstance(exc, IntakeOverloaded):
        return retry_later("too many complaints are being filed at this moment; nothing was written: retry "
                           "(with the same idempotency key)", exc.retry_after)
    if transaction_conflict(exc):
        log.warning("transaction conflict on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return retry_later("a concurrent change conflicted with this request; nothing was written: retry (with the "
                           "same idempotency key)", RETRY_AFTER_SECONDS)
    for unavailable, what, detail in (
        (store_unavailable, "valkey", "the platform's shared store is not reachable right now; retry"),
        (database_unavailable, "database", "the database is not reachable right now; retry (with the same "
                                           "idempotency key: a repeat never files twice)"),
    ):
        if unavailable(exc):
            log.warning("%s unavailable on %s %s: %s", what, request.method, request.url.path, type(exc).__name__)
            return retry_later(detail, RETRY_AFTER_SECONDS)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "internal error")


EXCEPTION_HANDLERS = {
    msgspec.ValidationError: handle,
    TenantNotFound: handle,
    NotFound: handle,
    KeyError: handle,
    Forbidden: handle,
    ActivationConflict: handle,
    ActivationTrialFailed: handle,
    PluginUnavailable: handle,
    ValueError: handle,
    ExpensiveBusy: handle,
    Conflict: handle,
    WritesPaused: handle,
    Exception: handle,
    HTTPException: handle,
}
