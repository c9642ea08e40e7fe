"""The provisional mainland calendar (a year without a State Council notice) against the law and the
known notices: its days off are the statutory holidays of 全国年节及纪念日放假办法 placed by the
holidays library, checked against two other libraries (lunardate for the lunar festivals,
chinese-calendar's solar terms for Qingming) and against the 2025 and 2026 notices; a provisional
deadline equals the final one except where a notice's own arrangement (make-up working days, further
days off) falls in its counting."""

from __future__ import annotations

import datetime as dt

import chinese_calendar
import pytest
from lunardate import LunarDate

from core.deadlines.counting import count_period
from odr_builtin_calendar import NAME, mainland_day
from odr_builtin_calendar.provisional import provisional_day
from odr_plugin_api import DeadlineClock


def days_of(year: int) -> list[dt.date]:
    first = dt.date(year, 1, 1)
    return [first + dt.timedelta(days=i) for i in range((dt.date(year + 1, 1, 1) - first).days)]


def provisional(day: dt.date):
    return provisional_day(day, NAME)


def test_a_year_without_notice_is_answered_provisionally_with_new_years_day_off():
    with pytest.raises(NotImplementedError):  # chinese-calendar has no notice for 2027
        chinese_calendar.is_workday(dt.date(2027, 1, 1))
    info = mainland_day(dt.date(2027, 1, 1))
    assert info.working is False and info.provisional is True and info.source == NAME
    assert "元旦" in info.reason and "provisional" in info.reason and "2027" in info.reason
    assert all(mainland_day(d).provisional for d in days_of(2027))
    assert not any(mainland_day(d).provisional for d in days_of(2026))  # the 2026 notice is known


@pytest.mark.parametrize("year", [2027, 2028, 2029, 2030])
def test_lunar_and_solar_term_festivals_agree_with_independent_libraries(year):
    def off(day):
        info = provisional(day)
        return not info.working and "statutory holiday" in info.reason

    new_year = LunarDate(year, 1, 1).to_solar_date()
    eve = new_year - dt.timedelta(days=1)  # the Eve: the day before the 1st of the 1st lunar month
    for day in (eve, new_year, new_year + dt.timedelta(days=1), new_year + dt.timedelta(days=2)):
        assert off(day), day
    assert not off(new_year + dt.timedelta(days=3))  # three days from the 1st, no fourth
    assert off(LunarDate(year, 5, 5).to_solar_date()) and off(LunarDate(year, 8, 15).to_solar_date())
    qingming = [d for d, name in chinese_calendar.get_solar_terms(dt.date(year, 4, 1), dt.date(year, 4, 30))
                if "清明" in name or "Qing" in name]
    assert len(qingming) == 1 and off(qingming[0])
    for m, d in ((1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)):
        assert off(dt.date(year, m, d))
    assert not off(dt.date(year, 5, 3)) and not off(dt.date(year, 10, 4))
    # no make-up working days: every weekend day is a rest day
    assert all(not provisional(d).working for d in days_of(year) if d.weekday() >= 5)


def test_the_2025_amendment_eve_and_labour_day_2_may_not_before():
    for year in (2025, 2026, 2027):
        eve = LunarDate(year, 1, 1).to_solar_date() - dt.timedelta(days=1)
        assert "statutory holiday" in provisional(eve).reason, eve
        assert "statutory holiday" in provisional(dt.date(year, 5, 2)).reason
    for year in (2015, 2019, 2024):  # the text in force before 2025
        eve = LunarDate(year, 1, 1).to_solar_date() - dt.timedelta(days=1)
        assert "statutory holiday" not in provisional(eve).reason, eve
        assert "statutory holiday" not in provisional(dt.date(year, 5, 2)).reason
        assert "statutory holiday" in provisional(dt.date(year, 5, 1)).reason


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_provisional_days_off_are_days_off_in_the_known_notices(year):
    """Every provisional day off (statutory holidays, 补假 days, weekends) is a day off in the notice,
    except the notice's make-up working days; every day they differ on is the notice's own arrangement:
    a make-up working day or a further day off (in lieu)."""
    differing = []
    for day in days_of(year):
        p, final = provisional(day), mainland_day(day)
        assert final.provisional is False and p.provisional is True
        if p.working != final.working:
            differing.append(day)
            assert (final.working and day.weekday() >= 5) or chinese_calendar.is_in_lieu(day), (day, p.reason, final.reason)
    makeup = [d for d in days_of(year) if d.weekday() >= 5 and mainland_day(d).working]
    in_lieu = [d for d in days_of(year) if chinese_calendar.is_in_lieu(d) and not mainland_day(d).working]
    assert sorted(makeup + in_lieu) == differing and makeup and in_lieu


def _due(start: dt.date, days: int, day_info) -> dt.datetime:
    return count_period(start=dt.datetime.combine(start, dt.time(10), dt.timezone(dt.timedelta(hours=8))), days=days,
                        clock=DeadlineClock.WORKING_DAYS, day_info=day_info).due


@pytest.mark.parametrize("days", [3, 10])
def test_provisional_deadline_equals_the_final_one_except_where_the_notice_arrangement_falls(days):
    equal = differ = 0
    start = dt.date(2025, 1, 1)
    while start < dt.date(2026, 12, 10):
        p, final = _due(start, days, provisional), _due(start, days, mainland_day)
        last = max(p, final).date()
        window = [start + dt.timedelta(days=i) for i in range(1, (last - start).days + 1)]
        arrangement = [d for d in window if provisional(d).working != mainland_day(d).working]
        if not arrangement:
            assert p == final, (start, p, final)  # the notice only added fixed holidays here
        elif p != final:  # they part at a day of the notice's own arrangement, inside both periods
            assert arrangement[0] <= min(p, final).date(), (start, p, final, arrangement)
        equal += p == final
        differ += p != final
        start += dt.timedelta(days=1)
    assert equal > differ > 0
