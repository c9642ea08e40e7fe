"""Platform settings: one msgspec Struct read from ``ODR_*`` environment variables.

Every field is documented in the README ("Settings"). Unset variables take the defaults below.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import msgspec


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    database_url: str | None = None
    """ODR_DATABASE_URL: PostgreSQL the platform logs in to: the runtime login (a non-superuser role
    without CREATEROLE, see deploy/README.md), or a superuser from which the runtime login
    ``ODR_APP_ROLE`` and the administration login ``ODR_ADMIN_ROLE`` are made. Unset: embedded."""
    admin_database_url: str | None = None
    """ODR_ADMIN_DATABASE_URL: the administration login (CREATEROLE; onboarding and migrations only),
    needed when ODR_DATABASE_URL is not a superuser. Unset with a superuser URL: ``ODR_ADMIN_ROLE``."""
    valkey_url: str | None = None
    """ODR_VALKEY_URL: Valkey for cache, pub/sub, timers, rate limits. Unset: in-process equivalents."""
    data_dir: str = ".odr-data"
    """ODR_DATA_DIR: where the embedded PostgreSQL and the generated secret live."""
    secret_key: str | None = None
    """ODR_SECRET_KEY: JWT signing key; unset, one is generated once into the data dir."""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    """ODR_WORKERS: web worker processes for ``odr serve`` (granian)."""
    plugins_allow: str = "builtin"
    """ODR_PLUGINS_ALLOW: comma-separated entry-point names allowed to load; ``builtin`` stands for the
    plugins shipped in this repository, ``*`` allows every installed plugin."""
    plugins_trusted: str = ""
    """ODR_PLUGINS_TRUSTED: comma-separated entry-point or distribution names of allowed plugins from
    outside the platform's own distributions that run in-process like the built-ins. Every other such
    plugin runs in an isolated worker process (no credentials, no network for policy families, memory
    and CPU limits; see deploy/README.md "Vendor plugins")."""
    plugin_budget_ms: float = 250.0
    """ODR_PLUGIN_BUDGET_MS: time budget of one policy hook call (calendar, deadline policy,
    classification, scoring). An isolated plugin is killed when it overruns; a trusted one is measured;
    either way the overrun is counted and logged by plugin and hook."""
    plugin_send_budget_ms: float = 10000.0
    """ODR_PLUGIN_SEND_BUDGET_MS: time budget of a channel send, a notification or a standing check."""
    plugin_breaker_failures: int = 5
    """ODR_PLUGIN_BREAKER_FAILURES: failures or overruns of one plugin at one node within
    ODR_PLUGIN_BREAKER_WINDOW_SECONDS that open its circuit breaker (it is skipped there, the next
    plugin or the default decides) for ODR_PLUGIN_BREAKER_COOLDOWN_SECONDS."""
    plugin_breaker_window_seconds: float = 60.0
    """ODR_PLUGIN_BREAKER_WINDOW_SECONDS: see ODR_PLUGIN_BREAKER_FAILURES."""
    plugin_breaker_cooldown_seconds: float = 30.0
    """ODR_PLUGIN_BREAKER_COOLDOWN_SECONDS: how long an open breaker skips its plugin before trying it again."""
    plugin_worker_memory_mb: int = 1024
    """ODR_PLUGIN_WORKER_MEMORY_MB: address-space limit (RLIMIT_AS) of an isolated plugin worker."""
    plugin_worker_cpu_seconds: int = 600
    """ODR_PLUGIN_WORKER_CPU_SECONDS: CPU-time limit (RLIMIT_CPU) of an isolated worker over its life;
    a worker that reaches it is killed by the system and started again."""
    pool_min: int = 2
    pool_max: int = 10
    migrate_concurrency: int = 4
    """ODR_MIGRATE_CONCURRENCY: tenants migrated in parallel by ``odr migrate``."""
    app_role: str = "odr_app"
    """ODR_APP_ROLE: the runtime login made when ODR_DATABASE_URL is a superuser (embedded default)."""
    admin_role: str = "odr_admin"
    """ODR_ADMIN_ROLE: the administration login made when ODR_DATABASE_URL is a superuser."""
    statement_cache: bool = True
    """ODR_STATEMENT_CACHE: false behind pgbouncer in transaction mode older than 1.21."""
    intake_batching: bool = True
    """ODR_INTAKE_BATCHING: group commit of complaint intakes arriving together (one transaction per batch)."""
    intake_batch_max: int = 64
    """ODR_INTAKE_BATCH_MAX: most intakes in one group commit."""
    intake_batch_inflight: int = 2
    """ODR_INTAKE_BATCH_INFLIGHT: group commits of one tenant written at the same time; more arrivals queue."""
    intake_batch_window_ms: float = 0.0
    """ODR_INTAKE_BATCH_WINDOW_MS: optional wait to collect a batch (0: none, the next loop turn)."""
    intake_queue_max: int = 512
    """ODR_INTAKE_QUEUE_MAX: intakes of one tenant waiting for a group commit in one web process beyond
    which new ones are refused at once with 503 and Retry-After, nothing written (back-pressure under
    overload, so waiting stays bounded); 0: no limit."""
    intake_max_wait_ms: float = 5000.0
    """ODR_INTAKE_MAX_WAIT_MS: an intake that has waited longer than this since its request reached the
    web process (for the event loop, for a group commit) before its batch starts is refused with 503 and
    Retry-After, nothing written (back-pressure: bounds the latency of what is acknowledged); 0: no limit."""
    web_max_inflight: int = 64
    """ODR_WEB_MAX_INFLIGHT: HTTP requests one web process handles at once beyond which new ones are
    answered 503 with Retry-After at once, before any work (``/health``, ``/ui/static`` and live
    notification streams excepted); 0: no limit. Refusing at the door costs a small fraction of an
    intake, so under ten times the sustainable load a web process still acknowledges about what it
    sustains (``benchmarks/faults.py --scenario overload``); without the limit the refusals happen after
    authentication and parsing, and the acknowledged rate collapses."""
    web_max_inflight_per_tenant: int = 32
    """ODR_WEB_MAX_INFLIGHT_PER_TENANT: requests of one province's API (``/api/tenants/{slug}/...``) one
    web process handles at once beyond which new ones of that province are answered 503 with
    Retry-After at once, before any work, so that a surge of one province leaves room for the others'
    requests; 0: no share per province (only ODR_WEB_MAX_INFLIGHT)."""
    replica_max_lag_seconds: float = 30.0
    """ODR_REPLICA_MAX_LAG_SECONDS: reports and evaluation reads go to a read replica of the tenant's
    cluster (``odr cluster set-replicas``) only while its replay lag is below this; else to the primary."""
    token_ttl_hours: int = 12
    login_rate_per_minute: int = 60
    """ODR_LOGIN_RATE_PER_MINUTE: login attempts per client address and minute (Valkey-backed when set)."""
    login_failures_per_account: int = 10
    """ODR_LOGIN_FAILURES_PER_ACCOUNT: wrong passwords for one username, each within
    ODR_LOGIN_LOCKOUT_MINUTES of the previous, after which it is refused for that long (0: never)."""
    login_lockout_minutes: float = 15.0
    """ODR_LOGIN_LOCKOUT_MINUTES: see ODR_LOGIN_FAILURES_PER_ACCOUNT."""
    signup_rate_per_minute: int = 10
    """ODR_SIGNUP_RATE_PER_MINUTE: consumer sign-ups (API and console) per client address and minute (0: no limit)."""
    signup_rate_per_province_per_minute: int = 120
    """ODR_SIGNUP_RATE_PER_PROVINCE_PER_MINUTE: consumer sign-ups per province and minute, from all addresses
    together (0: no limit)."""
    password_threads: int = 0
    """ODR_PASSWORD_THREADS: threads of a web process hashing and checking passwords (argon2, off the event
    loop); 0: one per core."""
    password_queue: int = 64
    """ODR_PASSWORD_QUEUE: password checks and hashes (logins, sign-ups, new accounts) waiting for those
    threads in one web process beyond which new ones are answered 503 with Retry-After at once."""
    password_queue_per_tenant: int = 32
    """ODR_PASSWORD_QUEUE_PER_TENANT: of those, at most this many of one province (unknown usernames and
    the platform operator count as one more); waiting ones are taken in turn, province by province."""
    health_timeout_seconds: float = 2.0
    """ODR_HEALTH_TIMEOUT_SECONDS: how long ``/health`` waits for each of its checks (database, Valkey)
    before answering 503 naming the check."""
    secure_cookies: bool = False
    """ODR_SECURE_COOKIES: mark the console's cookies Secure even when the request reached the platform
    over plain HTTP (TLS ended at a proxy). Over HTTPS they are Secure anyway."""
    log_level: str = "INFO"
    timer_reconcile_seconds: float = 30.0
    """ODR_TIMER_RECONCILE_SECONDS: how often each timer worker rebuilds its queue from PostgreSQL and
    fires overdue timers; the most a timer can be late after Valkey was flushed or a worker was down."""
    timer_poll_seconds: float = 1.0
    """ODR_TIMER_POLL_SECONDS: longest a timer worker sleeps before looking at the queue again (another
    process may have queued an earlier timer); the usual lateness of a timer."""
    warning_before_hours: float = 24.0
    """ODR_WARNING_BEFORE_HOURS: how long before a contact or close deadline the warning fires."""
    delivery_poll_seconds: float = 1.0
    """ODR_DELIVERY_POLL_SECONDS: how often the delivery worker looks for notifications to expand and
    deliveries due (the usual delay between a notification and its e-mail, webhook or SMS)."""
    delivery_retry_seconds: float = 30.0
    """ODR_DELIVERY_RETRY_SECONDS: back-off before the first retry of a failed delivery; doubled for
    each further attempt (capped at 6 hours), with equal jitter: the wait is drawn uniformly between
    half of that and all of it, so deliveries that failed together do not come back together."""
    delivery_max_attempts: int = 8
    """ODR_DELIVERY_MAX_ATTEMPTS: attempts after which a failing delivery is dead-lettered (shown to
    the bureau, retried only on request)."""
    delivery_lease_seconds: float = 120.0
    """ODR_DELIVERY_LEASE_SECONDS: how long a claimed delivery is reserved for the worker sending it;
    if that worker dies, another retries it after this (at-least-once)."""
    delivery_retention_days: float = 30.0
    """ODR_DELIVERY_RETENTION_DAYS: delivered (or skipped) deliveries finished longer ago than this are
    removed by the worker's housekeeping; dead-lettered ones are kept until sent again."""
    import_retention_days: float = 7.0
    """ODR_IMPORT_RETENTION_DAYS: the content of an uploaded import file is removed this long after its
    last run finished (or its upload, when it never ran); the file's row and its runs stay."""
    import_stale_seconds: float = 120.0
    """ODR_IMPORT_STALE_SECONDS: an import run still ``running`` whose last batch committed longer ago
    than this is shown as *interrupted* (its process died) and may be resumed."""
    import_max_upload_mb: float = 20.0
    """ODR_IMPORT_MAX_UPLOAD_MB: the largest import file (CSV or XLSX as uploaded); larger: 413 naming
    the limit. The import routes' request body is capped at 64 MiB whatever this says."""
    import_max_decompressed_mb: float = 200.0
    """ODR_IMPORT_MAX_DECOMPRESSED_MB: what an XLSX's members may inflate to, together (declared sizes
    checked before, inflated bytes counted while reading)."""
    import_max_ratio: float = 200.0
    """ODR_IMPORT_MAX_RATIO: how many times its compressed size a member of an XLSX may inflate to
    (beyond its first MiB)."""
    import_max_rows: int = 200_000
    """ODR_IMPORT_MAX_ROWS: rows of an import file after the header."""
    import_max_columns: int = 100
    """ODR_IMPORT_MAX_COLUMNS: columns of an import file."""
    import_max_cell_chars: int = 32_768
    """ODR_IMPORT_MAX_CELL_CHARS: characters of one cell of an import file."""
    import_max_shared_strings: int = 1_000_000
    """ODR_IMPORT_MAX_SHARED_STRINGS: entries of an XLSX's shared-strings table."""
    import_max_shared_strings_mb: float = 64.0
    """ODR_IMPORT_MAX_SHARED_STRINGS_MB: size of an XLSX's shared-strings part, inflated."""
    import_max_seconds: float = 120.0
    """ODR_IMPORT_MAX_SECONDS: time one read of an import file may take in its child process (a run's
    own database writes not counted); beyond, the child is killed and the upload, preview or run fails
    naming the limit."""
    import_worker_memory_mb: int = 1024
    """ODR_IMPORT_WORKER_MEMORY_MB: address space of the child process reading an import file."""
    expensive_per_tenant: int = 2
    """ODR_EXPENSIVE_PER_TENANT: expensive operations (import uploads, previews and runs, evaluation
    runs and reproductions, exports) one province may have going on in one web process; its next one
    is answered 503 with Retry-After, the other provinces' go on (0: no share)."""
    expensive_max: int = 8
    """ODR_EXPENSIVE_MAX: expensive operations of all provinces together in one web process (0: no limit)."""
    housekeeping_seconds: float = 600.0
    """ODR_HOUSEKEEPING_SECONDS: how often the delivery worker runs the retention sweeps (each in
    bounded batches, per tenant)."""
    outbound_allow_hosts: str = ""
    """ODR_OUTBOUND_ALLOW_HOSTS: comma-separated host names (``host`` for any port, ``host:port`` for one)
    that delivery channels may reach although they resolve to an internal address (loopback, private,
    link-local, shared, ...), e.g. a bureau's receiver on the same private network. Every other such
    destination is refused (``core.notifications.outbound``)."""

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        """Read ``ODR_<FIELD>`` variables; a malformed value raises naming the variable."""
        env = os.environ if environ is None else environ
        raw: dict[str, object] = {}
        for field in msgspec.structs.fields(cls):
            key = f"ODR_{field.name.upper()}"
            if key in env and env[key] != "":
                raw[field.name] = env[key]
        try:
            return msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SystemExit(f"invalid setting: {exc} (environment variables ODR_*)") from None

    def jwt_secret(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.data_path / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:  # several workers may start at once: the first to create the file wins
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_urlsafe(48))
        for _ in range(50):
            key = path.read_text().strip()
            if key:
                return key
            time.sleep(0.01)
        raise SystemExit(f"{path} is empty: set ODR_SECRET_KEY")
