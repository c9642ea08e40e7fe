"""Deadlines over the 2025–2026 holidays, make-up working days (调休) included, on both clocks.

Every expected date below is worked out by hand from the State Council holiday notices (国办发明电
〔2024〕12号 for 2025, 〔2025〕7号 for 2026), never computed with chinese-calendar or the code under test:

2025  Spring Festival   Tue Jan 28 – Tue Feb 4 off;  Sun Jan 26 and Sat Feb 8 are working days
2025  National Day and Mid-Autumn (Mon Oct 6)   Wed Oct 1 – Wed Oct 8 off;  Sun Sep 28 and Sat Oct 11 work
2026  New Year          Thu Jan 1 – Sat Jan 3 off;   Sun Jan 4 works
2026  Spring Festival   Sun Feb 15 – Mon Feb 23 off; Sat Feb 14 and Sat Feb 28 work
2026  Mid-Autumn        Fri Sep 25 – Sun Sep 27 off
2026  National Day      Thu Oct 1 – Wed Oct 7 off;   Sun Sep 20 and Sat Oct 10 work

Convention (DOMAIN.md): the start day is not counted; due at 23:59:59 Asia/Shanghai of the last day.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import types
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest

from core.deadlines.counting import count_period
from core.deadlines.service import complaint_deadlines
from odr_builtin_calendar import mainland_day
from odr_plugin_api import DeadlineClock, DeadlinePlan, Family, PluginInfo, hookimpl
from tests.conftest import login

SH = ZoneInfo("Asia/Shanghai")
D = dt.date
WEEKEND = "weekend"
SPRING = "statutory holiday: Spring Festival 春节"
NATIONAL = "statutory holiday: National Day 国庆节"
MID_AUTUMN = "statutory holiday: Mid-autumn Festival 中秋节"
NEW_YEAR = "statutory holiday: New Year's Day 元旦"


def due(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(23, 59, 59), SH)


def span(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


# -- a natural-day test policy (configurable days and rollover) -----------------------------------


class NaturalConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    contact_days: int = 2
    close_days: int = 7
    holiday_rollover: bool = False


def natural_policy(name: str) -> types.SimpleNamespace:
    @hookimpl
    def odr_plugin_info():
        return PluginInfo(
            name=name, version="0.2", title="natural days", families=(Family.DEADLINE_POLICY,), config=NaturalConfig
        )

    @hookimpl
    def odr_deadline_policy(scope, request):
        cfg = scope.config(name, NaturalConfig())
        return DeadlinePlan(
            policy=name,
            version="0.2",
            contact_days=cfg.contact_days,
            contact_clock=DeadlineClock.NATURAL_DAYS,
            close_days=cfg.close_days,
            close_clock=DeadlineClock.NATURAL_DAYS,
            holiday_rollover=cfg.holiday_rollover,
        )

    return types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_deadline_policy=odr_deadline_policy)


@pytest.fixture
async def natural_at_jinshan(client, demo, jinshan_on_national):
    """The natural-day policy registered and activated at Jinshan (310116) by js-officer; ``config``
    sets its days and rollover. Rows and registration are removed afterwards."""
    name = "t_natural_deadline"
    demo.host.register(natural_policy(name), name=name)

    async def activate(config: dict) -> str:
        r = await client.put(
            f"/api/tenants/shanghai/policy/310116/plugins/{name}",
            json={"active": True, "config": config},
            headers=await login(client, "js-officer"),
        )
        assert r.status_code == 200, r.text
        return name

    try:
        yield activate
    finally:
        from core.db.engine import platform_transaction

        async with platform_transaction() as conn:
            await conn.execute("DELETE FROM odr.plugin_activations WHERE plugin = $1", name)
        demo.forget_activations("shanghai")
        demo.host.unregister(name)


# -- the working-day clock: national policy (3 / 10 working days), through the plugin host --------

# (start, contact due, close due, skipped days of the close period with their reasons)
NATIONAL_CASES = {
    # Fri evening before the 2025 Spring Festival. Contact: Sat 25 skipped, Sun 26 (调休) 1, Mon 27 2,
    # Jan 28–Feb 4 off, Wed Feb 5 3. Close: Thu 6 4, Fri 7 5, Sat 8 (调休) 6, Sun 9 off, Mon 10–Thu 13 7–10.
    "2025 Spring Festival, late evening start": (
        dt.datetime(2025, 1, 24, 21, 30),
        D(2025, 2, 5),
        D(2025, 2, 13),
        [(D(2025, 1, 25), WEEKEND)] + [(d, SPRING) for d in span(D(2025, 1, 28), D(2025, 2, 4))] + [(D(2025, 2, 9), WEEKEND)],
    ),
    # Fri before the 2025 National Day. Contact: Sat 27 off, Sun 28 (调休) 1, Mon 29 2, Tue 30 3.
    # Close: Oct 1–8 off (Oct 6 is Mid-Autumn), Thu 9 4, Fri 10 5, Sat 11 (调休) 6, Sun 12 off, Mon 13–Thu 16 7–10.
    "2025 National Day and Mid-Autumn": (
        dt.datetime(2025, 9, 26, 10, 0),
        D(2025, 9, 30),
        D(2025, 10, 16),
        [(D(2025, 9, 27), WEEKEND)]
        + [(d, MID_AUTUMN if d == D(2025, 10, 6) else NATIONAL) for d in span(D(2025, 10, 1), D(2025, 10, 8))]
        + [(D(2025, 10, 12), WEEKEND)],
    ),
    # Start on a holiday (Fri Oct 3, 2025). Contact: Oct 4–8 off, Thu 9 1, Fri 10 2, Sat 11 (调休) 3.
    # Close: Sun 12 off, Mon 13–Fri 17 4–8, Sat 18 / Sun 19 off, Mon 20 9, Tue 21 10.
    "2025 start on a holiday": (
        dt.datetime(2025, 10, 3, 9, 0),
        D(2025, 10, 11),
        D(2025, 10, 21),
        [(d, MID_AUTUMN if d == D(2025, 10, 6) else NATIONAL) for d in span(D(2025, 10, 4), D(2025, 10, 8))]
        + [(D(2025, 10, 12), WEEKEND), (D(2025, 10, 18), WEEKEND), (D(2025, 10, 19), WEEKEND)],
    ),
    # New Year's Eve 2025 into 2026. Contact: Jan 1–3 off, Sun Jan 4 (调休) 1, Mon 5 2, Tue 6 3.
    # Close: Wed 7 4, Thu 8 5, Fri 9 6, Sat 10 / Sun 11 off, Mon 12–Thu 15 7–10.
    "2025 into 2026 over New Year": (
        dt.datetime(2025, 12, 31, 16, 0),
        D(2026, 1, 6),
        D(2026, 1, 15),
        [(d, NEW_YEAR) for d in span(D(2026, 1, 1), D(2026, 1, 3))] + [(D(2026, 1, 10), WEEKEND), (D(2026, 1, 11), WEEKEND)],
    ),
    # Thu evening before the 2026 Spring Festival. Contact: Fri 13 1, Sat 14 (调休) 2, Feb 15–23 off,
    # Tue 24 3. Close: Wed 25 4, Thu 26 5, Fri 27 6, Sat 28 (调休) 7, Sun Mar 1 off, Mon 2 8, Tue 3 9, Wed 4 10.
    "2026 Spring Festival, late evening start": (
        dt.datetime(2026, 2, 12, 22, 0),
        D(2026, 2, 24),
        D(2026, 3, 4),
        [(d, SPRING) for d in span(D(2026, 2, 15), D(2026, 2, 23))] + [(D(2026, 3, 1), WEEKEND)],
    ),
    # Fri before Mid-Autumn 2026. Contact: Sat 19 off, Sun 20 (调休) 1, Mon 21 2, Tue 22 3.
    # Close: Wed 23 4, Thu 24 5, Sep 25–27 off, Mon 28 6, Tue 29 7, Wed 30 8, Oct 1–7 off, Thu 8 9, Fri 9 10.
    "2026 September: Mid-Autumn then National Day": (
        dt.datetime(2026, 9, 18, 11, 0),
        D(2026, 9, 22),
        D(2026, 10, 9),
        [(D(2026, 9, 19), WEEKEND)]
        + [(d, MID_AUTUMN) for d in span(D(2026, 9, 25), D(2026, 9, 27))]
        + [(d, NATIONAL) for d in span(D(2026, 10, 1), D(2026, 10, 7))],
    ),
    # 17:00 UTC on Sep 29 is 01:00 on Wed Sep 30 in Shanghai: Sep 30 is the uncounted start day.
    # Contact: Oct 1–7 off, Thu 8 1, Fri 9 2, Sat 10 (调休) 3. Close: Sun 11 off, Mon 12–Fri 16 4–8,
    # Sat 17 / Sun 18 off, Mon 19 9, Tue 20 10.
    "2026 National Day, UTC start already the next day in Shanghai": (
        dt.datetime(2026, 9, 29, 17, 0, tzinfo=dt.timezone.utc),
        D(2026, 10, 10),
        D(2026, 10, 20),
        [(d, NATIONAL) for d in span(D(2026, 10, 1), D(2026, 10, 7))]
        + [(D(2026, 10, 11), WEEKEND), (D(2026, 10, 17), WEEKEND), (D(2026, 10, 18), WEEKEND)],
    ),
}


@pytest.mark.parametrize("case", list(NATIONAL_CASES))
async def test_working_day_clock_of_the_national_policy(demo, case):
    start, contact_due, close_due, close_skipped = NATIONAL_CASES[case]
    result = await complaint_deadlines(demo, "shanghai", "310115", start)  # Pudong: national default
    assert (result.plugin, result.policy, result.policy_version) == ("odr_national_deadline", "odr_national_deadline", "1.0.0")
    assert result.contact.clock is result.close.clock is DeadlineClock.WORKING_DAYS
    assert (result.contact.days, result.close.days) == (3, 10)
    assert result.contact.due == due(contact_due)
    assert result.close.due == due(close_due)
    assert result.contact.due.utcoffset() == dt.timedelta(hours=8)
    assert [(s.day, s.reason) for s in result.close.skipped] == close_skipped
    assert all(s.source == "odr_builtin_calendar" for s in result.close.skipped)
    # the contact period skipped exactly the close period's skipped days that fall before its due day
    assert [(s.day, s.reason) for s in result.contact.skipped] == [x for x in close_skipped if x[0] < contact_due]
    # every day after the start day up to the due day is either counted or skipped, never both
    local_start = start.replace(tzinfo=SH) if start.tzinfo is None else start.astimezone(SH)
    assert result.close.start == local_start and result.close.start_day_not_counted == local_start.date()
    after = span(local_start.date() + dt.timedelta(days=1), close_due)
    assert sorted(result.close.counted_days + [s.day for s in result.close.skipped]) == after
    assert len(result.close.counted_days) == 10 and len(result.contact.counted_days) == 3
    assert result.close.rolled_over == [] and result.contact.rolled_over == []


async def test_make_up_days_are_counted_and_named(demo):
    """Sun Jan 26 and Sat Feb 8, 2025 are working days: counted, not skipped."""
    result = await complaint_deadlines(demo, "shanghai", "310115", dt.datetime(2025, 1, 24, 21, 30))
    assert result.contact.counted_days == [D(2025, 1, 26), D(2025, 1, 27), D(2025, 2, 5)]
    assert D(2025, 2, 8) in result.close.counted_days
    assert result.close.counted_days == [
        D(2025, 1, 26), D(2025, 1, 27), D(2025, 2, 5), D(2025, 2, 6), D(2025, 2, 7),
        D(2025, 2, 8), D(2025, 2, 10), D(2025, 2, 11), D(2025, 2, 12), D(2025, 2, 13),
    ]


async def test_start_day_is_not_counted_however_late(demo):
    """Same day, 00:00:01 or 23:59:59: the same due moments (Thu Oct 8, 2026 -> Fri 9, Sat 10 (调休), Mon 12)."""
    early = await complaint_deadlines(demo, "shanghai", "310115", dt.datetime(2026, 10, 8, 0, 0, 1))
    late = await complaint_deadlines(demo, "shanghai", "310115", dt.datetime(2026, 10, 8, 23, 59, 59))
    assert early.contact.due == late.contact.due == due(D(2026, 10, 12))
    assert early.contact.counted_days == [D(2026, 10, 9), D(2026, 10, 10), D(2026, 10, 12)]
    # one second later it is Friday: Sat 10 (调休) 1, Sun 11 off, Mon 12 2, Tue 13 3
    nxt = await complaint_deadlines(demo, "shanghai", "310115", dt.datetime(2026, 10, 9, 0, 0, 0))
    assert nxt.contact.due == due(D(2026, 10, 13))


# -- the natural-day clock, with and without holiday rollover --------------------------------------

# (start, days, due without rollover, due with rollover, days rolled over)
NATURAL_CASES = {
    # 2 days from Fri Jan 24, 2025: Sat 25, Sun 26, a make-up working day: nothing to roll over.
    "2025 ends on a make-up Sunday": (dt.datetime(2025, 1, 24, 21, 30), 2, D(2025, 1, 26), D(2025, 1, 26), []),
    # 7 days: Jan 25..31 -> Fri Jan 31 (holiday) -> rolls over Jan 31..Feb 4 to Wed Feb 5.
    "2025 Spring Festival": (dt.datetime(2025, 1, 24, 21, 30), 7, D(2025, 1, 31), D(2025, 2, 5), span(D(2025, 1, 31), D(2025, 2, 4))),
    # 2 days from Tue Sep 30, 2025 -> Thu Oct 2 -> rolls over Oct 2..8 to Thu Oct 9.
    "2025 National Day, short": (dt.datetime(2025, 9, 30, 10, 0), 2, D(2025, 10, 2), D(2025, 10, 9), span(D(2025, 10, 2), D(2025, 10, 8))),
    # 7 days -> Tue Oct 7 -> rolls over Oct 7, 8 to Thu Oct 9.
    "2025 National Day, week": (dt.datetime(2025, 9, 30, 10, 0), 7, D(2025, 10, 7), D(2025, 10, 9), [D(2025, 10, 7), D(2025, 10, 8)]),
    # 2 days from Fri Feb 13, 2026, 23:30: Sat 14 (调休), Sun 15 (holiday) -> rolls over Feb 15..23 to Tue 24.
    "2026 Spring Festival, short": (dt.datetime(2026, 2, 13, 23, 30), 2, D(2026, 2, 15), D(2026, 2, 24), span(D(2026, 2, 15), D(2026, 2, 23))),
    # 7 days -> Fri Feb 20 -> rolls over Feb 20..23 to Tue 24.
    "2026 Spring Festival, week": (dt.datetime(2026, 2, 13, 23, 30), 7, D(2026, 2, 20), D(2026, 2, 24), span(D(2026, 2, 20), D(2026, 2, 23))),
    # 2 days from Thu Sep 17, 2026 -> Sat 19 (weekend) -> Sun 20 is a make-up working day.
    "2026 weekend rolls onto a make-up Sunday": (dt.datetime(2026, 9, 17, 15, 0), 2, D(2026, 9, 19), D(2026, 9, 20), [D(2026, 9, 19)]),
    # Start on a holiday (Sat Oct 3, 2026). 2 days -> Mon Oct 5 -> rolls over Oct 5..7 to Thu Oct 8.
    "2026 start on a holiday": (dt.datetime(2026, 10, 3, 12, 0), 2, D(2026, 10, 5), D(2026, 10, 8), span(D(2026, 10, 5), D(2026, 10, 7))),
    # 7 days -> Sat Oct 10, 2026, a make-up working day: no rollover.
    "2026 ends on a make-up Saturday": (dt.datetime(2026, 10, 3, 12, 0), 7, D(2026, 10, 10), D(2026, 10, 10), []),
    # UTC 16:30 on Sep 24 is 00:30 on Fri Sep 25 in Shanghai. 2 days -> Sun Sep 27 (Mid-Autumn) -> Mon 28.
    "2026 UTC start already the next day in Shanghai": (
        dt.datetime(2026, 9, 24, 16, 30, tzinfo=dt.timezone.utc), 2, D(2026, 9, 27), D(2026, 9, 28), [D(2026, 9, 27)],
    ),
}


@pytest.mark.parametrize("case", list(NATURAL_CASES))
def test_natural_day_clock(case):
    start, days, plain_due, rolled_due, rolled = NATURAL_CASES[case]
    plain = count_period(start=start, days=days, clock=DeadlineClock.NATURAL_DAYS, day_info=mainland_day)
    assert plain.due == due(plain_due)
    assert plain.skipped == [] and plain.rolled_over == []
    assert len(plain.counted_days) == days and plain.counted_days[-1] == plain_due
    with_rollover = count_period(
        start=start, days=days, clock=DeadlineClock.NATURAL_DAYS, day_info=mainland_day, holiday_rollover=True
    )
    assert with_rollover.due == due(rolled_due)
    assert [s.day for s in with_rollover.rolled_over] == rolled
    assert all(s.reason for s in with_rollover.rolled_over)
    assert with_rollover.counted_days == plain.counted_days and with_rollover.skipped == []


def test_rollover_reasons_are_the_calendar_reasons():
    r = count_period(
        start=dt.datetime(2025, 9, 30, 10), days=7, clock=DeadlineClock.NATURAL_DAYS, day_info=mainland_day,
        holiday_rollover=True,
    )
    assert [(s.day, s.reason, s.source) for s in r.rolled_over] == [
        (D(2025, 10, 7), NATIONAL, "odr_builtin_calendar"),
        (D(2025, 10, 8), NATIONAL, "odr_builtin_calendar"),
    ]


def test_rollover_does_not_apply_to_working_day_clock_or_counted_make_up_days():
    """A working-day period always ends on a working day; rollover changes nothing there."""
    for rollover in (False, True):
        r = count_period(
            start=dt.datetime(2026, 2, 12, 22), days=3, clock=DeadlineClock.WORKING_DAYS, day_info=mainland_day,
            holiday_rollover=rollover,
        )
        assert r.due == due(D(2026, 2, 24)) and r.rolled_over == []


def test_zero_day_period_is_due_at_the_end_of_the_start_day():
    for clock in DeadlineClock:
        for rollover in (False, True):
            r = count_period(
                start=dt.datetime(2026, 10, 9, 21, 0), days=0, clock=clock, day_info=mainland_day, holiday_rollover=rollover
            )
            assert r.due == due(D(2026, 10, 9)), (clock, rollover)
            assert r.counted_days == [] and r.skipped == [] and r.rolled_over == []
    # a 0-day working-day period started on a holiday: still the start day's end (nothing is counted)
    r = count_period(start=dt.datetime(2026, 10, 3, 9), days=0, clock=DeadlineClock.WORKING_DAYS, day_info=mainland_day)
    assert r.due == due(D(2026, 10, 3))


def test_a_memoised_calendar_counts_each_start_date_once_and_answers_as_without_memo():
    """Periods kept on a calendar's ``periods`` memo equal a fresh count, for every start time of the
    day and across holidays and make-up days; the start moment itself stays each explanation's own."""
    calls: list[dt.date] = []

    def memo_day(day):
        calls.append(day)
        return mainland_day(day)

    memo_day.periods = {}
    starts = [dt.datetime(2026, 2, 12, h, m) for h, m in ((0, 5), (9, 0), (23, 59))] + [
        dt.datetime(2025, 9, 28, 8), dt.datetime(2025, 9, 30, 17), dt.datetime(2026, 9, 24, 16, 30, tzinfo=dt.timezone.utc)]
    for clock in DeadlineClock:
        for rollover in (False, True):
            for days in (0, 2, 3, 7, 10):
                for start in starts:
                    fresh = count_period(start=start, days=days, clock=clock, day_info=mainland_day, holiday_rollover=rollover)
                    kept = count_period(start=start, days=days, clock=clock, day_info=memo_day, holiday_rollover=rollover)
                    assert kept == fresh, (clock, rollover, days, start)
    asked = len(calls)
    for start in starts:  # counted again: answered from the memo, the calendar is not asked
        count_period(start=start, days=10, clock=DeadlineClock.WORKING_DAYS, day_info=memo_day)
    assert len(calls) == asked
    # different moments of one day share the count, not the start
    a, b = (count_period(start=s, days=3, clock=DeadlineClock.WORKING_DAYS, day_info=memo_day) for s in starts[:2])
    assert a.counted_days == b.counted_days and a.due == b.due and a.start != b.start


def test_negative_days_are_refused():
    with pytest.raises(ValueError, match="days"):
        count_period(start=dt.datetime(2026, 1, 5), days=-1, clock=DeadlineClock.NATURAL_DAYS, day_info=mainland_day)


# -- the API ----------------------------------------------------------------------------------------


async def explain(client, user, node, start, tenant="shanghai"):
    params = {"node": node} if start is None else {"node": node, "start": start}
    return await client.get(f"/api/tenants/{tenant}/deadlines/explain", params=params, headers=await login(client, user))


async def test_api_answers_per_node(client, natural_at_jinshan):
    name = await natural_at_jinshan({"contact_days": 2, "close_days": 7, "holiday_rollover": True})
    start = "2026-09-30T21:45:00"  # Wed evening, Shanghai time

    r = await explain(client, "js-office-head", "310116-01", start)  # inherits the Jinshan policy
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["plugin"], body["policy"], body["policy_version"]) == (name, name, "0.2")
    # 2 natural days: Oct 1, 2 -> Fri Oct 2 (holiday) rolls over Oct 2..7 to Thu Oct 8
    assert body["contact"]["clock"] == "natural_days"
    assert body["contact"]["start"] == "2026-09-30T21:45:00+08:00"
    assert body["contact"]["start_day_not_counted"] == "2026-09-30"
    assert body["contact"]["counted_days"] == ["2026-10-01", "2026-10-02"]
    assert body["contact"]["skipped"] == []
    assert [x["day"] for x in body["contact"]["rolled_over"]] == [f"2026-10-0{i}" for i in range(2, 8)]
    assert {x["reason"] for x in body["contact"]["rolled_over"]} == {NATIONAL}
    assert body["contact"]["due"] == "2026-10-08T23:59:59+08:00"
    # 7 natural days: Oct 1..7 -> Wed Oct 7 (holiday) rolls over to Thu Oct 8
    assert body["close"]["due"] == "2026-10-08T23:59:59+08:00"
    assert [x["day"] for x in body["close"]["rolled_over"]] == ["2026-10-07"]

    r = await explain(client, "sh-admin", "310115", start)  # Pudong: national default
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["plugin"] == "odr_national_deadline"
    assert body["contact"]["clock"] == body["close"]["clock"] == "working_days"
    # Oct 1–7 off, Thu 8 1, Fri 9 2, Sat 10 (调休) 3
    assert body["contact"]["due"] == "2026-10-10T23:59:59+08:00"
    assert body["contact"]["counted_days"] == ["2026-10-08", "2026-10-09", "2026-10-10"]
    assert [(x["day"], x["reason"], x["source"]) for x in body["contact"]["skipped"]] == [
        (f"2026-10-0{i}", NATIONAL, "odr_builtin_calendar") for i in range(1, 8)
    ]
    # Sun 11 off, Mon 12–Fri 16 4–8, Sat 17 / Sun 18 off, Mon 19 9, Tue 20 10
    assert body["close"]["due"] == "2026-10-20T23:59:59+08:00"

    # without rollover, the same Jinshan policy ends on the holidays themselves
    await natural_at_jinshan({"contact_days": 2, "close_days": 7, "holiday_rollover": False})
    r = await explain(client, "js-officer", "310116", start)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["contact"]["due"], body["close"]["due"]) == ("2026-10-02T23:59:59+08:00", "2026-10-07T23:59:59+08:00")
    assert body["contact"]["rolled_over"] == body["close"]["rolled_over"] == []


async def test_api_start_forms(client, demo):
    # 2026-09-29T17:00Z is 01:00 on Sep 30 in Shanghai: same as a Shanghai-local Sep 30 start
    utc = await explain(client, "sh-admin", "310115", "2026-09-29T17:00:00Z")
    local = await explain(client, "sh-admin", "310115", "2026-09-30T01:00:00")
    offset = await explain(client, "sh-admin", "310115", "2026-09-30T01:00:00+08:00")
    assert utc.status_code == local.status_code == offset.status_code == 200, utc.text
    assert utc.json() == local.json() == offset.json()
    assert utc.json()["close"]["start"] == "2026-09-30T01:00:00+08:00"
    assert utc.json()["contact"]["due"] == "2026-10-10T23:59:59+08:00"
    # an unencoded "+08:00" arrives as " 08:00": still understood as the offset
    r = await client.get(
        "/api/tenants/shanghai/deadlines/explain?node=310115&start=2026-09-30T01:00:00+08:00",
        headers=await login(client, "sh-admin"),
    )
    assert r.status_code == 200, r.text
    assert r.json() == offset.json()


@pytest.mark.parametrize("start", [None, "", "tomorrow", "2026-13-01T10:00", "2026-02-30", "0001-01-01T00:00:00", "9999-12-31T23:00:00-12:00"])
async def test_api_bad_start_is_a_400_naming_start(client, demo, start):
    r = await explain(client, "js-officer", "310116", start)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "start"
    assert r.json()["detail"].startswith("start: ")


async def test_api_missing_node_is_a_400_naming_node(client, demo):
    r = await client.get(
        "/api/tenants/shanghai/deadlines/explain", params={"start": "2026-01-05T10:00"}, headers=await login(client, "sh-admin")
    )
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "node" and r.json()["detail"].startswith("node: required")


@pytest.mark.parametrize(
    "user, tenant, node",
    [
        ("js-officer", "shanghai", "310115"),  # Pudong is outside Jinshan
        ("js-office-head", "shanghai", "310116-02"),  # a sibling office
        ("js-officer", "shanghai", "999999"),  # no such node
        ("wx-officer", "shanghai", "310116"),  # another tenant's officer
        ("operator", "shanghai", "310116"),  # not a tenant member
    ],
)
async def test_api_is_404_outside_the_callers_subtree(client, demo, user, tenant, node):
    r = await explain(client, user, node, "bad start too", tenant=tenant)
    assert r.status_code == 404, r.text  # access is checked before the start is even read


async def test_api_needs_a_login(client, demo):
    r = await client.get("/api/tenants/shanghai/deadlines/explain", params={"node": "310116", "start": "2026-01-05T10:00"})
    assert r.status_code == 401


# -- the CLI ----------------------------------------------------------------------------------------


def _odr(settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("ODR_")
    } | {"ODR_DATABASE_URL": settings.database_url, "ODR_DATA_DIR": str(tmp_path), "ODR_LOG_LEVEL": "WARNING"}
    odr = Path(sys.executable).with_name("odr")
    return subprocess.run([str(odr), "deadlines", "explain", *args], env=env, capture_output=True, text=True, timeout=120)


async def test_cli_prints_the_same_json_as_the_api(client, demo, settings, tmp_path):
    start = "2025-01-24T21:30:00"
    proc = await asyncio.to_thread(_odr, settings, tmp_path, "--tenant", "shanghai", "--node", "310115", "--start", start)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    # worked out above: contact Wed Feb 5, close Thu Feb 13, 2025
    assert printed["contact"]["due"] == "2025-02-05T23:59:59+08:00"
    assert printed["close"]["due"] == "2025-02-13T23:59:59+08:00"
    assert {"day": "2025-01-28", "reason": SPRING, "source": "odr_builtin_calendar"} in printed["close"]["skipped"]
    api = await explain(client, "sh-admin", "310115", start)
    assert api.status_code == 200 and api.json() == printed


@pytest.mark.parametrize(
    "args, named",
    [
        (("--tenant", "shanghai", "--node", "310115", "--start", "next monday"), "--start"),
        (("--tenant", "shanghai", "--node", "999999", "--start", "2026-01-05T10:00"), "--node"),
        (("--tenant", "atlantis", "--node", "310115", "--start", "2026-01-05T10:00"), "--tenant"),
    ],
)
async def test_cli_bad_input_exits_2_with_a_clear_message(demo, settings, tmp_path, args, named):
    proc = await asyncio.to_thread(_odr, settings, tmp_path, *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert proc.stderr.strip().startswith(named), proc.stderr
    assert "Traceback" not in proc.stderr
