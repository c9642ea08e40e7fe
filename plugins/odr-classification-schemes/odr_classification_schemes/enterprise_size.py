"""Enterprise size after the national statistical standard: large / medium / small / micro.

Source: 国家统计局《统计上大中小微型企业划分办法（2017）》(国统字〔2017〕213号), which applies the 2011
size bounds (工信部联企业〔2011〕300号) to the industries of GB/T 4754-2017. Bounds are per industry, on
employees (从业人员, X, persons) and operating revenue (营业收入, Y, 万元 = CNY 10,000). The defaults
(:data:`STANDARD_2017`) are the standard's table:

=========================== ======== ================ ================== =============== ===========
industry (key)              index    large            medium             small           micro
=========================== ======== ================ ================== =============== ===========
industrial 工业             X / Y    ≥1000 / ≥40000   ≥300 / ≥2000       ≥20 / ≥300      X<20 or Y<300
wholesale 批发业            X / Y    ≥200 / ≥40000    ≥20 / ≥5000        ≥5 / ≥1000      X<5 or Y<1000
retail 零售业               X / Y    ≥300 / ≥20000    ≥50 / ≥500         ≥10 / ≥100      X<10 or Y<100
transport 交通运输业        X / Y    ≥1000 / ≥30000   ≥300 / ≥3000       ≥20 / ≥200      X<20 or Y<200
warehousing 仓储业          X / Y    ≥200 / ≥30000    ≥100 / ≥1000       ≥20 / ≥100      X<20 or Y<100
postal 邮政业 (incl. 快递)  X / Y    ≥1000 / ≥30000   ≥300 / ≥2000       ≥20 / ≥100      X<20 or Y<100
accommodation 住宿业        X / Y    ≥300 / ≥10000    ≥100 / ≥2000       ≥10 / ≥100      X<10 or Y<100
catering 餐饮业             X / Y    ≥300 / ≥10000    ≥100 / ≥2000       ≥10 / ≥100      X<10 or Y<100
information_transmission    X / Y    ≥2000 / ≥100000  ≥100 / ≥1000       ≥10 / ≥100      X<10 or Y<100
  信息传输业 (GB/T 4754 divisions 63, 64: telecom, broadcasting transmission, internet services)
software_it 软件和信息技术  X / Y    ≥300 / ≥10000    ≥100 / ≥1000       ≥10 / ≥50       X<10 or Y<50
  服务业 (division 65)
property_management 物业管理 X / Y   ≥1000 / ≥5000    ≥300 / ≥1000       ≥100 / ≥500     X<100 or Y<500
other 其他未列明行业        X        ≥300             ≥100               ≥10             X<10
=========================== ======== ================ ================== =============== ===========

Rule of the standard: large, medium and small must meet *every* lower bound of their row, otherwise the
unit drops a tier; micro needs only one index below the small bounds. Here: a tier is given when every
index of the industry is declared and reaches its bound; a declared index below the small bound gives
micro; otherwise (an index undeclared, the declared ones not below small) the size cannot be determined
and the hook answers None. Only enterprises (and host units such as malls) are sized; associations,
social organisations and government departments (Art. 25) get None.

The industry is found from the free-text ``facts.industry``: an exact key of ``thresholds`` first, else
the longest keyword of ``industry_keywords`` contained in it (case-insensitive; ties by key name), else
``fallback_industry``. Internet retail (互联网零售, GB/T 4754-2017 5292) is retail, so "e-commerce"
maps to retail by default. Deterministic.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from odr_plugin_api import ClassificationResult, EnterpriseFacts, Family, PluginInfo, Scope, hookimpl

NAME = "odr_enterprise_size"
VERSION = "1.0.0"
SOURCE = "统计上大中小微型企业划分办法（2017）（国统字〔2017〕213号）"
TIERS = ("large", "medium", "small")
LABELS = {"large": "大型企业 / large", "medium": "中型企业 / medium", "small": "小型企业 / small", "micro": "微型企业 / micro"}
INDUSTRY_LABELS = {
    "industrial": "工业 / industry",
    "wholesale": "批发业 / wholesale",
    "retail": "零售业 / retail",
    "transport": "交通运输业 / transport",
    "warehousing": "仓储业 / warehousing",
    "postal": "邮政业 / postal and express delivery",
    "accommodation": "住宿业 / accommodation",
    "catering": "餐饮业 / catering",
    "information_transmission": "信息传输业 / information transmission",
    "software_it": "软件和信息技术服务业 / software and IT services",
    "property_management": "物业管理 / property management",
    "other": "其他未列明行业 / other industries",
}

Count = Annotated[int, msgspec.Meta(ge=1, le=100_000_000)]
Wan = Annotated[float, msgspec.Meta(gt=0, le=1e10)]
Keyword = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
IndustryKey = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class Bounds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Lower bounds of one tier; an index left out (None) is not used for the industry."""

    employees: Count | None = None
    """从业人员 (persons)."""
    revenue_wan_cny: Wan | None = None
    """营业收入, in 万元 (CNY 10,000)."""


class IndustryThresholds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    large: Bounds
    medium: Bounds
    small: Bounds


def _t(large: tuple, medium: tuple, small: tuple) -> IndustryThresholds:
    def b(x: tuple) -> Bounds:
        return Bounds(employees=x[0], revenue_wan_cny=None if x[1] is None else float(x[1]))

    return IndustryThresholds(large=b(large), medium=b(medium), small=b(small))


STANDARD_2017: dict[str, IndustryThresholds] = {
    "industrial": _t((1000, 40000), (300, 2000), (20, 300)),
    "wholesale": _t((200, 40000), (20, 5000), (5, 1000)),
    "retail": _t((300, 20000), (50, 500), (10, 100)),
    "transport": _t((1000, 30000), (300, 3000), (20, 200)),
    "warehousing": _t((200, 30000), (100, 1000), (20, 100)),
    "postal": _t((1000, 30000), (300, 2000), (20, 100)),
    "accommodation": _t((300, 10000), (100, 2000), (10, 100)),
    "catering": _t((300, 10000), (100, 2000), (10, 100)),
    "information_transmission": _t((2000, 100000), (100, 1000), (10, 100)),
    "software_it": _t((300, 10000), (100, 1000), (10, 50)),
    "property_management": _t((1000, 5000), (300, 1000), (100, 500)),
    "other": _t((300, None), (100, None), (10, None)),
}

INDUSTRY_KEYWORDS: dict[str, tuple[str, ...]] = {
    "industrial": ("工业", "制造", "manufacturing", "manufacturer", "industrial"),
    "wholesale": ("批发", "wholesale"),
    "retail": ("零售", "电子商务", "电商", "商场", "超市", "百货", "retail", "e-commerce", "ecommerce", "supermarket",
               "shopping mall", "department store"),
    "transport": ("交通运输", "道路运输", "客运", "航空运输", "铁路运输", "transport", "airline"),
    "warehousing": ("仓储", "warehousing", "warehouse"),
    "postal": ("邮政", "快递", "postal", "express delivery", "courier"),
    "accommodation": ("住宿", "酒店", "宾馆", "民宿", "accommodation", "hotel"),
    "catering": ("餐饮", "餐厅", "catering", "restaurant"),
    "information_transmission": ("信息传输", "电信", "通信", "宽带", "互联网平台", "互联网和相关服务",
                                 "information transmission", "telecom", "broadband", "internet platform"),
    "software_it": ("软件", "信息技术", "software", "it services", "information technology"),
    "property_management": ("物业", "property management"),
}


class EnterpriseSizeConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    thresholds: Annotated[dict[IndustryKey, IndustryThresholds], msgspec.Meta(min_length=1, max_length=100)] = (
        msgspec.field(default_factory=lambda: dict(STANDARD_2017))
    )
    """Lower bounds per industry and tier (large, medium, small); below small is micro."""
    industry_keywords: Annotated[
        dict[IndustryKey, Annotated[tuple[Keyword, ...], msgspec.Meta(max_length=100)]], msgspec.Meta(max_length=100)
    ] = msgspec.field(default_factory=lambda: dict(INDUSTRY_KEYWORDS))
    """Words of the declared industry text that select an industry of ``thresholds``."""
    fallback_industry: IndustryKey = "other"
    """The industry used when nothing matches; must be a key of ``thresholds``."""
    unit_types: Annotated[tuple[Keyword, ...], msgspec.Meta(max_length=10)] = ("enterprise", "host_unit")
    """Unit types that are sized; others get no class."""

    def __post_init__(self) -> None:
        if self.fallback_industry not in self.thresholds:
            raise ValueError(f"fallback_industry: {self.fallback_industry!r} is not a key of thresholds")
        for key in self.industry_keywords:
            if key not in self.thresholds:
                raise ValueError(f"industry_keywords.{key}: not a key of thresholds")
        for key, t in self.thresholds.items():
            for index in ("employees", "revenue_wan_cny"):
                values = [getattr(getattr(t, tier), index) for tier in TIERS]
                if any(v is None for v in values) and any(v is not None for v in values):
                    raise ValueError(f"thresholds.{key}: {index} must be set for all of large, medium, small or none")
                if values[0] is not None and not values[0] > values[1] > values[2]:
                    raise ValueError(f"thresholds.{key}.{index}: bounds must fall strictly from large to medium to small")
            if t.large.employees is None and t.large.revenue_wan_cny is None:
                raise ValueError(f"thresholds.{key}: at least one of employees, revenue_wan_cny is needed")


def industry_of(text: str | None, cfg: EnterpriseSizeConfig) -> str:
    """The ``thresholds`` key for a declared industry text."""
    t = (text or "").strip().casefold()
    if not t:
        return cfg.fallback_industry
    for key in sorted(cfg.thresholds):
        if key.casefold() == t:
            return key
    best: tuple[int, str] | None = None
    for key in sorted(cfg.industry_keywords):
        for word in cfg.industry_keywords[key]:
            if word.casefold() in t and (best is None or len(word) > best[0]):
                best = (len(word), key)
    return best[1] if best else cfg.fallback_industry


def _values(facts: EnterpriseFacts) -> dict[str, float | None]:
    return {"employees": facts.employees, "revenue_wan_cny": facts.annual_revenue_cny}


def _meets(values: dict[str, float | None], bounds: Bounds) -> bool | None:
    """True if every used index reaches its bound, False if a declared one does not, None if undetermined."""
    result: bool | None = True
    for index in ("employees", "revenue_wan_cny"):
        bound = getattr(bounds, index)
        if bound is None:
            continue
        value = values[index]
        if index == "revenue_wan_cny":
            bound = bound * 10_000  # 万元 -> CNY (compare in CNY, no rounding of the declared revenue)
        if value is None:
            result = None
        elif value < bound:
            return False
    return result


def size_of(facts: EnterpriseFacts, industry: str, cfg: EnterpriseSizeConfig) -> str | None:
    """"large", "medium", "small", "micro", or None when the declared facts do not decide."""
    t = cfg.thresholds[industry]
    values = _values(facts)
    for tier in TIERS:
        met = _meets(values, getattr(t, tier))
        if met is True:
            return tier
        if met is None:
            # An undeclared index: only a declared index below the small bounds still decides (micro).
            return "micro" if _meets(values, t.small) is False else None
    return "micro"


@hookimpl
def odr_plugin_info() -> PluginInfo:
    return PluginInfo(
        name=NAME,
        version=VERSION,
        title="企业规模（统计上大中小微型企业划分办法2017） / Enterprise size (national standard 2017)",
        description="Large, medium, small or micro by industry, employees and operating revenue (国统字〔2017〕213号).",
        families=(Family.CLASSIFICATION,),
        config=EnterpriseSizeConfig,
        classes=("large", "medium", "small", "micro"),
    )


@hookimpl
def odr_classify_enterprise(scope: Scope, facts: EnterpriseFacts) -> ClassificationResult | None:
    cfg: EnterpriseSizeConfig = scope.config(NAME, EnterpriseSizeConfig())
    if facts.unit_type not in cfg.unit_types:
        return None
    industry = industry_of(facts.industry, cfg)
    size = size_of(facts, industry, cfg)
    if size is None:
        return None
    label = f"{LABELS[size]}（{INDUSTRY_LABELS.get(industry, industry)}）"
    return ClassificationResult(scheme=NAME, code=size, label=label)
