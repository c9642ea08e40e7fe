"""Bad input at scale and personal data in answers (issue 12, scenarios 6 and 7), counted per role.

  .venv/bin/python benchmarks/fuzz.py              # full run: every phase, 100 examples per operation
  .venv/bin/python benchmarks/fuzz.py --tiny       # bounded (~1 min), derandomized; the test suite runs it
  .venv/bin/python benchmarks/fuzz.py --json       # figures as JSON on the last line (the tests read that)

A real platform (``odr serve``, granian) on its own embedded PostgreSQL and ``valkey-server``, with the
three demo provinces, a platform operator, an ODR unit with its specialist and a few complaints filed and
dispatched through the API. Schemathesis reads the app's OpenAPI document (``/schema/openapi.json``)
and runs every phase (examples, coverage with its boundary and negative values, fuzzing, stateful
sequences inferred from the schema) against every operation, once per role, authenticated with that
role's bearer token: platform operator, provincial admin, district officer, office head, enterprise
specialist, consumer, anonymous. Path parameters are drawn from the real ids and codes most of the
time (so the fuzz reaches past "not found"), and from anything else the rest of the time.

After schemathesis, a hostile pass (:func:`hostile_requests`, issue 23) sends every operation a NUL
character in each string query and path parameter and in its JSON body's string fields, 2**66 in each
integer parameter and a JSON body nested 10,000 deep (with ``--tiny`` for three roles).

Every answer is judged by :func:`judge` (the rule, stated there):

- ``5xx``: any answer >= 500 (503 with Retry-After included: nothing is down during the run);
- ``unnamed``: a 4xx other than 401, 403, 404, 405, 409, 429 whose JSON body does not name, in ``field``, a parameter or body field
  of the operation (or ``body`` for a body that is not the right shape at all);
- ``pii``: a consumer's mobile number or address (:mod:`tests.pii_answers`) in an answer to a
  principal that does not handle every complaint it belongs to (decided from the complaint rows).

Prints one table per role (operations, requests, 5xx, unnamed 4xx, PII findings) and the first
findings of each kind with the request that caused them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fault_processes import SECRET, Postgres, Valkey, Web  # noqa: E402
from tests.pii_answers import Lookup  # noqa: E402

PASSWORD = "demo12315"
TENANTS = ["shanghai", "jiangsu", "fujian"]
SPECIALIST = "fuzz-specialist"
ROLES = {  # role label -> (username or None, tenant the fuzz mostly targets)
    # in this order: a bureau's fuzz may suspend or revoke the ODR unit, which ends its specialist's
    # tokens (as it should), so the specialist and the consumer go before the bureau roles
    "anonymous": (None, "shanghai"),
    "consumer": ("sh-consumer", "shanghai"),
    "enterprise specialist": (SPECIALIST, "shanghai"),
    "office head": ("js-office-head", "shanghai"),
    "district officer": ("js-officer", "shanghai"),
    "provincial admin": ("sh-admin", "shanghai"),
    "platform operator": ("operator", "shanghai"),
}
TINY_COVERAGE_ROLES = {"provincial admin", "district officer", "consumer"}
"""With ``--tiny`` the coverage phase (every boundary and negative value of every parameter and field, ~2,000
requests a role) runs for these roles only; the others run examples, fuzzing and stateful sequences."""
STATE_STATUSES = {401, 403, 404, 405, 409, 429}
"""4xx answers about who, what may be done, what exists, the method, the state or the rate: no field
needed. Every other 4xx (400, 413, 415, 422, ...) says the request itself is wrong (see :func:`judge`)."""


class RoleFigures(msgspec.Struct, kw_only=True):
    role: str
    operations: int = 0
    requests: int = 0
    server_errors: int = 0
    unnamed_4xx: int = 0
    pii: int = 0
    statuses: dict[str, int] = {}
    engine_errors: int = 0
    seconds: float = 0.0
    phases: dict[str, list[float]] = {}
    """phase -> [requests, seconds]"""
    examples: list[str] = []


# --- the rule -------------------------------------------------------------------------------------


def _field_names(operation: Any) -> set[str]:
    """The names a 4xx of ``operation`` may name: its parameters and its body's top-level properties."""
    names = {"body"}
    definition = operation.definition.raw
    resolver = operation.schema.raw_schema
    for param in definition.get("parameters", []):
        names.add(param.get("name", ""))
    for content in (definition.get("requestBody") or {}).get("content", {}).values():
        schema = content.get("schema") or {}
        for _ in range(5):
            ref = schema.get("$ref")
            if not ref:
                break
            schema = resolver
            for part in ref.lstrip("#/").split("/"):
                schema = schema.get(part, {})
        names.update(schema.get("properties", {}))
        for option in schema.get("oneOf", []) + schema.get("anyOf", []):
            if "$ref" in option:
                target = resolver
                for part in option["$ref"].lstrip("#/").split("/"):
                    target = target.get(part, {})
                names.update(target.get("properties", {}))
    return names


_ROOT = re.compile(r"^([^.\[]+)")


def judge(status: int, body: bytes, operation: Any) -> str | None:
    """The rule for an answer: None when it is fine, else what is wrong with it.

    - no answer is 5xx (nothing is down while the fuzz runs, so not even a 503);
    - 401 (who you are), 403 (what you may do), 404 (what exists, for you), 405 (method), 409 (the
      state of the case), 429 (rate) are answers about state, not about a field: no field needed;
    - every other 4xx (400, 413, 415, 422, ...) says the request itself is wrong: the JSON body must
      carry ``field`` naming the offending parameter (path, query, header, cookie) or body field of the
      operation (its first segment, for ``items[2].amount``-style paths), or ``body`` when the body as a
      whole is not what the operation takes (not JSON, not an object, not a form).
    """
    if status >= 500:
        return f"{status}"
    if status < 400 or status in STATE_STATUSES:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return f"{status} not JSON"
    field = data.get("field") if isinstance(data, dict) else None
    if not isinstance(field, str) or not field:
        return f"{status} names no field"
    root = _ROOT.match(field)
    if root is None or root.group(1) not in _field_names(operation):
        return f"{status} names {field!r}, not a field of the operation"
    return None


# --- recording every answer (a schemathesis check that never fails) -------------------------------


class Recorder:
    """Counts and judges every answer of the current role's run (one role at a time)."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.role: RoleFigures | None = None
        self.principal: dict | None = None
        self.authorization: str | None = None
        self.operations: set[str] = set()
        self.lock = threading.Lock()

    def start(self, figures: RoleFigures, token_: str | None, principal: dict | None) -> None:
        self.role, self.principal, self.operations = figures, principal, set()
        self.authorization = f"Bearer {token_}" if token_ else None

    def record(self, response: Any, case: Any) -> None:
        fig = self.role
        if fig is None:
            return
        status = response.status_code
        body = response.content or b""
        request = response.request
        sent = request.body if isinstance(request.body, (bytes, str)) else b""
        sent = sent.decode(errors="replace") if isinstance(sent, bytes) else sent
        label = f"{case.operation.method.upper()} {case.operation.path}"
        with self.lock:
            self.operations.add(label)
            fig.operations = len(self.operations)
            fig.requests += 1
            fig.statuses[str(status)] = fig.statuses.get(str(status), 0) + 1
            verdict = judge(status, body, case.operation)
            if verdict is not None:
                if status >= 500:
                    fig.server_errors += 1
                else:
                    fig.unnamed_4xx += 1
                self._example(fig, f"{verdict}: {request.method} {request.url} {sent[:200]!r} -> {body[:300]!r}")
        # the answer went to the role only if the request carried its token (the coverage phase drops
        # or spoils it on purpose: then it went to an anonymous caller)
        to = self.principal if self.authorization and request.headers.get("Authorization") == self.authorization \
            else None
        findings = self.lookup.findings(to, body.decode(errors="replace"),
                                        sent=sent + " " + urllib.parse.unquote(str(request.url)))
        if findings:
            with self.lock:
                fig.pii += len(findings)
                for f in findings:
                    self._example(fig, f"pii: {request.method} {request.url} -> {f}")

    @staticmethod
    def _example(fig: RoleFigures, text: str) -> None:
        if len(fig.examples) < 40:
            fig.examples.append(text)


RECORDER: Recorder | None = None


def _register_check() -> None:
    import schemathesis

    @schemathesis.check
    def odr_answer_recorded(ctx, response, case):  # noqa: ARG001 - schemathesis's signature
        """Record the answer for the figures (the verdicts are the figures, see ``judge``)."""
        if RECORDER is not None:
            RECORDER.record(response, case)
        return None


# --- the platform and its data --------------------------------------------------------------------


async def prepare_platform(url: str, data_dir: str) -> str:
    """The demo provinces with their accounts, the platform operator, an ODR unit at Jinshan with a
    specialist (all in-process, before the server starts)."""
    from core.auth.accounts import create_account
    from core.auth.principal import Role
    from core.db.engine import as_platform, platform_transaction, tenant_transaction
    from core.runtime import Platform
    from core.settings import Settings
    from tenants.manifest import demo_manifests
    from tenants.onboarding import onboard

    platform = Platform(Settings(database_url=url, data_dir=data_dir, secret_key=SECRET))
    await platform.start()
    try:
        for manifest in demo_manifests():
            await onboard(manifest, host=platform.host, actor="fuzz", demo=True)
        async with platform_transaction() as conn:
            await create_account(conn, username="operator", password=PASSWORD, role=Role.OPERATOR, exist_ok=True)
        async with tenant_transaction("shanghai") as conn:
            eid = await conn.fetchval(
                """INSERT INTO enterprises (name, credit_code, unit_type, node_code, status, approved_at, approved_by)
                   VALUES ('模糊测试电商有限公司', '91310116FXQP00001X', 'enterprise', '310116', 'active', now(),
                   'fuzz') RETURNING id""")
            async with as_platform(conn):
                await create_account(conn, username=SPECIALIST, password=PASSWORD, role=Role.ENTERPRISE_SPECIALIST,
                                     tenant="shanghai", enterprise_id=eid, display_name="ODR专员")
        return str(eid)
    finally:
        await platform.stop()


SEED_COMPLAINTS = [  # consumer phone, address, route, dispatched to the office?
    ("13900001111", "上海市金山区朱泾镇模糊路1号101室", "odr", False),
    ("13900002222", "上海市金山区朱泾镇模糊路2号202室", "bureau", False),
    ("13900003333", "上海市金山区朱泾镇模糊路3号303室", "bureau", True),
]


async def seed_cases(base: str, unit_id: str) -> dict[str, list[str]]:
    """Complaints filed by the demo consumer through the API (one straight into ODR, one waiting at the
    district, one dispatched to the office), and the real ids the fuzz draws from."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        tokens = {u: await token(client, u) for u in ("sh-consumer", "js-officer")}
        ids: dict[str, list[str]] = collections.defaultdict(list)
        for phone, address, route, dispatch in SEED_COMPLAINTS:
            r = await client.post("/api/tenants/shanghai/complaints", headers=tokens["sh-consumer"], json={
                "company_name": "模糊测试电商有限公司", "credit_code": "91310116FXQP00001X", "subject": "退款纠纷",
                "description": "网购商品未发货，要求退款。", "consumer_name": "王小明", "consumer_phone": phone,
                "consumer_address": address, "node_code": "310116", "route": route, "amount_claimed": 199.0})
            assert r.status_code == 201, r.text
            cid = r.json()["complaint"]["id"]
            ids["complaint_id"].append(cid)
            if dispatch:
                r = await client.post(f"/api/tenants/shanghai/complaints/{cid}/actions/dispatch",
                                      headers=tokens["js-officer"], json={"office": "310116-01"})
                assert r.status_code == 200, r.text
        ids["enterprise_id"].append(unit_id)
    return ids


async def token(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    r = await client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def principals(base: str) -> dict[str, tuple[str | None, dict | None]]:
    """Each role's bearer token and principal (None, None for the anonymous caller)."""
    found: dict[str, tuple[str | None, dict | None]] = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for role, (username, _) in ROLES.items():
            if username is None:
                found[role] = (None, None)
                continue
            r = await client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
            assert r.status_code == 200, r.text
            found[role] = (r.json()["token"], r.json()["principal"])
    return found


# --- one role's run -------------------------------------------------------------------------------


def config_for(base: str, token_: str | None, tenant: str, ids: dict[str, list[str]], *, tiny: bool,
               seed: int, coverage: bool = True) -> Any:
    import schemathesis

    examples = 1 if tiny else 100
    dictionaries = {
        "tenants": {"values": [tenant] + [t for t in TENANTS if t != tenant]},
        "nodes": {"values": ["310116", "310116-01", "310000", "310115", "320205", "350102"]},
        "years": {"values": [2026, 2025]},
    }
    parameters: dict[str, Any] = {"tenant": {"dictionary": "tenants", "probability": 0.9},
                                  "node": {"dictionary": "nodes", "probability": 0.8},
                                  "node_code": {"dictionary": "nodes", "probability": 0.8}}
    for name, values in ids.items():
        if values:
            dictionaries[name] = {"values": values}
            parameters[name] = {"dictionary": name, "probability": 0.7}
    data = {
        "base-url": base,
        "seed": seed,
        "workers": 1,
        "continue-on-failure": True,
        "request-timeout": 10,
        "max-stream-events": 1,
        "suppress-health-check": ["all"],
        "warnings": False,
        "headers": {"Authorization": f"Bearer {token_}"} if token_ else {},
        "dictionaries": dictionaries,
        # the live notification stream never ends: its answer is what arrived within a second
        "operations": [{"include-path": "/api/tenants/{tenant}/notifications/stream", "request-timeout": 1}],
        "parameters": parameters,
        "generation": {"mode": "all", "max-examples": examples, "deterministic": tiny, "no-shrink": True,
                       "database": "none"},
        "checks": {"enabled": False, "odr_answer_recorded": {"enabled": True}},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": coverage},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True, "max-steps": 6 if tiny else 20},
        },
    }
    if tiny:
        data["phases"]["coverage"]["unexpected-methods"] = []
    return schemathesis.Config.from_dict(data)


def run_role(base: str, role: str, token_: str | None, principal: dict | None, tenant: str,
             ids: dict[str, list[str]], *, tiny: bool, seed: int, max_seconds: float) -> RoleFigures:
    import schemathesis
    from schemathesis.engine import events

    figures = RoleFigures(role=role)
    RECORDER.start(figures, token_, principal)
    config = config_for(base, token_, tenant, ids, tiny=tiny, seed=seed,
                        coverage=not tiny or role in TINY_COVERAGE_ROLES)
    schema = schemathesis.openapi.from_url(base + "/schema/openapi.json", config=config)
    started = time.monotonic()
    stream = schemathesis.engine.from_schema(schema).execute()
    phase_start: tuple[float, int] = (started, 0)
    for event in stream:
        if isinstance(event, events.PhaseStarted):
            phase_start = (time.monotonic(), figures.requests)
        elif isinstance(event, events.PhaseFinished) and figures.requests > phase_start[1]:
            figures.phases[event.phase.name.value] = [figures.requests - phase_start[1],
                                                      round(time.monotonic() - phase_start[0], 1)]
        if isinstance(event, events.NonFatalError):
            figures.engine_errors += 1
            Recorder._example(figures, f"engine error: {event.label}: {event.info.message[:300]}")
        elif isinstance(event, events.FatalError):
            figures.engine_errors += 1
            Recorder._example(figures, f"fatal: {event.exception!r}"[:400])
        if time.monotonic() - started > max_seconds:
            stream.stop()
            break
    figures.seconds = round(time.monotonic() - started, 1)
    return figures


# --- hostile values (issue 23): NUL, deep JSON, integers beyond 64 bits, in every operation ---------


HOSTILE_TINY_ROLES = {"anonymous", "consumer", "provincial admin"}
"""With ``--tiny`` the hostile pass runs for these roles only."""
DEEP_JSON = "[" * 10_000 + "]" * 10_000
HUGE_INT = "99999999999999999999"


class _Operation:
    """What :func:`judge` reads of a schemathesis operation, built from the raw OpenAPI document."""

    def __init__(self, definition: dict, document: dict) -> None:
        self.definition = type("Definition", (), {"raw": definition})()
        self.schema = type("Schema", (), {"raw_schema": document})()


def _resolve(schema: dict, document: dict) -> dict:
    for _ in range(5):
        ref = schema.get("$ref")
        if not ref:
            return schema
        schema = document
        for part in ref.lstrip("#/").split("/"):
            schema = schema.get(part, {})
    return schema


def _types(schema: dict, document: dict) -> set[str]:
    schema = _resolve(schema or {}, document)
    found = {schema.get("type")} if isinstance(schema.get("type"), str) else set()
    for option in schema.get("oneOf", []) + schema.get("anyOf", []):
        found |= _types(option, document)
    return found


def hostile_requests(document: dict, tenant: str, ids: dict[str, list[str]]) -> list[tuple[str, str, str, dict, Any]]:
    """``(method, path template, url, query, json body or None)`` per hostile value and operation: a NUL
    in each string query parameter and string path parameter, 2**66 in each integer one, a NUL in the
    body's string fields, a body nested 10,000 deep."""
    known = {"tenant": tenant, "node": "310116", "node_code": "310116", "year": "2026"}
    known.update({name: values[0] for name, values in ids.items() if values})
    cases: list[tuple[str, str, str, dict, Any]] = []
    for template, item in document.get("paths", {}).items():
        if template.endswith("/stream"):
            continue
        for method, definition in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            params = definition.get("parameters", [])
            path_values = {p["name"]: known.get(p["name"], "1" if "integer" in _types(p.get("schema", {}), document)
                                                 else "00000000-0000-0000-0000-000000000000")
                           for p in params if p.get("in") == "path"}

            def url(values: dict[str, str]) -> str:
                return template.format(**{k: urllib.parse.quote(v, safe="") for k, v in values.items()})

            for p in params:
                types = _types(p.get("schema", {}), document)
                hostile = HUGE_INT if "integer" in types else "x\u0000y" if "string" in types else None
                if hostile is None:
                    continue
                if p.get("in") == "query":
                    cases.append((method, template, url(path_values), {p["name"]: hostile}, None))
                elif p.get("in") == "path":
                    cases.append((method, template, url({**path_values, p["name"]: hostile}), {}, None))
            for content_type, content in (definition.get("requestBody") or {}).get("content", {}).items():
                if content_type != "application/json":
                    continue
                schema = _resolve(content.get("schema") or {}, document)
                strings = {k: "x\u0000y" for k, v in schema.get("properties", {}).items() if "string" in _types(v, document)}
                if strings:
                    cases.append((method, template, url(path_values), {}, strings))
                cases.append((method, template, url(path_values), {}, DEEP_JSON))
    return cases


def run_hostile(base: str, token_: str | None, tenant: str, ids: dict[str, list[str]], figures: RoleFigures) -> None:
    """Every hostile request of :func:`hostile_requests` as this role, judged like the fuzz's answers."""
    started, before = time.monotonic(), figures.requests
    headers = {"Authorization": f"Bearer {token_}"} if token_ else {}
    with httpx.Client(base_url=base, timeout=30, headers=headers) as http:
        document = http.get("/schema/openapi.json").json()
        for method, template, url, query, body in hostile_requests(document, tenant, ids):
            operation = _Operation(document["paths"][template][method], document)
            content = body if isinstance(body, str) else json.dumps(body) if body is not None else None
            r = http.request(method.upper(), url, params=query, content=content,
                             headers={"Content-Type": "application/json"} if content is not None else {})
            figures.requests += 1
            figures.statuses[str(r.status_code)] = figures.statuses.get(str(r.status_code), 0) + 1
            verdict = judge(r.status_code, r.content, operation)
            if verdict is not None:
                if r.status_code >= 500:
                    figures.server_errors += 1
                else:
                    figures.unnamed_4xx += 1
                Recorder._example(figures, f"{verdict}: {method.upper()} {url} {query} {str(content)[:80]!r} -> "
                                           f"{r.content[:200]!r}")
    figures.phases["hostile"] = [figures.requests - before, round(time.monotonic() - started, 1)]


# --- the whole run --------------------------------------------------------------------------------


def personal_data_in_logs(data_dir: Path) -> tuple[int, list[str]]:
    """Lines of the server's logs (at INFO) holding a mobile number or a consumer address that the
    tests, the demo or this fuzz filed (masked in what is returned)."""
    from tests.pii_scan import PHONE, known_addresses, mask

    addresses = known_addresses() | {address for _, address, _, _ in SEED_COMPLAINTS}
    lines, found = 0, []
    for log in sorted(data_dir.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            lines += 1
            if PHONE.search(line) or any(a in line for a in addresses):
                found.append(f"{log.name}: {mask(line)[:200]}")
    return lines, found


def table(results: list[RoleFigures]) -> str:
    head = f"{'role':<22} {'operations':>10} {'requests':>9} {'5xx':>5} {'4xx w/o field':>13} {'PII':>5} {'s':>7}"
    rows = [head, "-" * len(head)]
    for f in results:
        rows.append(f"{f.role:<22} {f.operations:>10} {f.requests:>9} {f.server_errors:>5} {f.unnamed_4xx:>13} "
                    f"{f.pii:>5} {f.seconds:>7}")
    total = RoleFigures(role="total", operations=max((f.operations for f in results), default=0),
                        requests=sum(f.requests for f in results), server_errors=sum(f.server_errors for f in results),
                        unnamed_4xx=sum(f.unnamed_4xx for f in results), pii=sum(f.pii for f in results),
                        seconds=round(sum(f.seconds for f in results), 1))
    rows.append(f"{total.role:<22} {total.operations:>10} {total.requests:>9} {total.server_errors:>5} "
                f"{total.unnamed_4xx:>13} {total.pii:>5} {total.seconds:>7}")
    return "\n".join(rows)


def main() -> int:
    global RECORDER
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="bounded: 1 example per operation and phase, derandomized, "
                                                            "the coverage phase for three roles")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on the last line")
    parser.add_argument("--seed", type=int, default=12315)
    parser.add_argument("--roles", default="", help="comma-separated role labels (default: all)")
    parser.add_argument("--max-seconds-per-role", type=float, default=0)
    args = parser.parse_args()
    max_seconds = args.max_seconds_per_role or (60 if args.tiny else 1800)
    wanted = [r.strip() for r in args.roles.split(",") if r.strip()] or list(ROLES)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still stop the servers (finally below)
    base_dir = Path(tempfile.mkdtemp(prefix="odr-fuzz-"))
    pg = Postgres(base_dir)
    valkey = Valkey(base_dir)
    valkey.start()
    web = None
    lookup = None
    try:
        data_dir = str(base_dir / "data")
        Path(data_dir).mkdir()
        unit_id = asyncio.run(prepare_platform(pg.url, data_dir))
        web = Web(pg.url, data_dir, {"ODR_VALKEY_URL": valkey.url, "ODR_LOG_LEVEL": "INFO"})
        web.start()
        asyncio.run(web.wait_ready())
        ids = asyncio.run(seed_cases(web.base, unit_id))
        logins = asyncio.run(principals(web.base))
        lookup = Lookup(pg.url)
        RECORDER = Recorder(lookup)
        _register_check()
        results = []
        for role in wanted:
            token_, principal = logins[role]
            results.append(run_role(web.base, role, token_, principal, ROLES[role][1], ids, tiny=args.tiny,
                                    seed=args.seed, max_seconds=max_seconds))
            if not args.tiny or role in HOSTILE_TINY_ROLES:
                run_hostile(web.base, token_, ROLES[role][1], ids, results[-1])
            print(f"{role}: {results[-1].requests} requests in {results[-1].seconds} s {results[-1].phases}",
                  file=sys.stderr, flush=True)
        server_log_errors = [line for line in web.server_errors()]
        log_lines, log_pii = personal_data_in_logs(Path(data_dir))
    finally:
        if lookup is not None:
            lookup.close()
        if web is not None:
            web.stop()
        valkey.kill()
        pg.close()
        shutil.rmtree(base_dir, ignore_errors=True)
    print(table(results))
    for f in results:
        for example in f.examples[:15]:
            print(f"  [{f.role}] {example}")
    print(f"server log errors: {len(server_log_errors)}; server log lines scanned for personal data: {log_lines}, "
          f"found: {len(log_pii)}")
    for line in log_pii[:10]:
        print("  " + line[:300])
    for line in server_log_errors[:10]:
        print("  " + line[:300])
    if args.json:
        print(json.dumps({"roles": [msgspec.to_builtins(f) for f in results],
                          "server_log_errors": len(server_log_errors), "log_lines": log_lines,
                          "log_pii": len(log_pii)}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
