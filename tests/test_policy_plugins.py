"""Local policy plugins shipped with the platform, through the real plugin host (entry points):
Jinshan's A/B/C e-commerce classification, enterprise size after the national statistical standard
(2017), the national Art. 20 score and Jiangsu's score. Every expectation below is computed by hand."""

from __future__ import annotations

import msgspec
import pytest

from core.pluginhost.host import PluginHost, PluginUnavailable
from odr_plugin_api import EnterpriseFacts, Indicators, Scope
from tests.conftest import login

JS_CLASS = "odr_jinshan_classification"
SIZE = "odr_enterprise_size"
NATIONAL = "odr_national_score"
JIANGSU = "odr_jiangsu_score"

COMPREHENSIVE = "综合性电子商务平台，销售日用百货"
SPECIALISED = "母婴用品专业网络销售"


@pytest.fixture(scope="module")
def host() -> PluginHost:
    h = PluginHost()
    h.load_entry_points()
    for name in (JS_CLASS, SIZE, NATIONAL, JIANGSU):
        assert h.discovered[name].loaded, h.discovered[name]
    return h


def scope_for(host: PluginHost, plugin: str, config: dict | None) -> Scope:
    configs = {} if config is None else {plugin: host.decode_config(plugin, config)}
    return Scope(tenant="shanghai", node_path=("310000", "310116"), configs=configs)


def classify(host: PluginHost, plugin: str, config: dict | None = None, **facts):
    facts.setdefault("unit_type", "enterprise")
    result, by = host.call_first("odr_classify_enterprise", active={plugin}, scope=scope_for(host, plugin, config),
                                 facts=EnterpriseFacts(**facts))
    assert by == plugin and result.scheme == plugin
    return result


def score(host: PluginHost, plugin: str, indicators: Indicators, config: dict | None = None):
    result, by = host.call_first("odr_score_enterprise", active={plugin}, scope=scope_for(host, plugin, config),
                                 indicators=indicators)
    assert by == plugin and result.formula == plugin
    return result


def invalid(host: PluginHost, plugin: str, raw: dict) -> str:
    with pytest.raises(msgspec.ValidationError) as info:
        host.decode_config(plugin, raw)
    return str(info.value)


def test_the_plugins_are_registered_in_their_families(host):
    families = {n: [f.value for f in host.infos[n].families] for n in (JS_CLASS, SIZE, NATIONAL, JIANGSU)}
    assert families == {JS_CLASS: ["classification"], SIZE: ["classification"], NATIONAL: ["scoring"], JIANGSU: ["scoring"]}
    assert not any(host.infos[n].default for n in families)
    assert host.discovered[SIZE].distribution == "odr-classification-schemes"
    assert host.discovered[NATIONAL].distribution == host.discovered[JIANGSU].distribution == "odr-scoring-formulas"
    assert host.discovered[JS_CLASS].distribution == "odr-jinshan-policy"
    assert host.infos[JS_CLASS].classes == ("A", "B", "C")
    assert host.infos[SIZE].classes == ("large", "medium", "small", "micro")


# -- Jinshan A/B/C -------------------------------------------------------------------------------
# Defaults: large from 300 employees or CNY 200 million or 100 complaints (A if comprehensive, else B);
# medium (B) from 50 employees or CNY 5 million or 10 complaints; else C.
@pytest.mark.parametrize(
    "facts, code",
    [
        ({"employees": 300, "business_scope": COMPREHENSIVE}, "A"),
        ({"employees": 299, "business_scope": COMPREHENSIVE}, "B"),
        ({"employees": 300, "business_scope": SPECIALISED}, "B"),  # large but specialised
        ({"employees": 5000}, "B"),  # no business scope declared: not comprehensive
        ({"employees": 50, "business_scope": SPECIALISED}, "B"),
        ({"employees": 49, "business_scope": SPECIALISED}, "C"),
        ({"annual_revenue_cny": 200_000_000, "business_scope": COMPREHENSIVE}, "A"),
        ({"annual_revenue_cny": 199_999_999, "business_scope": COMPREHENSIVE}, "B"),
        ({"annual_revenue_cny": 5_000_000}, "B"),
        ({"annual_revenue_cny": 4_999_999.99}, "C"),
        ({"complaints_last_year": 100, "business_scope": "Comprehensive MARKETPLACE"}, "A"),  # case-insensitive
        ({"complaints_last_year": 99, "business_scope": COMPREHENSIVE}, "B"),
        ({"complaints_last_year": 10}, "B"),
        ({"complaints_last_year": 9}, "C"),
        # Jinshan's own figures (seeds/001): A/B/C handled 508 / 29 / 2 complaints
        ({"complaints_last_year": 508, "business_scope": COMPREHENSIVE}, "A"),
        ({"complaints_last_year": 29, "business_scope": SPECIALISED}, "B"),
        ({"complaints_last_year": 2, "business_scope": SPECIALISED}, "C"),
        # "any": one declared fact reaching the bound is enough
        ({"employees": 10, "annual_revenue_cny": 1_000.0, "complaints_last_year": 100, "business_scope": COMPREHENSIVE}, "A"),
        ({}, "C"),  # nothing declared
    ],
)
def test_jinshan_classes_at_and_around_the_bounds(host, facts, code):
    from odr_jinshan_policy.classification import DUTIES, LABELS

    result = classify(host, JS_CLASS, **facts)
    assert (result.code, result.label, result.duties) == (code, LABELS[code], DUTIES[code])


@pytest.mark.parametrize(
    "config, facts, code",
    [
        # the complaint bound of A raised to 500: Jinshan's 508 stays A, 499 drops to B
        ({"a_min_complaints_last_year": 500}, {"complaints_last_year": 508, "business_scope": COMPREHENSIVE}, "A"),
        ({"a_min_complaints_last_year": 500}, {"complaints_last_year": 499, "business_scope": COMPREHENSIVE}, "B"),
        # B from 100 employees: 99 is C now, 50 was B by default
        ({"b_min_employees": 100}, {"employees": 99}, "C"),
        ({}, {"employees": 99}, "B"),
        # A without the comprehensive-scope condition
        ({"a_requires_comprehensive_scope": False}, {"employees": 300, "business_scope": SPECIALISED}, "A"),
        # own keywords: "百货" no longer makes a scope comprehensive, "跨境" does
        ({"comprehensive_keywords": ["跨境"]}, {"employees": 300, "business_scope": "日用百货"}, "B"),
        ({"comprehensive_keywords": ["跨境"]}, {"employees": 300, "business_scope": "跨境电商"}, "A"),
        # "all": every declared fact must reach the bound (undeclared ones are not guessed)
        ({"match": "all"}, {"employees": 400, "annual_revenue_cny": 1_000_000, "business_scope": COMPREHENSIVE}, "C"),
        ({"match": "all"}, {"employees": 400, "annual_revenue_cny": 10_000_000, "business_scope": COMPREHENSIVE}, "B"),
        ({"match": "all"}, {"employees": 400, "annual_revenue_cny": 200_000_000, "business_scope": COMPREHENSIVE}, "A"),
        ({"match": "all"}, {"employees": 400, "business_scope": COMPREHENSIVE}, "A"),
        ({"match": "all"}, {}, "C"),
    ],
)
def test_jinshan_configuration_moves_the_bounds(host, config, facts, code):
    assert classify(host, JS_CLASS, config, **facts).code == code


def test_jinshan_duties_are_public_and_bilingual(host):
    from odr_jinshan_policy.classification import DUTIES, duties_for

    assert duties_for("A") == duties_for("a") == duties_for(" A ") == DUTIES["A"]
    assert duties_for("large") == duties_for(None) == duties_for("") == ()
    assert [len(duties_for(c)) > 0 for c in "ABC"] == [True, True, True]
    assert any("2天" in d and "2 days" in d for d in duties_for("A"))
    assert any("每月" in d and "monthly" in d for d in duties_for("A"))
    assert any("专门ODR团队" in d and "dedicated ODR team" in d for d in duties_for("A"))
    assert all(" / " in d for c in "ABC" for d in duties_for(c))  # Chinese / English
    assert classify(host, JS_CLASS, complaints_last_year=29).duties == duties_for("B")


@pytest.mark.parametrize(
    "raw, named",
    [
        ({"b_min_employees": 0}, "b_min_employees"),
        ({"a_min_revenue_cny": -1}, "a_min_revenue_cny"),
        ({"a_min_employees": 40}, "a_min_employees"),  # not above b_min_employees (50)
        ({"b_min_complaints_last_year": 100}, "a_min_complaints_last_year"),  # equal bounds
        ({"match": "some"}, "match"),
        ({"comprehensive_keywords": [""]}, "comprehensive_keywords"),
        ({"a_min_employes": 300}, "a_min_employes"),  # unknown (misspelt) field
        ({"a_requires_comprehensive_scope": "maybe"}, "a_requires_comprehensive_scope"),
    ],
)
def test_jinshan_invalid_config_is_rejected_naming_the_field(host, raw, named):
    assert named in invalid(host, JS_CLASS, raw)


# -- enterprise size, 统计上大中小微型企业划分办法（2017） ---------------------------------------------
# (industry text, employees, revenue CNY) -> size; bounds in 万元 x 10,000.
@pytest.mark.parametrize(
    "industry, employees, revenue, size",
    [
        # retail: large X>=300 & Y>=20000; medium X>=50 & Y>=500; small X>=10 & Y>=100 (万元)
        ("retail", 300, 200_000_000, "large"),
        ("retail", 299, 200_000_000, "medium"),
        ("retail", 300, 199_999_999, "medium"),
        ("零售", 50, 5_000_000, "medium"),
        ("retail", 49, 5_000_000, "small"),
        ("retail", 50, 4_999_999, "small"),
        ("retail", 10, 1_000_000, "small"),
        ("retail", 9, 1_000_000, "micro"),
        ("retail", 10, 999_999, "micro"),
        ("retail", 5000, 100_000, "micro"),  # micro needs only one index below the small bounds
        ("e-commerce", 300, 200_000_000, "large"),  # internet retail is retail
        ("电子商务", 60, 8_000_000, "medium"),
        # wholesale: X>=200 & Y>=40000; X>=20 & Y>=5000; X>=5 & Y>=1000
        ("wholesale", 200, 400_000_000, "large"),
        ("wholesale", 199, 400_000_000, "medium"),
        ("批发", 20, 50_000_000, "medium"),
        ("wholesale", 20, 49_999_999, "small"),
        ("wholesale", 19, 50_000_000, "small"),
        ("wholesale", 5, 10_000_000, "small"),
        ("wholesale", 4, 1_000_000_000, "micro"),
        ("wholesale", 5, 9_999_999, "micro"),
        # catering: X>=300 & Y>=10000; X>=100 & Y>=2000; X>=10 & Y>=100
        ("catering", 300, 100_000_000, "large"),
        ("餐饮服务", 299, 100_000_000, "medium"),
        ("catering", 100, 20_000_000, "medium"),
        ("catering", 99, 20_000_000, "small"),
        ("catering", 100, 19_999_999, "small"),
        ("restaurant", 10, 1_000_000, "small"),
        ("catering", 10, 999_999, "micro"),
        # accommodation: the same bounds as catering
        ("酒店住宿", 300, 100_000_000, "large"),
        ("accommodation", 300, 99_999_999, "medium"),
        ("hotel", 99, 2_000_000, "small"),
        ("accommodation", 9, 2_000_000, "micro"),
        # information transmission: X>=2000 & Y>=100000; X>=100 & Y>=1000; X>=10 & Y>=100
        ("information_transmission", 2000, 1_000_000_000, "large"),
        ("电信", 1999, 1_000_000_000, "medium"),
        ("telecom", 100, 10_000_000, "medium"),
        ("information_transmission", 100, 9_999_999, "small"),
        ("information_transmission", 10, 1_000_000, "small"),
        ("information_transmission", 9, 1_000_000, "micro"),
        # software and IT services: X>=300 & Y>=10000; X>=100 & Y>=1000; X>=10 & Y>=50
        ("software_it", 300, 100_000_000, "large"),
        ("软件开发", 300, 99_999_999, "medium"),
        ("software", 100, 10_000_000, "medium"),
        ("software_it", 99, 10_000_000, "small"),
        ("software_it", 10, 500_000, "small"),
        ("software_it", 10, 499_999, "micro"),
        # other industries: employees only, X>=300; X>=100; X>=10
        ("other", 300, None, "large"),
        ("培训服务", 300, 1.0, "large"),  # revenue is not an index here
        (None, 299, None, "medium"),
        ("other", 100, None, "medium"),
        ("other", 99, None, "small"),
        ("other", 10, None, "small"),
        ("other", 9, None, "micro"),
        # industrial: X>=1000 & Y>=40000
        ("制造业", 1000, 400_000_000, "large"),
        ("industrial", 999, 400_000_000, "medium"),
        # postal (express delivery): X>=20 & Y>=100 for small
        ("快递", 20, 1_000_000, "small"),
        ("快递", 20, 999_999, "micro"),
        # an undeclared index: a declared one below the small bound still decides
        ("retail", 9, None, "micro"),
        ("retail", None, 999_999, "micro"),
    ],
)
def test_enterprise_size_by_industry_at_and_around_the_bounds(host, industry, employees, revenue, size):
    result = classify(host, SIZE, industry=industry, employees=employees, annual_revenue_cny=revenue)
    assert result.code == size
    assert result.label.startswith({"large": "大型", "medium": "中型", "small": "小型", "micro": "微型"}[size])


@pytest.mark.parametrize(
    "facts",
    [
        {"industry": "retail", "employees": 5000},  # large or not depends on the undeclared revenue
        {"industry": "retail", "annual_revenue_cny": 300_000_000},
        {"industry": "retail"},
        {"industry": "other"},
        {"unit_type": "government_department", "industry": "other", "employees": 500},  # not an enterprise
        {"unit_type": "industry_association", "industry": "retail", "employees": 500, "annual_revenue_cny": 3e8},
    ],
)
def test_enterprise_size_undetermined_gives_no_class(host, facts):
    facts.setdefault("unit_type", "enterprise")
    with pytest.raises(PluginUnavailable):
        host.call_first("odr_classify_enterprise", active={SIZE}, scope=scope_for(host, SIZE, None),
                        facts=EnterpriseFacts(**facts))
    assert host.failures[(SIZE, "odr_classify_enterprise")] == 0  # declined (None), not raised
    # a host unit (a shopping mall, Art. 25) is an enterprise and is sized
    assert classify(host, SIZE, unit_type="host_unit", industry="商场", employees=300, annual_revenue_cny=2e8).code == "large"


def test_enterprise_size_industry_matching(host):
    from odr_classification_schemes.enterprise_size import EnterpriseSizeConfig, industry_of

    cfg = EnterpriseSizeConfig()
    assert industry_of("Software_IT", cfg) == "software_it"  # exact key, case-insensitive
    assert industry_of("网络零售（电子商务）", cfg) == "retail"
    assert industry_of("快递服务", cfg) == "postal"
    assert industry_of("宾馆", cfg) == "accommodation"
    assert industry_of("互联网平台", cfg) == "information_transmission"
    assert industry_of("电信软件", cfg) == "information_transmission"  # equal length: the first key by name
    assert industry_of("信息技术电信", cfg) == "software_it"  # the longest keyword wins
    assert industry_of("美容美发", cfg) == industry_of("", cfg) == industry_of(None, cfg) == "other"


@pytest.mark.parametrize(
    "config, facts, size",
    [
        # "奶茶店" matches nothing by default: other industries, 150 employees -> medium
        ({}, {"industry": "奶茶店", "employees": 150, "annual_revenue_cny": 3_000_000}, "medium"),
        # mapped to catering it needs Y>=2000万 for medium: small
        ({"industry_keywords": {"catering": ["奶茶"]}}, {"industry": "奶茶店", "employees": 150, "annual_revenue_cny": 3_000_000}, "small"),
        # unmatched industries: "other" (employees only, 60 -> small) or, configured, retail (X>=50 & Y>=500万 -> medium)
        ({}, {"industry": "美容美发", "employees": 60, "annual_revenue_cny": 6_000_000}, "small"),
        ({"fallback_industry": "retail"}, {"industry": "美容美发", "employees": 60, "annual_revenue_cny": 6_000_000}, "medium"),
        ({"fallback_industry": "retail"}, {"industry": "美容美发", "employees": 150}, None),
        # a bureau sizes only enterprises, not host units
        ({"unit_types": ["enterprise"]}, {"unit_type": "host_unit", "industry": "商场", "employees": 300, "annual_revenue_cny": 2e8}, None),
    ],
)
def test_enterprise_size_configuration_moves_the_bounds(host, config, facts, size):
    facts.setdefault("unit_type", "enterprise")
    if size is None:
        with pytest.raises(PluginUnavailable):
            classify(host, SIZE, config, **facts)
        assert host.failures[(SIZE, "odr_classify_enterprise")] == 0
    else:
        assert classify(host, SIZE, config, **facts).code == size


def test_enterprise_size_changed_thresholds(host):
    from odr_classification_schemes.enterprise_size import STANDARD_2017

    raw = msgspec.to_builtins(host.decode_config(SIZE, None))
    assert raw["thresholds"]["retail"] == {"large": {"employees": 300, "revenue_wan_cny": 20000.0},
                                           "medium": {"employees": 50, "revenue_wan_cny": 500.0},
                                           "small": {"employees": 10, "revenue_wan_cny": 100.0}}
    assert set(raw["thresholds"]) == set(STANDARD_2017) >= {"retail", "wholesale", "catering", "accommodation",
                                                              "information_transmission", "software_it", "other"}
    facts = {"industry": "retail", "employees": 250, "annual_revenue_cny": 200_000_000}
    assert classify(host, SIZE, raw, **facts).code == "medium"
    raw["thresholds"]["retail"]["large"]["employees"] = 200
    assert classify(host, SIZE, raw, **facts).code == "large"
    assert classify(host, SIZE, raw, **{**facts, "employees": 199}).code == "medium"


@pytest.mark.parametrize(
    "raw, named",
    [
        ({"fallback_industry": "mining"}, "fallback_industry"),
        ({"industry_keywords": {"minning": ["采矿"]}}, "industry_keywords.minning"),
        ({"thresholds": {"other": {"large": {"employees": 0}, "medium": {"employees": 100}, "small": {"employees": 10}}},
          "industry_keywords": {}}, "employees"),
        ({"thresholds": {"other": {"large": {"employees": 100}, "medium": {"employees": 100}, "small": {"employees": 10}}},
          "industry_keywords": {}}, "thresholds.other.employees"),
        ({"thresholds": {"other": {"large": {"employees": 300}, "medium": {"employees": 100, "revenue_wan_cny": 5},
                                   "small": {"employees": 10}}}, "industry_keywords": {}}, "thresholds.other: revenue_wan_cny"),
        ({"thresholds": {"other": {"large": {}, "medium": {}, "small": {}}}, "industry_keywords": {}}, "thresholds.other"),
        ({"thresholds": {"other": {"large": {"employees": 300}, "medium": {"employees": 100}}}, "industry_keywords": {}}, "small"),
        ({"unit_type": ["enterprise"]}, "unit_type"),
    ],
)
def test_enterprise_size_invalid_config_is_rejected_naming_the_field(host, raw, named):
    assert named in invalid(host, SIZE, raw)


# -- scores ----------------------------------------------------------------------------------------
def indicators(**kw) -> Indicators:
    base = dict(handled=100, settlement_rate=0.8, satisfaction=4.0, avg_cycle_days=3.0, on_time_contact_rate=1.0,
                on_time_close_rate=1.0)
    return Indicators(**{**base, **kw})


# X: fast and punctual, but complaints rising and 2 untrue feedbacks found in spot checks.
X = indicators(handled=200, complaints_previous_period=150, untrue_feedback_findings=2)
# Y: slower and less punctual, but complaints halved, one breach, no untrue feedback.
Y = indicators(handled=60, settlement_rate=0.9, satisfaction=4.2, avg_cycle_days=8.0, on_time_contact_rate=0.8,
               on_time_close_rate=0.7, breaches=1, complaints_previous_period=120)


@pytest.mark.parametrize(
    "ind, score_, parts",
    [
        # default weights 35/25/15/10/15: 0.35*0.8 + 0.25*0.75 + 0.15*1 + 0.10*1 + 0.15*1 = 0.8675
        (X, 86.75, {"settlement_rate": 28.0, "satisfaction": 18.75, "handling_cycle": 15.0,
                    "on_time_contact_rate": 10.0, "on_time_close_rate": 15.0}),
        # 0.35*0.9 + 0.25*0.8 + 0.15*(10-8)/7 + 0.10*0.8 + 0.15*0.7 = 0.742857...
        (Y, 74.29, {"settlement_rate": 31.5, "satisfaction": 20.0, "handling_cycle": 4.29,
                    "on_time_contact_rate": 8.0, "on_time_close_rate": 10.5}),
        # class "A" (30/20/20/15/15): 0.24 + 0.15 + 0.20 + 0.15 + 0.15 = 0.89
        (msgspec.structs.replace(X, enterprise_class="A"), 89.0, {"settlement_rate": 24.0, "satisfaction": 15.0,
         "handling_cycle": 20.0, "on_time_contact_rate": 15.0, "on_time_close_rate": 15.0}),
        (msgspec.structs.replace(X, enterprise_class="large"), 89.0, None),
        # class "C" (40/30/10/10/10): 0.32 + 0.225 + 0.10 + 0.10 + 0.10 = 0.845
        (msgspec.structs.replace(X, enterprise_class="C"), 84.5, {"settlement_rate": 32.0, "satisfaction": 22.5,
         "handling_cycle": 10.0, "on_time_contact_rate": 10.0, "on_time_close_rate": 10.0}),
        (msgspec.structs.replace(X, enterprise_class="micro"), 84.5, None),
        (msgspec.structs.replace(X, enterprise_class="B"), 86.75, None),  # no own weights: default
        # no satisfaction and no cycle: 35/10/15 re-normalised over 0.60:
        # (0.35*0.8 + 0.10*1 + 0.15*0.9) / 0.60 = 0.515 / 0.60 = 0.858333...
        (indicators(satisfaction=None, avg_cycle_days=None, on_time_close_rate=0.9), 85.83,
         {"settlement_rate": 46.67, "on_time_contact_rate": 16.67, "on_time_close_rate": 22.5}),
        # best and worst
        (indicators(settlement_rate=1.0, satisfaction=5.0, avg_cycle_days=0.5), 100.0, None),
        (indicators(settlement_rate=0.0, satisfaction=1.0, avg_cycle_days=30.0, on_time_contact_rate=0.0,
                    on_time_close_rate=0.0), 0.0, None),
        # out-of-range inputs are clamped, not scored beyond 0..100
        (indicators(settlement_rate=1.5, satisfaction=7.0, avg_cycle_days=-1.0, on_time_contact_rate=2.0), 100.0, None),
    ],
)
def test_national_score_by_hand(host, ind, score_, parts):
    result = score(host, NATIONAL, ind)
    assert result.score == score_
    if parts is not None:
        assert result.parts == parts
    assert sum(result.parts.values()) == pytest.approx(result.score, abs=0.02)


@pytest.mark.parametrize(
    "config, days, expected",
    [
        # cycle weight only: score = 100 * cycle indicator; full marks <= 3 days, zero >= 10 days
        ({}, 1.0, 100.0),
        ({}, 3.0, 100.0),
        ({}, 3.5, 92.86),  # (10 - 3.5) / 7
        ({}, 6.5, 50.0),
        ({}, 9.99, 0.14),
        ({}, 10.0, 0.0),
        ({}, 12.0, 0.0),
        ({"cycle_full_marks_days": 5, "cycle_zero_days": 12}, 5.0, 100.0),
        ({"cycle_full_marks_days": 5, "cycle_zero_days": 12}, 8.5, 50.0),
        ({"cycle_full_marks_days": 5, "cycle_zero_days": 12}, 10.0, 28.57),  # 2/7
    ],
)
def test_national_handling_cycle_scale(host, config, days, expected):
    only_cycle = {"default": {"settlement_rate": 0, "satisfaction": 0, "handling_cycle": 1,
                              "on_time_contact_rate": 0, "on_time_close_rate": 0}}
    assert score(host, NATIONAL, indicators(avg_cycle_days=days), {**config, "weights": only_cycle}).score == expected


def test_national_weights_per_class_are_configuration(host):
    config = {"weights": {"default": {}, "A": {"settlement_rate": 1, "satisfaction": 0, "handling_cycle": 0,
                                                "on_time_contact_rate": 0, "on_time_close_rate": 0}}}
    assert score(host, NATIONAL, msgspec.structs.replace(X, enterprise_class="A"), config).score == 80.0
    assert score(host, NATIONAL, msgspec.structs.replace(X, enterprise_class="C"), config).score == 86.75  # default now
    # weights are relative: doubling them all changes nothing
    doubled = {"weights": {"default": {"settlement_rate": 0.7, "satisfaction": 0.5, "handling_cycle": 0.3,
                                       "on_time_contact_rate": 0.2, "on_time_close_rate": 0.3}}}
    assert score(host, NATIONAL, X, doubled).score == 86.75
    # nothing available to score (only satisfaction weighted, no rating): the formula does not answer
    only_sat = {"weights": {"default": {"settlement_rate": 0, "satisfaction": 1, "handling_cycle": 0,
                                        "on_time_contact_rate": 0, "on_time_close_rate": 0}}}
    with pytest.raises(PluginUnavailable):
        score(host, NATIONAL, indicators(satisfaction=None), only_sat)
    assert host.failures[(NATIONAL, "odr_score_enterprise")] == 0


@pytest.mark.parametrize(
    "raw, named",
    [
        ({"weights": {"A": {}}}, '"default"'),
        ({"weights": {"default": {"settlement_rate": -0.1}}}, "settlement_rate"),
        ({"weights": {"default": {"settlment_rate": 0.3}}}, "settlment_rate"),
        ({"weights": {"default": {"settlement_rate": 0, "satisfaction": 0, "handling_cycle": 0,
                                  "on_time_contact_rate": 0, "on_time_close_rate": 0}}}, "weights"),
        ({"cycle_full_marks_days": 10, "cycle_zero_days": 10}, "cycle_full_marks_days"),
        ({"cycle_zero_days": 0}, "cycle_zero_days"),
    ],
)
def test_national_invalid_config_is_rejected_naming_the_field(host, raw, named):
    assert named in invalid(host, NATIONAL, raw)


@pytest.mark.parametrize(
    "ind, config, score_, parts",
    [
        # 50*0.8 + 30*0.75 + 0 (complaints up 150 -> 200) - 10*2 - 0 = 42.5
        (X, {}, 42.5, {"settlement_rate": 40.0, "satisfaction": 22.5, "complaint_reduction": 0.0,
                       "untrue_feedback": -20.0, "breaches": 0.0}),
        # 50*0.9 + 30*0.8 + 20 (120 -> 60: a 50 % cut) - 0 - 2*1 = 87
        (Y, {}, 87.0, {"settlement_rate": 45.0, "satisfaction": 24.0, "complaint_reduction": 20.0,
                       "untrue_feedback": 0.0, "breaches": -2.0}),
        # a 20 % cut earns 20 * 0.2/0.5 = 8 points: 40 + 22.5 + 8 = 70.5
        (indicators(handled=80, complaints_previous_period=100), {}, 70.5, None),
        (indicators(handled=40, complaints_previous_period=100), {}, 82.5, None),  # a 60 % cut: capped at 20
        (indicators(handled=120, complaints_previous_period=100), {}, 62.5, None),  # more complaints: 0, no deduction
        (indicators(complaints_previous_period=None), {}, 72.5, None),  # no previous period: 10
        (indicators(complaints_previous_period=0), {}, 72.5, None),
        # no rating: settlement carries the satisfaction points, (50 + 30) * 0.9 + 10 = 82
        (indicators(settlement_rate=0.9, satisfaction=None), {}, 82.0, {"settlement_rate": 72.0,
         "complaint_reduction": 10.0, "untrue_feedback": 0.0, "breaches": 0.0}),
        # clamped: 40 + 22.5 + 10 - 10*8 = -7.5 -> 0
        (indicators(untrue_feedback_findings=8), {}, 0.0, None),
        # clamped: 100*1 + 30*1 + 20 = 150 -> 100
        (indicators(settlement_rate=1.0, satisfaction=5.0, handled=0, complaints_previous_period=10),
         {"settlement_points": 100}, 100.0, None),
        # configuration: a 20 % cut already earns everything; untrue feedback costs 25; breaches 5
        (indicators(handled=80, complaints_previous_period=100, untrue_feedback_findings=1, breaches=2),
         {"full_reduction_at": 0.2, "untrue_feedback_penalty": 25, "breach_penalty": 5}, 47.5, None),
    ],
)
def test_jiangsu_score_by_hand(host, ind, config, score_, parts):
    result = score(host, JIANGSU, ind, config)
    assert result.score == score_
    if parts is not None:
        assert result.parts == parts


@pytest.mark.parametrize(
    "raw, named",
    [
        ({"no_history_points": 30}, "no_history_points"),  # above reduction_points (20)
        ({"full_reduction_at": 0}, "full_reduction_at"),
        ({"full_reduction_at": 1.5}, "full_reduction_at"),
        ({"breach_penalty": -1}, "breach_penalty"),
        ({"untrue_feedback_penalty": 101}, "untrue_feedback_penalty"),
        ({"settlement_points": 0, "satisfaction_points": 0}, "settlement_points"),
        ({"reduction_bonus": 5}, "reduction_bonus"),
    ],
)
def test_jiangsu_invalid_config_is_rejected_naming_the_field(host, raw, named):
    assert named in invalid(host, JIANGSU, raw)


def test_the_two_formulas_rank_the_same_enterprises_differently(host):
    national = {name: score(host, NATIONAL, ind).score for name, ind in (("X", X), ("Y", Y))}
    jiangsu = {name: score(host, JIANGSU, ind).score for name, ind in (("X", X), ("Y", Y))}
    assert national == {"X": 86.75, "Y": 74.29} and national["X"] > national["Y"]
    assert jiangsu == {"X": 42.5, "Y": 87.0} and jiangsu["Y"] > jiangsu["X"]


@pytest.mark.parametrize("plugin", [NATIONAL, JIANGSU])
def test_scores_are_deterministic_and_within_0_100(host, plugin):
    import itertools

    grid = [
        indicators(handled=h, settlement_rate=s, satisfaction=sat, avg_cycle_days=c, on_time_contact_rate=oc,
                   on_time_close_rate=oc, breaches=b, untrue_feedback_findings=u, complaints_previous_period=p,
                   enterprise_class=k)
        for h, s, sat, c, oc, b, u, p, k in itertools.product(
            (0, 37), (0.0, 0.55, 1.0), (None, 1.0, 3.3, 5.0), (None, 0.0, 7.0, 40.0), (0.0, 0.9), (0, 3), (0, 1, 12),
            (None, 0, 20, 100), (None, "A", "C", "large", "zzz"))
    ]
    first = [score(host, plugin, ind) for ind in grid]
    again = [score(host, plugin, ind) for ind in grid]
    assert first == again
    assert all(0.0 <= r.score <= 100.0 for r in first)
    assert host.failures[(plugin, "odr_score_enterprise")] == 0


def test_classification_is_deterministic(host):
    facts = [EnterpriseFacts(unit_type="enterprise", industry=i, employees=e, annual_revenue_cny=r, complaints_last_year=c,
                             business_scope=b)
             for i in ("retail", "catering", "other") for e in (None, 9, 300) for r in (None, 5e6, 2e8)
             for c in (None, 9, 508) for b in (None, COMPREHENSIVE)]
    for plugin in (JS_CLASS, SIZE):
        scope = scope_for(host, plugin, None)

        def run():
            out = []
            for f in facts:
                try:
                    out.append(host.call_first("odr_classify_enterprise", active={plugin}, scope=scope, facts=f)[0])
                except PluginUnavailable:
                    out.append(None)
            return out

        assert run() == run()
        assert host.failures[(plugin, "odr_classify_enterprise")] == 0


# -- through the API -------------------------------------------------------------------------------
async def test_jinshan_classification_activated_at_jinshan_through_the_api(client, demo):
    from core.db.engine import platform_transaction

    admin = await login(client, "sh-admin")
    try:
        r = await client.put(f"/api/tenants/shanghai/policy/310116/plugins/{JS_CLASS}",
                             json={"active": True, "config": {"a_min_complaints_last_year": 500}}, headers=admin)
        assert r.status_code == 200, r.text
        r = await client.get("/api/tenants/shanghai/policy/310116-01", headers=admin)
        assert r.status_code == 200, r.text
        choice = next(c for c in r.json()["choices"] if c["plugin"] == JS_CLASS)
        assert choice["active"] and choice["source"] == "310116" and choice["families"] == ["classification"]
        assert choice["config"]["a_min_complaints_last_year"] == 500 and choice["config"]["b_min_employees"] == 50
        # elsewhere in Shanghai it stays off
        r = await client.get("/api/tenants/shanghai/policy/310115", headers=admin)
        assert not next(c for c in r.json()["choices"] if c["plugin"] == JS_CLASS)["active"]

        # the saved configuration reaches the hook at an office under Jinshan
        scope, active = await demo.scope("shanghai", "310116-01")
        assert JS_CLASS in active
        for complaints, code in ((508, "A"), (499, "B")):
            result, by = demo.host.call_first(
                "odr_classify_enterprise", active=active, scope=scope,
                facts=EnterpriseFacts(unit_type="enterprise", complaints_last_year=complaints, business_scope=COMPREHENSIVE))
            assert (by, result.code) == (JS_CLASS, code)

        # bad configuration is refused naming the field; one classification scheme per node
        r = await client.put(f"/api/tenants/shanghai/policy/310116/plugins/{JS_CLASS}",
                             json={"active": True, "config": {"b_min_employees": 0}}, headers=admin)
        assert r.status_code == 400 and r.json()["field"] == "config.b_min_employees"
        r = await client.put(f"/api/tenants/shanghai/policy/310116-01/plugins/{SIZE}", json={"active": True}, headers=admin)
        assert r.status_code == 409 and JS_CLASS in r.text
    finally:
        async with platform_transaction() as conn:
            await conn.execute("DELETE FROM odr.plugin_activations WHERE plugin=$1", SIZE)
        # back to the demo manifest's choice: Jinshan's scheme with its default configuration
        r = await client.put(f"/api/tenants/shanghai/policy/310116/plugins/{JS_CLASS}", json={"active": True}, headers=admin)
        assert r.status_code == 200, r.text
    r = await client.get("/api/tenants/shanghai/policy/310116-01", headers=admin)
    choice = next(c for c in r.json()["choices"] if c["plugin"] == JS_CLASS)
    assert choice["active"] and choice["config"]["a_min_complaints_last_year"] != 500
