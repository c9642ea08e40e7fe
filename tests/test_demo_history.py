"""Demo history (odr.demo.history): seeded on a throw-away copy of the Shanghai manifest, idempotent,
with the Jinshan A/B/C shapes it reports, and a deadline replay over it that writes nothing."""

from __future__ import annotations

import datetime as dt
import time

import msgspec
import pytest
import pytest_asyncio

from core.db.engine import platform_transaction, tenant_transaction
from core.policy_replay import service as replay
from odr.demo.history import seed_history
from tenants.manifest import load_manifest
from tenants.onboarding import offboard, onboard

SLUG = "histsh"
TABLES = ("enterprises", "liaisons", "complaints", "complaint_events", "timers", "notifications")


@pytest_asyncio.fixture(scope="module")
async def histsh(platform):
    manifest = msgspec.structs.replace(load_manifest("shanghai"), slug=SLUG)
    await offboard(SLUG)  # a leftover of an interrupted run
    await onboard(manifest, host=platform.host, actor="tests")
    platform.forget_tenant(SLUG)
    try:
        yield platform
    finally:
        await offboard(SLUG)
        platform.forget_tenant(SLUG)
        async with platform_transaction() as conn:
            await conn.execute("DELETE FROM odr.plugin_activations WHERE tenant = $1", SLUG)


async def fingerprints() -> dict[str, str | None]:
    out = {}
    async with tenant_transaction(SLUG) as conn:
        for table in TABLES:
            out[table] = await conn.fetchval(f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t")
    async with platform_transaction() as conn:
        for table in ("odr.plugin_activations", "odr.plugin_activation_audit"):
            out[table] = await conn.fetchval(
                f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t WHERE tenant = $1", SLUG)
    return out


async def test_demo_history_is_seeded_once_with_the_jinshan_shapes(histsh):
    started = time.perf_counter()
    summary = await seed_history(histsh, SLUG)
    assert time.perf_counter() - started < 3.0
    assert summary.seeded and summary.complaints > 0 and summary.events >= 2 * summary.complaints
    units = {u.key: u for u in summary.units}
    assert set(units) == {"js-a", "js-b", "js-c", "pd-1"}  # Shanghai's nodes only
    assert summary.complaints == sum(u.complaints for u in units.values())

    before = await fingerprints()
    again = await seed_history(histsh, SLUG)
    assert again.seeded is False and again.complaints == 0
    assert await fingerprints() == before  # idempotent: nothing added

    # Jinshan A/B/C: the classes and the figures the seeder reports are those in the database.
    jinshan = {k: units[k] for k in ("js-a", "js-b", "js-c")}
    assert [u.enterprise_class for u in jinshan.values()] == ["A", "B", "C"]
    assert jinshan["js-a"].complaints > jinshan["js-b"].complaints > jinshan["js-c"].complaints > 0
    assert jinshan["js-a"].settlement_rate == pytest.approx(0.85, abs=0.03)
    assert jinshan["js-b"].settlement_rate == pytest.approx(0.95, abs=0.03)
    assert jinshan["js-c"].settlement_rate == 1.0
    async with tenant_transaction(SLUG) as conn:
        rows = await conn.fetch(
            """SELECT e.classification->>'code' AS cls, count(c.id) AS n,
                      count(c.id) FILTER (WHERE c.feedback IS NOT NULL) AS fed,
                      count(c.id) FILTER (WHERE c.feedback IS NOT NULL AND c.settled) AS settled,
                      avg(extract(epoch FROM coalesce(c.closed_at, (SELECT min(at) FROM complaint_events v
                          WHERE v.complaint_id = c.id AND v.kind = 'feedback')) - c.entered_odr_at) / 86400)
                          FILTER (WHERE c.closed_at IS NOT NULL OR c.feedback IS NOT NULL) AS cycle,
                      count(c.id) FILTER (WHERE c.state = 'closed') AS closed,
                      count(c.id) FILTER (WHERE c.state = 'left_odr') AS left_odr
               FROM enterprises e JOIN complaints c ON c.enterprise_id = e.id
               WHERE e.node_code LIKE '310116%' GROUP BY 1 ORDER BY 1""")
        timers_of_closed = await conn.fetchval(
            "SELECT count(*) FROM timers t JOIN complaints c ON c.id = t.complaint_id WHERE c.state IN ('closed', 'left_odr')")
        no_final_event = await conn.fetchval(
            """SELECT count(*) FROM complaints c WHERE state IN ('closed', 'left_odr') AND NOT EXISTS (
                   SELECT 1 FROM complaint_events v WHERE v.complaint_id = c.id
                   AND v.kind = CASE c.state WHEN 'closed' THEN 'close' ELSE 'leave_odr' END)""")
        no_registered = await conn.fetchval(
            "SELECT count(*) FROM complaints c WHERE NOT EXISTS (SELECT 1 FROM complaint_events v "
            "WHERE v.complaint_id = c.id AND v.kind = 'registered')")
        fake = await conn.fetchval(
            "SELECT bool_and(consumer_name ~ '^测试用户[0-9]{4}$' AND consumer_phone ~ '^139000[0-9]{5}$') FROM complaints")
        oldest = await conn.fetchval("SELECT min(entered_odr_at) FROM complaints")
        # spot checks of feedback: one event each, its finding on the complaint, none without a feedback
        checks = await conn.fetch(
            """SELECT c.enterprise_id::text AS unit, c.feedback IS NOT NULL AS fed, c.feedback_untrue,
                      (v.after->>'feedback_untrue')::bool AS found, v.note
               FROM complaint_events v JOIN complaints c ON c.id = v.complaint_id WHERE v.kind = 'spot_check'""")
        unchecked_findings = await conn.fetchval(
            """SELECT count(*) FROM complaints c WHERE feedback_untrue IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM complaint_events v WHERE v.complaint_id = c.id AND v.kind = 'spot_check')""")
    assert checks and all(r["fed"] and r["found"] is r["feedback_untrue"] and r["note"] for r in checks)
    assert unchecked_findings == 0
    for u in units.values():
        assert u.untrue_feedback == sum(1 for r in checks if r["unit"] == u.enterprise_id and r["found"]), u.key
    assert sum(u.untrue_feedback for u in units.values()) > 0
    by_class = {r["cls"]: r for r in rows}
    assert set(by_class) == {"A", "B", "C"}
    for key, cls in (("js-a", "A"), ("js-b", "B"), ("js-c", "C")):
        u, r = jinshan[key], by_class[cls]
        assert (r["n"], r["fed"], r["settled"], r["closed"], r["left_odr"]) == (
            u.complaints, u.with_feedback, u.settled, u.closed, u.left_odr), key
        assert r["settled"] / r["fed"] == pytest.approx(u.settlement_rate, abs=1e-4)
        assert float(r["cycle"]) == pytest.approx(u.avg_cycle_days, abs=1e-3)
    assert 5.5 <= jinshan["js-a"].avg_cycle_days <= 8.5
    assert timers_of_closed == 0 and no_final_event == 0 and no_registered == 0 and fake is True
    assert oldest >= dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=91)


async def test_jinshan_rules_replayed_over_pudong_history_differ_and_write_nothing(histsh):
    await seed_history(histsh, SLUG)  # no-op when the test above ran first
    before = await fingerprints()
    node = await histsh.node(SLUG, "310115")
    result = await replay.replay(histsh, SLUG, node, plugin="odr_jinshan_deadline",
                                 config={"contact_days": 2, "close_days": 7, "holiday_rollover": True})
    assert await fingerprints() == before
    assert result.current.policies == ["odr_national_deadline"] and result.candidate.policies == ["odr_jinshan_deadline"]
    assert result.current.complaints > 0 and result.changed_outcomes > 0
    assert result.candidate.breaches > result.current.breaches
    assert any(c.differs for c in result.complaints)
