"""The vendor's own tests. The contract tests come from pytest-odr (``odr_plugins`` in pyproject.toml,
or ``pytest --odr-plugin acme_guangxi_calendar``); these check the festival itself."""

import datetime as dt

import pytest

import acme_guangxi_calendar as gx
from odr_plugin_api import Scope


def scope(**config):
    configs = {gx.NAME: gx.GuangxiCalendarConfig(**config)} if config else {}
    return Scope(tenant="guangxi", node_path=("450000", "450100"), configs=configs)


@pytest.mark.parametrize(
    "year, first",
    [(2024, dt.date(2024, 4, 11)), (2025, dt.date(2025, 3, 31)), (2026, dt.date(2026, 4, 19)), (2027, dt.date(2027, 4, 9))],
)
def test_two_days_off_from_lunar_3_3(year, first):
    assert gx.festival_start(year) == first
    for day in (first, first + dt.timedelta(days=1)):
        info = gx.odr_calendar_day(scope(), day)
        assert info.day == day and info.working is False and "三月三" in info.reason and info.source == gx.NAME
    assert gx.odr_calendar_day(scope(), first - dt.timedelta(days=1)) is None
    assert gx.odr_calendar_day(scope(), first + dt.timedelta(days=2)) is None


def test_other_days_defer_to_the_next_calendar():
    answered = [d for d in (dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(365))
                if gx.odr_calendar_day(scope(), d) is not None]
    assert answered == [dt.date(2026, 4, 19), dt.date(2026, 4, 20)]


def test_config_days_off_and_the_years_arrangement():
    s = scope(days_off=3, extra_days_off=(dt.date(2026, 4, 22),), makeup_working_days=(dt.date(2026, 4, 26),))
    assert [gx.odr_calendar_day(s, dt.date(2026, 4, d)).working for d in (19, 20, 21, 22, 26)] == [False] * 4 + [True]
    assert gx.odr_calendar_day(s, dt.date(2026, 4, 23)) is None


def test_outside_the_lunar_tables_it_defers():
    assert gx.odr_calendar_day(scope(), dt.date(2150, 4, 1)) is None


def test_contract_through_the_fixture(odr_contract):
    results = odr_contract("acme_guangxi_calendar", checks=["config", "calendar"])
    assert [r.status for r in results] == ["passed", "passed"]
