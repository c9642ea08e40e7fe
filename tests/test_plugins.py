"""The plugin host: activation per node with inheritance, conflicts, config validation, containment,
allow-list, and the documented hook contract."""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import logging
import sys
import textwrap
import types
from pathlib import Path
from typing import Annotated

import msgspec
import pytest

from core.pluginhost.host import PluginHost
from odr_plugin_api import SECRET_MASK, DeadlineRequest, Family, PluginInfo, Secret, hookimpl, hookspecs
from odr_plugin_api.secrets import changed_secrets, keep_secrets, mask_config, secret_fields
from odr_plugin_api.types import config_schema
from tests.conftest import login
from tests.sample_plugins import deadline_policy, local_holiday_calendar, raising_calendar

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def registered(demo):
    """Register test plugins on the running host; unregister (and forget their activations) after."""
    names: list[str] = []

    def register(plugin) -> str:
        name = plugin.odr_plugin_info().name
        demo.host.register(plugin, name=name)
        names.append(name)
        return name

    yield register
    for name in names:
        demo.host.unregister(name)
    demo.forget_activations("shanghai")


async def put(client, user, node, plugin, body, tenant="shanghai"):
    return await client.put(
        f"/api/tenants/{tenant}/policy/{node}/plugins/{plugin}", json=body, headers=await login(client, user)
    )


async def cleanup(demo, plugin):
    from core.db.engine import platform_transaction

    async with platform_transaction() as conn:
        await conn.execute("DELETE FROM odr.plugin_activations WHERE plugin = $1", plugin)


async def test_a_raising_plugin_does_not_break_the_request_path(client, demo, registered, caplog):
    name = registered(raising_calendar(on=dt.date(2026, 10, 10)))
    r = await put(client, "js-officer", "310116", name, {"active": True})
    assert r.status_code == 200, r.text
    before = demo.host.failures[(name, "odr_calendar_day")]
    with caplog.at_level(logging.INFO):
        r = await client.get("/api/tenants/shanghai/calendar/310116-01/2026-10-10", headers=await login(client, "js-office-head"))
    assert r.status_code == 200
    assert r.json() == {
        "day": "2026-10-10",
        "working": True,
        "reason": "make-up working day (调休) for National Day 国庆节",
        "source": "odr_builtin_calendar",
        "provisional": False,
    }
    assert demo.host.failures[(name, "odr_calendar_day")] == before + 1
    assert "13800138000" not in caplog.text  # the plugin's message (personal data) is never logged
    assert name in caplog.text
    await cleanup(demo, name)


async def test_activation_is_inherited_and_overridden_with_sources_shown(client, demo, registered):
    holiday = dt.date(2026, 3, 5)  # a Thursday
    name = registered(local_holiday_calendar("t_local_holiday", holiday))
    assert (await put(client, "js-officer", "310116", name, {"active": True})).status_code == 200
    assert (await put(client, "js-officer", "310116-02", name, {"active": False})).status_code == 200

    async def working(user, node):
        r = await client.get(f"/api/tenants/shanghai/calendar/{node}/{holiday}", headers=await login(client, user))
        assert r.status_code == 200, r.text
        return r.json()["working"], r.json()["source"]

    assert await working("js-office-head", "310116-01") == (False, name)  # inherited from the district
    assert await working("js-officer", "310116-02") == (True, "odr_builtin_calendar")  # overridden below
    assert await working("sh-admin", "310115-01") == (True, "odr_builtin_calendar")  # another district
    r = await client.get("/api/tenants/shanghai/policy/310116-01", headers=await login(client, "js-office-head"))
    choice = next(c for c in r.json()["choices"] if c["plugin"] == name)
    assert choice["active"] is True and choice["source"] == "310116"
    r = await client.get("/api/tenants/shanghai/policy/310116/audit", headers=await login(client, "js-officer"))
    entries = [e for e in r.json() if e["plugin"] == name]
    assert [(e["node_code"], e["new"]["active"]) for e in entries] == [("310116-02", False), ("310116", True)]
    assert entries[1]["old"] is None and entries[0]["actor"] == "js-officer"
    await cleanup(demo, name)


async def test_conflicting_deciders_are_refused_and_nothing_is_saved(client, demo, registered, jinshan_on_national):
    p1 = registered(deadline_policy("t_policy_one"))
    p2 = registered(deadline_policy("t_policy_two"))
    assert (await put(client, "js-officer", "310116", p1, {"active": True})).status_code == 200
    r = await put(client, "js-officer", "310116-01", p2, {"active": True})
    assert r.status_code == 409
    assert "deadline_policy" in r.json()["detail"] and p1 in r.json()["detail"] and p2 in r.json()["detail"]
    r = await put(client, "sh-admin", "310000", p2, {"active": True})  # would clash below, in Jinshan
    assert r.status_code == 409 and "310116" in r.json()["detail"]
    r = await client.get("/api/tenants/shanghai/policy/310115", headers=await login(client, "sh-admin"))
    assert next(c for c in r.json()["choices"] if c["plugin"] == p2)["active"] is False
    # switching is possible: deactivate one, then activate the other
    assert (await put(client, "js-officer", "310116", p1, {"active": False})).status_code == 200
    assert (await put(client, "sh-admin", "310000", p2, {"active": True})).status_code == 200
    await cleanup(demo, p1)
    await cleanup(demo, p2)


async def test_config_is_validated_before_save_and_reaches_the_plugin(client, demo, registered, jinshan_on_national):
    name = registered(deadline_policy("t_policy_cfg"))
    r = await put(client, "js-officer", "310116", name, {"active": True, "config": {"contact_days": "two"}})
    assert r.status_code == 400
    assert r.json()["field"] == "config.contact_days", r.json()
    r = await put(client, "js-officer", "310116", name, {"active": True, "config": {"colour": 1}})
    assert r.status_code == 400 and "colour" in r.json()["detail"]
    r = await put(client, "js-officer", "310116", name, {"active": True, "config": {"contact_days": 4}})
    assert r.status_code == 200
    choice = next(c for c in r.json()["choices"] if c["plugin"] == name)
    assert choice["config"] == {"contact_days": 4, "close_days": 7}
    scope, active = await demo.scope("shanghai", "310116-01")
    plan, who = demo.host.call_first(
        "odr_deadline_policy", active=active, scope=scope, request=DeadlineRequest(start=dt.datetime(2026, 5, 6, 10))
    )
    assert (who, plan.contact_days, plan.close_days) == (name, 4, 7)
    scope, active = await demo.scope("shanghai", "310115")
    plan, who = demo.host.call_first(
        "odr_deadline_policy", active=active, scope=scope, request=DeadlineRequest(start=dt.datetime(2026, 5, 6, 10))
    )
    assert (who, plan.contact_days) == ("odr_national_deadline", 3)
    await cleanup(demo, name)


async def test_who_may_toggle(client, demo, registered, jinshan_on_national):
    name = registered(deadline_policy("t_policy_roles"))
    assert (await put(client, "js-office-head", "310116-01", name, {"active": True})).status_code == 403
    assert (await put(client, "js-officer", "310115", name, {"active": True})).status_code == 404
    assert (await put(client, "js-officer", "310116", "no_such_plugin", {"active": True})).status_code == 404
    assert (await put(client, "wx-officer", "310116", name, {"active": True}, tenant="shanghai")).status_code == 404


def test_every_hook_is_documented():
    readme = (ROOT / "plugins" / "odr-plugin-api" / "README.md").read_text()
    hooks = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("odr_")]
    assert len(hooks) >= 6
    for name in hooks:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc) > 40, f"hook {name} has no docstring"
        assert f"`{name}`" in readme, f"hook {name} is missing from plugins/odr-plugin-api/README.md"


def _plugin(name, *, default=False, trylast=False, kwonly=False):
    @hookimpl
    def odr_plugin_info():
        return PluginInfo(name=name, version="1", title=name, families=(Family.CALENDAR,), default=default)

    if kwonly:

        @hookimpl(trylast=trylast)
        def odr_calendar_day(*, scope, day):
            return None

    else:

        @hookimpl(trylast=trylast)
        def odr_calendar_day(scope, day):
            return None

    return types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_calendar_day=odr_calendar_day)


def test_registration_contract():
    host = PluginHost()
    with pytest.raises(ValueError, match="must mark its hooks trylast"):
        host.register(_plugin("eager_default", default=True), name="eager_default")
    with pytest.raises(ValueError, match="keyword-only"):
        host.register(_plugin("kwonly", kwonly=True), name="kwonly")
    with pytest.raises(ValueError, match="must return PluginInfo"):
        host.register(_plugin("named_a"), name="named_b")
    host.register(_plugin("good_default", default=True, trylast=True), name="good_default")
    assert host.defaults == {"good_default"}


def test_installed_plugins_load_only_when_allowed(tmp_path):
    (tmp_path / "vendor_holidays_x.py").write_text(
        textwrap.dedent(
            """
            from odr_plugin_api import Family, PluginInfo, hookimpl

            @hookimpl
            def odr_plugin_info():
                return PluginInfo(name="vendor_holidays_x", version="1.0", title="x", families=(Family.CALENDAR,))
            """
        )
    )
    dist = tmp_path / "vendor_holidays_x-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vendor-holidays-x\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[odr.plugins]\nvendor_holidays_x = vendor_holidays_x\n")
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    try:
        host = PluginHost("builtin")
        host.load_entry_points()
        assert host.discovered["vendor_holidays_x"].allowed is False
        assert "vendor_holidays_x" not in host.infos and "vendor_holidays_x" not in sys.modules
        assert "odr_builtin_calendar" in host.infos
        host = PluginHost("builtin,vendor_holidays_x")
        host.load_entry_points()
        assert host.discovered["vendor_holidays_x"].loaded is True
        assert host.infos["vendor_holidays_x"].version == "1.0"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("vendor_holidays_x", None)


class Vendor(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A vendor-style config with a constrained and an optional secret and a non-empty secret default."""

    endpoint: str = "https://gw.example/send"
    key: Annotated[Secret, msgspec.Meta(max_length=40)] = "factory-default-key"
    token: Secret | None = None


def test_secret_fields_are_masked_kept_and_replaced_by_the_helpers():
    """The rules every output and save applies (odr_plugin_api.secrets), on a vendor-style Struct: the
    nested constraint and the optional form are found, a non-empty default is masked in the schema."""
    assert secret_fields(Vendor) == {"key", "token"} and secret_fields(None) == frozenset()
    stored = {"endpoint": "https://gw.example/send", "key": "k-123", "token": None}
    assert mask_config(Vendor, stored) == {"endpoint": "https://gw.example/send", "key": SECRET_MASK, "token": None}
    assert stored["key"] == "k-123"  # a copy, never the stored dict changed
    assert keep_secrets(Vendor, {"endpoint": "https://x.example"}, stored) == {"endpoint": "https://x.example", "key": "k-123",
                                                                                 "token": None}
    assert keep_secrets(Vendor, mask_config(Vendor, stored), stored) == stored  # read back and saved: unchanged
    assert keep_secrets(Vendor, {"key": "", "token": "t"}, stored) == {"key": "", "token": "t"}  # cleared, set
    assert keep_secrets(Vendor, {"key": SECRET_MASK}, None) == {}  # nothing in force: the default applies
    assert changed_secrets(Vendor, stored, {**stored, "key": "k-456"}) == ["key"]
    props = config_schema(Vendor)["$defs"]["Vendor"]["properties"]
    assert props["key"]["default"] == SECRET_MASK and props["key"]["writeOnly"] and props["key"]["maxLength"] == 40
    assert "factory-default-key" not in str(config_schema(Vendor)) and "writeOnly" not in str(props["endpoint"])
