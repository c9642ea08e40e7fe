"""A vendor's plugin as the platform receives it (issue 27): answers checked against their contracts
(odr_plugin_api.contracts, by the host and the kit alike), a deadline plugin's failure visible on the
complaint and in explain, activation trying the plugin first, tracebacks in the log without personal
data, strict configuration decoding, due times in Asia/Shanghai."""

from __future__ import annotations

import datetime as dt
import logging
import math
import types
from typing import Annotated

import msgspec
import pytest

from core.pluginhost.host import PluginHost, PluginUnavailable
from odr_plugin_api import (
    ClassificationResult,
    DayInfo,
    DeadlineClock,
    DeadlinePlan,
    DeadlineRequest,
    Family,
    Indicators,
    PluginInfo,
    Scope,
    ScoreResult,
    hookimpl,
)
from odr_plugin_api.contracts import ContractViolation, check_answer
from odr_plugin_api.samples import TYPICAL_INDICATORS
from tests.complaint_helpers import active_unit, consumer
from tests.conftest import login
from tests.test_plugins import cleanup, put, registered  # noqa: F401 (registered is a fixture)

NODE = "310115"  # Pudong: the national deadline policy, no plugin of its own


def plan(**changes) -> DeadlinePlan:
    values = dict(policy="p", version="1", contact_days=2, contact_clock=DeadlineClock.WORKING_DAYS, close_days=7,
                  close_clock=DeadlineClock.WORKING_DAYS)
    return DeadlinePlan(**{**values, **changes})


def score(value: float, **parts) -> ScoreResult:
    return ScoreResult(formula="f", version="1", score=value, parts=parts)


INFO = PluginInfo(name="v", version="1", title="v", classes=("A", "B"))


@pytest.mark.parametrize("hook, answer, problem", [
    ("odr_score_enterprise", score(176.44), "outside 0..100"),
    ("odr_score_enterprise", score(-0.5), "outside 0..100"),
    ("odr_score_enterprise", score(math.nan), "not a finite number"),
    ("odr_score_enterprise", score(50, settlement=math.inf), "not finite numbers"),
    ("odr_score_enterprise", {"score": 50}, "not a ScoreResult"),
    ("odr_deadline_policy", plan(contact_days=0), "contact_days is 0"),
    ("odr_deadline_policy", plan(close_days=-3), "close_days is -3"),
    ("odr_deadline_policy", plan(contact_days="2"), "not a whole number"),
    ("odr_deadline_policy", plan(close_days=400), "1..366"),
    ("odr_deadline_policy", plan(close_clock="business_days"), "not a DeadlineClock"),
    ("odr_deadline_policy", plan(policy=""), "must name the policy"),
    ("odr_classify_enterprise", ClassificationResult(scheme="s", code="Z", label="z"), "not among the declared"),
    ("odr_calendar_day", DayInfo(day=dt.date(2026, 10, 10), working=True, reason=""), "reason is empty"),
    ("odr_check_enterprise_standing", {"status": "maybe"}, "not one of clear, listed, unknown"),
])
def test_answers_out_of_contract_are_named(hook, answer, problem):
    with pytest.raises(ContractViolation) as caught:
        check_answer(hook, answer, INFO)
    assert problem in str(caught.value) and caught.value.hook == hook and caught.value.plugin == "v"


@pytest.mark.parametrize("hook, answer", [
    ("odr_score_enterprise", score(0)), ("odr_score_enterprise", score(100, a=60.0, b=40)),
    ("odr_deadline_policy", plan(contact_days=1, close_days=366, close_clock=DeadlineClock.NATURAL_DAYS)),
    ("odr_classify_enterprise", ClassificationResult(scheme="s", code="B", label="b")),
    ("odr_score_enterprise", None), ("odr_deadline_policy", None), ("odr_notify", "anything"),
])
def test_answers_within_contract_pass(hook, answer):
    check_answer(hook, answer, INFO)


def scorer(name: str, answer) -> types.SimpleNamespace:
    @hookimpl
    def odr_plugin_info():
        return PluginInfo(name=name, version="0.1", title=name, families=(Family.SCORING,))

    @hookimpl
    def odr_score_enterprise(scope, indicators):
        return answer(indicators)

    return types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_score_enterprise=odr_score_enterprise)


def test_the_host_treats_an_answer_out_of_contract_like_an_exception():
    """The issue's vendor formula read satisfaction as 0..1 and scored 176.44: the host refuses it."""
    host = PluginHost()
    host.register(scorer("t_over_100", lambda i: score(30 * i.satisfaction + 50 * i.settlement_rate + 20)),
                  name="t_over_100")
    call = host.first_answerer("odr_score_enterprise", active={"t_over_100"})
    with pytest.raises(PluginUnavailable) as caught:
        call(scope=Scope(tenant="t", node_path=("1",)), indicators=TYPICAL_INDICATORS)
    (failure,) = caught.value.failures
    assert (failure.plugin, failure.hook, failure.error) == ("t_over_100", "odr_score_enterprise", "ContractViolation")
    assert "outside 0..100" in failure.detail and failure.failures == 1
    assert host.failures[("t_over_100", "odr_score_enterprise")] == 1


class Switch:
    """A plugin that works until the test breaks it (as a vendor's plugin that passed its trial and
    fails later on some input)."""

    broken = False


def flaky_deadline(name: str, switch: type[Switch]) -> types.SimpleNamespace:
    @hookimpl
    def odr_plugin_info():
        return PluginInfo(name=name, version="0.1", title="flaky", families=(Family.DEADLINE_POLICY,))

    @hookimpl
    def odr_deadline_policy(scope, request):
        if switch.broken:
            phone = "13912345678"
            raise ZeroDivisionError(f"cannot plan for {phone}")  # personal data in the message: scrubbed
        return DeadlinePlan(policy=name, version="0.1", contact_days=2, contact_clock=DeadlineClock.WORKING_DAYS,
                            close_days=7, close_clock=DeadlineClock.WORKING_DAYS)

    return types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_deadline_policy=odr_deadline_policy)


async def forget(demo, plugin, node: str | None = None):
    """Remove the test's activation records of ``plugin`` (only at ``node`` when given: a built-in's
    records elsewhere, e.g. the province's scoring formula, belong to the demo)."""
    if node is None:
        await cleanup(demo, plugin)
    else:
        from core.db.engine import platform_transaction

        async with platform_transaction() as conn:
            await conn.execute("DELETE FROM odr.plugin_activations WHERE tenant = 'shanghai' AND plugin = $1"
                               " AND node_code = $2", plugin, node)
    demo.forget_activations("shanghai")


async def test_a_failing_deadline_plugin_is_shown_on_explain_and_the_complaint(client, demo, registered, caplog):
    class S(Switch):
        pass

    name = registered(flaky_deadline("t_flaky_deadline", S))
    r = await put(client, "sh-admin", NODE, name, {"active": True})
    assert r.status_code == 200, r.text
    try:
        S.broken = True
        head = await login(client, "sh-admin")
        with caplog.at_level(logging.ERROR):
            r = await client.get("/api/tenants/shanghai/deadlines/explain",
                                 params={"node": NODE, "start": "2026-06-01T10:00:00+08:00"}, headers=head)
        assert r.status_code == 200, r.text
        explained = r.json()
        assert explained["plugin"] == "odr_national_deadline"
        (fallback,) = explained["fallback_from"]
        assert (fallback["plugin"], fallback["hook"], fallback["error"]) == (
            name, "odr_deadline_policy", "ZeroDivisionError")
        assert fallback["at"] and fallback["failures"] >= 1
        # the log has the traceback (the plugin's file and line) without the personal data
        assert "Traceback" in caplog.text and "test_plugin_answers.py" in caplog.text
        assert "raise ZeroDivisionError" in caplog.text and "13912345678" not in caplog.text

        user = await consumer(client, "shanghai")
        cons = await login(client, user, "demo12315-pw")
        unit = await active_unit("shanghai", NODE)
        body = {"company_name": "某公司", "enterprise_id": unit["id"], "route": "odr", "subject": "退货纠纷",
                "description": "商品有质量问题。", "consumer_name": "陈先生", "consumer_phone": "13500001234"}
        r = await client.post("/api/tenants/shanghai/complaints", json=body, headers=cons)
        assert r.status_code == 201, r.text
        complaint = r.json()["complaint"]
        assert complaint["deadline_policy"] == "odr_national_deadline"
        assert complaint["contact_due"].endswith("+08:00") and complaint["close_due"].endswith("+08:00")
        r = await client.get(f"/api/tenants/shanghai/complaints/{complaint['id']}/deadlines", headers=cons)
        assert [f["plugin"] for f in r.json()["fallback_from"]] == [name]

        from odr.app import create_app
        from tests.console_helpers import signed_in

        console = await signed_in(create_app(demo, manage_lifecycle=False), "sh-admin")
        try:
            page = (await console.get(f"/ui/complaints/{complaint['id']}?lang=en")).text
        finally:
            await console.aclose()
        assert f'data-fallback-from="{name}"' in page and "odr_national_deadline computed these deadlines instead" in page
    finally:
        await forget(demo, name)


async def test_activation_tries_the_plugin_once_and_refuses_it_with_its_error(client, demo, registered):
    def boom(indicators: Indicators):
        raise KeyError("weights")

    def over(indicators: Indicators):  # reads satisfaction (1..5) as a share (0..1)
        return score(50 * indicators.settlement_rate + 30 * indicators.satisfaction + 20)

    for plugin, error in ((scorer("t_boom_score", boom), "KeyError"), (scorer("t_over_score", over), "outside 0..100")):
        name = registered(plugin)
        await put(client, "sh-admin", NODE, "odr_national_score", {"active": False})
        r = await put(client, "sh-admin", NODE, name, {"active": True})
        try:
            assert r.status_code == 422, r.text
            assert r.json()["field"] == "config" and name in r.json()["detail"] and error in r.json()["detail"]
            assert "odr_score_enterprise" in r.json()["detail"]
            r = await client.get(f"/api/tenants/shanghai/policy/{NODE}", headers=await login(client, "sh-admin"))
            assert not next(c for c in r.json()["choices"] if c["plugin"] == name)["active"]  # nothing saved
        finally:
            await forget(demo, name)
            await forget(demo, "odr_national_score", NODE)


async def test_a_string_for_a_number_is_refused_naming_the_field(client, demo):
    r = await put(client, "js-officer", "310116", "odr_jinshan_deadline", {"active": True, "config": {"contact_days": "2"}})
    assert r.status_code == 400 and r.json()["field"] == "config.contact_days", r.text


def test_deadline_request_samples_are_answered_within_contract():
    """The built-in policies keep the contract the host now enforces (on the kit's samples)."""
    from odr_jinshan_policy import deadline as jinshan
    from odr_national_deadline import odr_deadline_policy as national

    scope = Scope(tenant="t", node_path=("1",))
    for start in (dt.datetime(2026, 9, 30, 16, tzinfo=dt.timezone.utc), dt.datetime(2026, 2, 16, 9)):
        request = DeadlineRequest(start=start)
        check_answer("odr_deadline_policy", national(scope=scope, request=request))
        check_answer("odr_deadline_policy", jinshan.odr_deadline_policy(scope=scope, request=request))


class LabelledConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A vendor's configuration labelled in the Struct itself (odr_plugin_api.labels)."""

    settlement_weight: Annotated[float, msgspec.Meta(
        ge=0, le=1, title="和解率权重", description="和解率在总分中的占比",
        extra={"title_en": "Settlement weight", "description_en": "Share of the score given to the settlement rate"})] = 0.5
    cycle_days: Annotated[int, msgspec.Meta(ge=1, le=60, title="满分处理周期（天） / Full-score cycle (days)")] = 7


def labelled_scorer(name: str) -> types.SimpleNamespace:
    @hookimpl
    def odr_plugin_info():
        return PluginInfo(name=name, version="0.1", title="labelled", families=(Family.SCORING,), config=LabelledConfig)

    @hookimpl
    def odr_score_enterprise(scope, indicators):
        return score(50.0)

    return types.SimpleNamespace(odr_plugin_info=odr_plugin_info, odr_score_enterprise=odr_score_enterprise)


async def test_config_forms_take_labels_and_help_from_the_struct(demo, registered):
    from odr.app import create_app
    from tests.console_helpers import signed_in

    name = registered(labelled_scorer("t_labelled_score"))
    console = await signed_in(create_app(demo, manage_lifecycle=False), "sh-admin")
    try:
        zh = (await console.get("/ui/policy?node=310000&lang=zh")).text
        en = (await console.get("/ui/policy?node=310000&lang=en")).text
    finally:
        await console.aclose()
    assert "和解率权重" in zh and "和解率在总分中的占比" in zh and "满分处理周期（天）" in zh
    assert "Settlement weight" in en and "Share of the score given to the settlement rate" in en
    assert "Full-score cycle (days)" in en and name in en
