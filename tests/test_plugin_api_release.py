"""The plugin API as a vendor gets it (issue 27): indicators defined once and followed by the
platform, the built-in formulas, the kit and the docs; a versioned API the host enforces; a licence in
every distribution; the wheels built offline by ``deploy/dev.py dist``; platform imports refused; a
plugin that failed to load shown by /health."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import tomllib
import types
import zipfile
from pathlib import Path

import msgspec
import pytest

from core.pluginhost.host import PluginHost
from odr_plugin_api import API_VERSION, Family, Indicators, PluginInfo, hookimpl
from odr_plugin_api.indicators import DEFINITIONS, definitions_table, satisfaction_share
from odr_plugin_api.platform_imports import imports_in_source
from odr_plugin_api.versioning import incompatibility

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = [ROOT, *sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml")),
            *sorted(p.parent for p in (ROOT / "plugins" / "vendor-examples").glob("*/pyproject.toml"))]


# -- 1 / 9: indicators ------------------------------------------------------------------------------
def test_every_indicator_is_defined_once_and_documented():
    assert list(DEFINITIONS) == list(Indicators.__struct_fields__)
    readme = (ROOT / "plugins" / "odr-plugin-api" / "README.md").read_text()
    assert definitions_table() in readme  # the README's table is the definitions, word for word
    assert DEFINITIONS["satisfaction"].scale == "1..5"
    assert "natural days" in DEFINITIONS["avg_cycle_days"].unit
    assert "feedback" in DEFINITIONS["settlement_rate"].denominator
    assert "1..5" in Indicators.__doc__ and "0..1" not in Indicators.__doc__.split("satisfaction")[1][:40]


def test_the_platform_passes_satisfaction_as_a_mean_rating_and_the_formulas_read_it_so():
    from core.evaluation.scoring import unit_indicators
    from odr_scoring_formulas import satisfaction_scaled

    row = {"handled": 4, "settled": 3, "with_feedback": 4, "satisfaction": 4.5, "avg_cycle_days": 2.25,
           "contact_on_time": 4, "contact_judged": 4, "close_on_time": 3, "close_judged": 4, "breaches": 1,
           "untrue_feedback": 0, "previous": 2, "cls": "A"}
    got = unit_indicators(row)
    assert (got.satisfaction, got.settlement_rate, got.avg_cycle_days) == (4.5, 0.75, 2.25)
    assert satisfaction_scaled is satisfaction_share
    assert [satisfaction_share(x) for x in (1.0, 3.0, 5.0, None)] == [0.0, 0.5, 1.0, None]


def test_the_kit_samples_are_realistic_and_count_on_the_real_calendar():
    from pytest_odr import samples
    from pytest_odr.family_checks import _due
    from odr_plugin_api import DeadlineClock

    for i in samples.INDICATORS:
        assert i.satisfaction is None or 1.0 <= i.satisfaction <= 5.0, i
        assert 0 <= i.settlement_rate <= 1 and (i.avg_cycle_days is None or i.avg_cycle_days >= 0)
    # the vendor: 2 working days from Fri 9 Oct 2026 count the make-up Saturday 10 Oct and Mon 12 Oct;
    # 3 working days from Wed 30 Sep skip the National Day holiday (1-7 Oct): 8, 9, 10 Oct
    start = dt.datetime(2026, 10, 9, 10, tzinfo=samples.TZ)
    assert _due(start, 2, DeadlineClock.WORKING_DAYS, False).date() == dt.date(2026, 10, 12)
    start = dt.datetime(2026, 9, 30, 15, tzinfo=samples.TZ)
    assert _due(start, 3, DeadlineClock.WORKING_DAYS, False).date() == dt.date(2026, 10, 10)
    assert _due(start, 2, DeadlineClock.NATURAL_DAYS, True).date() == dt.date(2026, 10, 8)  # 2 Oct rolls over


# -- 8: version, licence, wheels --------------------------------------------------------------------
def versioned(name: str, api_version: str) -> types.SimpleNamespace:
    @hookimpl
    def odr_plugin_info():
        return PluginInfo(name=name, version="1", title=name, families=(Family.CALENDAR,), api_version=api_version)

    @hookimpl
    def odr_calendar_day(scope, day):
        return None

    return types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_calendar_day=odr_calendar_day)


def test_the_host_refuses_an_incompatible_plugin_api_version_with_a_clear_message():
    host = PluginHost()
    major = int(API_VERSION.split(".")[0])
    for ok in ("", "1.0", API_VERSION, f"{major}.0.7"):
        host.register(versioned(f"t_ok_{len(host.infos)}", ok), name=f"t_ok_{len(host.infos)}")
    with pytest.raises(ValueError, match=rf"built for odr-plugin-api {major + 1}\.0 .*install a release of the plugin built for odr-plugin-api {major}\.x"):
        host.register(versioned("t_next_major", f"{major + 1}.0"), name="t_next_major")
    with pytest.raises(ValueError, match="newer than this platform's"):
        host.register(versioned("t_newer_minor", f"{major}.99"), name="t_newer_minor")
    assert "t_next_major" not in host.infos and incompatibility("one.two")


def test_every_distribution_states_its_licence_and_the_api_its_version():
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    for project in PROJECTS:
        meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
        assert meta["license"] == "Apache-2.0" and meta["license-files"] == ["LICENSE"], project
        assert (project / "LICENSE").read_text() == (ROOT / "LICENSE").read_text(), project
    changelog = (ROOT / "plugins" / "odr-plugin-api" / "CHANGELOG.md").read_text()
    assert f"## {API_VERSION}" in changelog
    assert re.fullmatch(r"\d+\.\d+\.\d+", API_VERSION)


def test_dist_builds_the_vendor_wheels_offline(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "deploy" / "dev.py"), "dist", str(tmp_path)], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    wheels = sorted(p.name for p in tmp_path.glob("*.whl"))
    assert wheels == [f"odr_plugin_api-{API_VERSION}-py3-none-any.whl", "pytest_odr-1.1.0-py3-none-any.whl"], wheels
    for wheel in tmp_path.glob("*.whl"):
        with zipfile.ZipFile(wheel) as z:
            metadata = z.read(next(n for n in z.namelist() if n.endswith("/METADATA"))).decode()
            assert "License-Expression: Apache-2.0" in metadata
            assert any(n.endswith("licenses/LICENSE") for n in z.namelist())
            assert not any(n.startswith(("core/", "odr/", "tenants/", "admin_ui/")) for n in z.namelist())


# -- 5: platform imports ----------------------------------------------------------------------------
def test_imports_of_the_platform_are_found_in_any_form():
    source = ("import core.settings\nfrom odr.cli import main\nimport odr_plugin_api\n"
              "def f():\n    from tenants import manifest\n    import importlib\n"
              "    return importlib.import_module('admin_ui.app')\n")
    found = imports_in_source(source, "p.py")
    assert sorted(found) == ["p.py:1 imports core.settings", "p.py:2 imports odr.cli", "p.py:5 imports tenants",
                             "p.py:7 imports admin_ui.app"]


def test_the_host_refuses_an_outside_plugin_importing_the_platform_and_health_lists_it(tmp_path):
    """In a subprocess: a vendor distribution whose plugin imports ``core`` is refused at load time
    (before it runs), ``/health`` says degraded and lists it."""
    pkg = tmp_path / "src" / "acme_peek"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "from odr_plugin_api import Family, PluginInfo, hookimpl\n"
        "from core.db.engine import platform_transaction  # the platform's internals\n\n"
        "@hookimpl\ndef odr_plugin_info():\n"
        "    return PluginInfo(name='acme_peek', version='1', title='peek', families=(Family.CALENDAR,))\n")
    info = tmp_path / "dists" / "acme_peek-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-peek\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[odr.plugins]\nacme_peek = acme_peek\n")
    code = (
        "import sys, asyncio, json\n"
        "from core.pluginhost.host import PluginHost\n"
        "host = PluginHost('builtin,acme_peek'); host.load_entry_points()\n"
        "d = host.discovered['acme_peek']\n"
        "print(json.dumps({'loaded': d.loaded, 'error': d.error, 'imported': 'acme_peek' in sys.modules,"
        " 'failures': [f.name for f in host.load_failures]}))\n"
    )
    env = {"PYTHONPATH": f"{tmp_path / 'dists'}:{tmp_path / 'src'}:{ROOT}", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    got = msgspec.json.decode(r.stdout.strip().splitlines()[-1])
    assert got["loaded"] is False and got["imported"] is False and got["failures"] == ["acme_peek"]
    assert "imports the platform's internals" in got["error"] and "acme_peek/__init__.py:2 imports core.db.engine" in got["error"]


async def test_health_is_degraded_and_names_plugins_that_failed_to_load(client, demo):
    from core.pluginhost.host import Discovered

    demo.host.discovered["t_unloadable"] = Discovered("t_unloadable", "acme-unloadable", "2.0", allowed=True, loaded=False,
                                                      error="plugin t_unloadable: built for odr-plugin-api 2.0")
    try:
        r = await client.get("/health")
        assert r.status_code == 200
        assert r.json()["status"] == "degraded" and r.json()["plugins_failed"] == [
            {"name": "t_unloadable", "distribution": "acme-unloadable", "version": "2.0",
             "error": "plugin t_unloadable: built for odr-plugin-api 2.0"}]
    finally:
        del demo.host.discovered["t_unloadable"]
    assert (await client.get("/health")).json()["status"] == "ok"
