"""Housekeeping: an import whose process died is shown interrupted and resumes to the exact end; the
retention sweeps of delivered deliveries and idle uploads (bounded batches, per tenant, in the worker's
loop); jitter on the delivery back-off.

Real parts only: ``odr import complaints`` in a subprocess killed with SIGKILL mid-way, the embedded or
test PostgreSQL, the delivery worker's own loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio

from benchmarks.import_sample import sample_export, write_csv
from core.api.errors import Conflict
from core.db.engine import tenant_transaction
from core.imports import service
from core.imports.mapping import DEFAULT_MAPPING
from core.imports.reading import FileRefused, read_table
from core.notifications import delivery_worker, outbox
from core.notifications.delivery_worker import DeliveryWorker
from odr.app import create_app
from admin_ui import i18n
from tests.console_helpers import TOKEN, signed_in
from tests.conftest import login
from tests.import_helpers import DEPARTMENTS, account, import_province
from tests.test_timers import until

SLUG = "housekeep"
ROOT = Path(__file__).resolve().parent.parent
ROWS = 24_000


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def province(demo):
    """A province with imported 12315 cases. Afterwards its pending deadline timers (tens of thousands,
    overdue: the imported cases are old) are cancelled, so that the timer workers of later tests do not
    spend their bounded waits firing this module's backlog first."""
    yield await import_province(demo, SLUG)
    async with tenant_transaction(SLUG) as conn:
        await conn.execute("UPDATE timers SET cancelled_at = now() WHERE fired_at IS NULL AND cancelled_at IS NULL")


def cli_env(pg_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "ODR_DATABASE_URL": pg_url, "ODR_DATA_DIR": str(tmp_path), "ODR_LOG_LEVEL": "WARNING",
           "PYTHONUNBUFFERED": "1", **extra}
    env.pop("ODR_VALKEY_URL", None)
    return env


async def run_row(run_id: uuid.UUID) -> dict:
    async with tenant_transaction(SLUG) as conn:
        return dict(await conn.fetchrow("SELECT status, processed, created, refused, heartbeat_at, runner FROM import_runs"
                                        " WHERE id = $1", run_id))


async def test_a_killed_import_shows_interrupted_and_resume_finishes_it_exactly_once(demo, province, pg_url, tmp_path,
                                                                                    monkeypatch, client):
    sample = sample_export(ROWS, units=province, departments=DEPARTMENTS, seed=41, prefix="KILL")
    export = tmp_path / "kill.csv"
    export.write_bytes(write_csv(sample))
    proc = subprocess.Popen([sys.executable, "-m", "odr.cli", "import", "complaints", "--tenant", SLUG, str(export)],
                            cwd=ROOT, env=cli_env(pg_url, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        async def started():
            async with tenant_transaction(SLUG) as conn:
                return await conn.fetchrow("SELECT id, processed FROM import_runs WHERE filename = 'kill.csv'"
                                           " AND processed >= 1500")
        rec = await until(started, timeout=120, interval=0.02, what="the CLI's run past three batches")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    run_id = rec["id"]
    killed = await run_row(run_id)
    assert killed["status"] == "running" and 1500 <= killed["processed"] < ROWS, killed  # killed mid-way
    async with tenant_transaction(SLUG) as conn:
        filed = await conn.fetchval("SELECT count(*) FROM complaints WHERE registration_number LIKE 'KILL%'")
    assert filed == killed["created"]  # each committed batch's rows and its progress together

    who = service.cli_principal(SLUG, await demo.nodes(SLUG))
    # within ODR_IMPORT_STALE_SECONDS it could still be alive: shown running, a resume refused
    assert (await service.get_run(SLUG, who, demo, str(run_id))).status == "running"
    with pytest.raises(Conflict):
        await service.resume_run(demo, SLUG, who, str(run_id))

    # past the bound: interrupted, in the service, the API and the console
    monkeypatch.setattr(demo, "settings", msgspec.structs.replace(demo.settings, import_stale_seconds=1.0))
    await asyncio.sleep(1.2)
    report = await service.get_run(SLUG, who, demo, str(run_id))
    assert (report.status, report.resumable, report.processed) == ("interrupted", True, killed["processed"])
    admin = await login(client, account(SLUG, "province"))
    r = await client.get(f"/api/tenants/{SLUG}/imports/runs/{run_id}", headers=admin)
    assert r.status_code == 200 and (r.json()["status"], r.json()["resumable"]) == ("interrupted", True)

    # resume with the CLI (another process, as an operator would)
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "odr.cli", "import", "resume", "--tenant", SLUG, str(run_id)], cwd=ROOT,
                          env=cli_env(pg_url, tmp_path, ODR_IMPORT_STALE_SECONDS="1"), capture_output=True, text=True,
                          timeout=300)
    print(f"\nkilled after {killed['processed']} of {ROWS} rows ({killed['created']} created); "
          f"odr import resume finished the rest in {time.monotonic() - began:.1f} s")
    assert done.returncode == 1, done.stderr  # rows were refused (the sample's bad rows)
    assert f"resumed after {killed['processed']} rows" in done.stderr
    final = json.loads(done.stdout)
    # every row counted once: none "already present" (the killed batch rolled back whole), the bad rows
    # refused with their lines, including those refused before the kill
    assert (final["status"], final["processed"], final["total"]) == ("done", ROWS, ROWS)
    assert final["created"] + final["present"] + final["refused"] == ROWS
    assert (final["created"], final["present"], final["refused"]) == (ROWS - len(sample.bad), 0, len(sample.bad))
    assert {(p["line"], p["field"]) for p in final["problems"]} == set(sample.bad.items())
    async with tenant_transaction(SLUG) as conn:
        counts = await conn.fetchrow(
            """SELECT count(*) AS complaints, count(DISTINCT registration_number) AS numbers,
                      (SELECT count(*) FROM complaint_events e JOIN complaints c ON c.id = e.complaint_id
                        WHERE c.registration_number LIKE 'KILL%') AS events
               FROM complaints WHERE registration_number LIKE 'KILL%'""")
    assert dict(counts) == {"complaints": ROWS - len(sample.bad), "numbers": ROWS - len(sample.bad),
                            "events": ROWS - len(sample.bad)}
    stored = await service.get_run(SLUG, who, demo, str(run_id))
    assert (stored.status, stored.created, stored.refused, stored.resumable) == ("done", final["created"], len(sample.bad), False)
    r = await client.post(f"/api/tenants/{SLUG}/imports/runs/{run_id}/resume", headers=admin)
    assert r.status_code == 409, r.text  # done: nothing to resume

    # a new run of the same file is allowed and creates nothing
    r = await client.post(f"/api/tenants/{SLUG}/imports/{stored.file_id}/run?wait=true", headers=admin)
    assert r.status_code == 200 and (r.json()["created"], r.json()["present"]) == (0, ROWS - len(sample.bad)), r.text


async def test_a_resume_takes_the_run_over_and_the_old_process_batches_roll_back(demo, province, monkeypatch):
    """A run whose process only looked dead: the console shows it interrupted with a resume button; once
    resumed there, a batch of the old process is refused (rolled back whole) and the resumed run alone
    finishes it."""
    sample = sample_export(900, units=province, departments=DEPARTMENTS, seed=43, prefix="TAKE", bad_every=0)
    content = write_csv(sample)
    who = service.cli_principal(SLUG, await demo.nodes(SLUG))
    file = await service.store_file(SLUG, who, demo, "take.csv", content)
    table = read_table("take.csv", content)
    old = uuid.uuid4()
    run_id = await service.start_run(SLUG, who, file, dry_run=False, runner=old, mapping=DEFAULT_MAPPING)
    # the old process commits its first 300 rows, then stalls: its heartbeat goes stale
    first_part = read_table("take.csv", write_csv(msgspec.structs.replace(sample, rows=sample.rows[:300])))
    await service.import_complaints(demo, SLUG, who, first_part, DEFAULT_MAPPING, filename="take.csv", dry_run=False,
                                    batch_size=300, run_id=run_id, runner=old)
    monkeypatch.setattr(demo, "settings", msgspec.structs.replace(demo.settings, import_stale_seconds=0.5))
    await asyncio.sleep(0.7)

    app = create_app(demo, manage_lifecycle=False)
    officer = await signed_in(app, account(SLUG, "province"))
    page = await officer.get(f"/ui/bureau/imports/runs/{run_id}")
    assert page.status_code == 200 and 'data-status="interrupted"' in page.text and 'id="resume-form"' in page.text
    assert i18n.t("import.status.interrupted") in page.text
    listing = await officer.get(f"/ui/bureau/imports/files/{file.id}")
    assert i18n.t("import.status.interrupted") in listing.text
    r = await officer.post(f"/ui/bureau/imports/runs/{run_id}/resume", data={"_csrf_token": TOKEN.search(page.text).group(1)})
    assert r.status_code == 303 and r.headers["location"] == f"/ui/bureau/imports/runs/{run_id}", r.text
    await service.running_tasks()
    report = await service.get_run(SLUG, who, demo, str(run_id))
    assert (report.status, report.created, report.present, report.processed) == ("done", 900, 0, 900)
    # the old process wakes up and commits its next batch: refused, nothing of it written
    with pytest.raises(service.RunTakenOver):
        await service.import_complaints(demo, SLUG, who, table, DEFAULT_MAPPING, filename="take.csv", dry_run=False,
                                        batch_size=300, run_id=run_id, runner=old)
    assert (await service.get_run(SLUG, who, demo, str(run_id))).created == 900
    async with tenant_transaction(SLUG) as conn:
        assert await conn.fetchval("SELECT count(*) FROM complaints WHERE registration_number LIKE 'TAKE%'") == 900


def aged(days: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)


async def add_deliveries(marker: str, rows: list[tuple[str, float]]) -> None:
    """Outbox rows of the test province in ``state``, finished ``days`` ago (None: not finished)."""
    async with tenant_transaction(SLUG) as conn:
        for i, (state, days) in enumerate(rows):
            await conn.execute(
                """INSERT INTO deliveries (idempotency_key, channel, node_code, recipient, kind, message, state, attempts,
                                           created_at, finished_at)
                   VALUES ($1, 'odr_webhook', '990000', 'node:990000', 'new_case', '{}'::jsonb, $2, 1, $3, $4)""",
                f"{marker}:{i}", state, aged(days), None if state == "pending" else aged(days))


async def kept(marker: str) -> dict[str, int]:
    async with tenant_transaction(SLUG) as conn:
        rows = await conn.fetch("SELECT state, count(*) AS n FROM deliveries WHERE idempotency_key LIKE $1 GROUP BY state",
                                marker + ":%")
    return {r["state"]: r["n"] for r in rows}


async def test_retention_removes_old_delivered_deliveries_in_bounded_batches_and_keeps_dead_ones(demo, province,
                                                                                                  monkeypatch):
    marker = f"ret-{uuid.uuid4().hex[:8]}"
    await add_deliveries(marker, [("delivered", 31)] * 25 + [("skipped", 40)] * 3 + [("delivered", 29)] * 4
                         + [("dead", 90)] * 2 + [("pending", 60)] * 2)
    worker = DeliveryWorker(demo, name="hk-test")
    try:
        # bounded: batches of 7, at most 2 batches per kind, tenant and round
        monkeypatch.setattr(delivery_worker, "DELIVERY_SWEEP_BATCH", 7)
        monkeypatch.setattr(delivery_worker, "SWEEP_BATCHES", 2)
        removed, _ = await worker.housekeeping([SLUG])
        assert removed == 14
        left = await kept(marker)
        assert sum(left.values()) == 36 - 14 and left["dead"] == 2 and left["pending"] == 2
        removed, _ = await worker.housekeeping([SLUG])
        assert removed == 14  # the rest of the 28 old ones
        assert await kept(marker) == {"delivered": 4, "dead": 2, "pending": 2}
        removed, _ = await worker.housekeeping([SLUG])
        assert removed == 0
    finally:
        await worker.stop()


async def test_the_worker_loop_sweeps_uploads_of_finished_runs_and_old_deliveries(demo, province, client):
    """Through the worker's own loop (its first round sweeps): the content of uploads idle for more than
    ODR_IMPORT_RETENTION_DAYS is removed, files with a recent or live run keep theirs; a purged file
    answers 400 naming the file."""
    marker = f"loop-{uuid.uuid4().hex[:8]}"
    await add_deliveries(marker, [("delivered", 45)] * 3 + [("delivered", 1)])
    who = service.cli_principal(SLUG, await demo.nodes(SLUG))
    content = write_csv(sample_export(5, units=province, departments=DEPARTMENTS, seed=47, prefix="RETN", bad_every=0))
    old_done, old_live, recent_done, never_run, recent_upload = [
        await service.store_file(SLUG, who, demo, f"{name}.csv", content)
        for name in ("old-done", "old-live", "recent-done", "never-run", "recent-upload")]
    ids = {}
    for name, file in (("old_done", old_done), ("old_live", old_live), ("recent_done", recent_done)):
        ids[name] = await service.start_run(SLUG, who, file, dry_run=False, runner=uuid.uuid4(), mapping=DEFAULT_MAPPING)
    async with tenant_transaction(SLUG) as conn:
        for file in (old_done, old_live, recent_done, never_run):
            await conn.execute("UPDATE import_files SET uploaded_at = $2 WHERE id = $1", uuid.UUID(file.id), aged(20))
        await conn.execute("UPDATE import_runs SET status = 'done', started_at = $2, finished_at = $3, heartbeat_at = $3"
                           " WHERE id = $1", ids["old_done"], aged(20), aged(8))
        await conn.execute("UPDATE import_runs SET status = 'done', started_at = $2, finished_at = $3, heartbeat_at = $3"
                           " WHERE id = $1", ids["recent_done"], aged(20), aged(6))
        await conn.execute("UPDATE import_runs SET started_at = $2 WHERE id = $1", ids["old_live"], aged(20))  # heartbeat now

    worker = DeliveryWorker(demo, poll_seconds=0.2, name="hk-loop")
    worker.start()
    try:
        await until(lambda: worker.removed >= 3 and worker.purged >= 2, timeout=30, what="the first housekeeping round")
    finally:
        await worker.stop()
    assert await kept(marker) == {"delivered": 1}
    async with tenant_transaction(SLUG) as conn:
        rows = await conn.fetch("SELECT filename, content IS NULL AS purged, purged_at IS NOT NULL AS marked FROM import_files"
                                " WHERE id = ANY($1::uuid[])",
                                [uuid.UUID(f.id) for f in (old_done, old_live, recent_done, never_run, recent_upload)])
    assert {r["filename"]: (r["purged"], r["marked"]) for r in rows} == {
        "old-done.csv": (True, True), "never-run.csv": (True, True), "old-live.csv": (False, False),
        "recent-done.csv": (False, False), "recent-upload.csv": (False, False)}
    with pytest.raises(FileRefused) as refused:
        await service.load_file(SLUG, who, demo, old_done.id)
    assert refused.value.field == "file"
    admin = await login(client, account(SLUG, "province"))
    r = await client.get(f"/api/tenants/{SLUG}/imports/{old_done.id}/preview", headers=admin)
    assert r.status_code == 400 and "file" in r.json()["detail"], r.text
    r = await client.get(f"/api/tenants/{SLUG}/imports/runs/{ids['old_done']}", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "done"  # the run's record stays


def test_failed_deliveries_do_not_all_come_back_at_the_same_moment():
    """Equal jitter: each wait lies in [c/2, c] of the exponential back-off c, and 200 deliveries that
    failed together are spread over that range instead of returning at once."""
    rng = random.Random(7)
    for attempts in (1, 2, 3, 12):
        ceiling = outbox.backoff_ceiling(attempts, 30.0)
        waits = [outbox.backoff(attempts, 30.0, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len({round(w, 3) for w in waits}) > 190  # not one moment
        assert max(waits) - min(waits) > 0.4 * ceiling  # spread over most of the window
    assert outbox.backoff_ceiling(12, 30.0) == outbox.MAX_BACKOFF_SECONDS


async def test_many_failed_deliveries_get_different_next_attempt_times(demo, province):
    """Through the outbox: 50 deliveries failing in one round are rescheduled at 50 different moments,
    within the jittered window; the third failure dead-letters each (the attempt rule is unchanged)."""
    marker = f"jit-{uuid.uuid4().hex[:8]}"
    await add_deliveries(marker, [("pending", 0)] * 50)
    async with tenant_transaction(SLUG) as conn:
        await conn.execute("UPDATE deliveries SET attempts = 0, next_attempt_at = now() - interval '1 second'"
                           " WHERE idempotency_key LIKE $1", marker + ":%")
        rows = await conn.fetch(f"SELECT {outbox.COLUMNS} FROM deliveries WHERE idempotency_key LIKE $1", marker + ":%")
    for attempt in (1, 2, 3):
        states = []
        async with tenant_transaction(SLUG) as conn:
            for row in rows:
                d = msgspec.structs.replace(outbox.delivery_of(row), attempts=attempt)
                states.append(await outbox.finish_failed(conn, d, error="HTTP 503", retry_seconds=30.0, max_attempts=3))
            after = await conn.fetch("SELECT next_attempt_at - now() AS wait, state FROM deliveries"
                                     " WHERE idempotency_key LIKE $1", marker + ":%")
        if attempt < 3:
            assert set(states) == {"pending"}
            waits = [a["wait"].total_seconds() for a in after]
            ceiling = outbox.backoff_ceiling(attempt, 30.0)
            assert all(ceiling / 2 - 1 <= w <= ceiling + 1 for w in waits), (min(waits), max(waits))
            assert len({round(w, 3) for w in waits}) >= 45
        else:
            assert set(states) == {"dead"} and {a["state"] for a in after} == {"dead"}
