"""Jinshan e-commerce ODR classification (seeds/001): A 大型综合性电商企业 (large comprehensive),
B 中型专业性电商企业 (medium specialised), C 小型电商企业 (small), each class with its own duties.

The article names the three classes but publishes no thresholds, so the thresholds are configuration.
The defaults take the size bounds of retail (零售业, which holds internet retail 互联网零售, GB/T 4754-2017
F5292) from the national statistical standard 统计上大中小微型企业划分办法（2017）: large from 300 employees
and 20000万元 (CNY 200 million) revenue, medium from 50 employees and 500万元 (CNY 5 million); the complaint
bounds (100 and 10 complaints last year) separate Jinshan's own figures, A/B/C handling 508 / 29 / 2.

Rule (deterministic, only on the facts given):
1. A size tier is reached when, with ``match = "any"`` (default), any declared fact (employees,
   annual revenue, complaints last year) reaches that tier's lower bound; with ``match = "all"``, every
   declared fact reaches it (and at least one is declared). Undeclared facts are never guessed.
2. The large tier gives A if the business scope is comprehensive (it contains one of
   ``comprehensive_keywords``, case-insensitive) or ``a_requires_comprehensive_scope`` is false;
   a large but specialised business gives B.
3. The medium tier gives B; everything else is C.

Duties are fixed per class (:data:`DUTIES`); other plugins read them with :func:`duties_for`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from odr_plugin_api import ClassificationResult, EnterpriseFacts, Family, PluginInfo, Scope, hookimpl

NAME = "odr_jinshan_classification"
VERSION = "1.0.0"

LABELS: dict[str, str] = {
    "A": "A类 大型综合性电商企业 / A: large comprehensive e-commerce enterprise",
    "B": "B类 中型专业性电商企业 / B: medium specialised e-commerce enterprise",
    "C": "C类 小型电商企业 / C: small e-commerce enterprise",
}

DUTIES: dict[str, tuple[str, ...]] = {
    "A": (
        "设立专门ODR团队，专职ODR专员不少于2名 / a dedicated ODR team with at least 2 full-time ODR specialists",
        "2天内受理并联系消费者，7个自然日内办结 / accept and contact the consumer within 2 days, close within 7 natural days",
        "每月向区市场监管局报送ODR工作报告 / a monthly ODR report to the district bureau",
        "对投诉集中的商品和平台内经营者开展源头治理 / tackle at the source the goods and platform merchants drawing most complaints",
        "参加区局组织的ODR论坛和专题培训 / take part in the district's ODR forum and topical training",
    ),
    "B": (
        "指定专职ODR专员 / a designated full-time ODR specialist",
        "2天内受理并联系消费者，7个自然日内办结 / accept and contact the consumer within 2 days, close within 7 natural days",
        "每季度向区市场监管局报送ODR工作报告 / a quarterly ODR report to the district bureau",
        "参加区局组织的ODR专题培训 / take part in the district's ODR training",
    ),
    "C": (
        "指定ODR联络员（可兼职） / a designated ODR liaison (part-time allowed)",
        "2天内受理并联系消费者，7个自然日内办结 / accept and contact the consumer within 2 days, close within 7 natural days",
        "每年向区市场监管局报送ODR工作情况 / a yearly ODR summary to the district bureau",
    ),
}


def duties_for(code: str | None) -> tuple[str, ...]:
    """The duties of Jinshan class ``code`` ("A", "B" or "C", case-insensitive); ``()`` for any other code."""
    if not code:
        return ()
    return DUTIES.get(code.strip().upper(), ())


Keyword = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class JinshanClassificationConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    a_min_employees: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 300
    """Employees from which a unit is large (class A if comprehensive)."""
    a_min_revenue_cny: Annotated[float, msgspec.Meta(gt=0, le=1e13)] = 200_000_000.0
    """Annual revenue (CNY) from which a unit is large."""
    a_min_complaints_last_year: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 100
    """Complaints last year from which a unit is large."""
    a_requires_comprehensive_scope: bool = True
    """A needs a comprehensive business scope; a large specialised unit is then B."""
    b_min_employees: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 50
    """Employees from which a unit is medium (class B)."""
    b_min_revenue_cny: Annotated[float, msgspec.Meta(gt=0, le=1e13)] = 5_000_000.0
    """Annual revenue (CNY) from which a unit is medium."""
    b_min_complaints_last_year: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 10
    """Complaints last year from which a unit is medium."""
    match: Literal["any", "all"] = "any"
    """``any``: one declared fact reaching a bound is enough; ``all``: every declared fact must reach it."""
    comprehensive_keywords: Annotated[tuple[Keyword, ...], msgspec.Meta(min_length=1, max_length=50)] = (
        "综合",
        "百货",
        "全品类",
        "平台",
        "comprehensive",
        "general merchandise",
        "department store",
        "marketplace",
    )
    """Words that mark a business scope as comprehensive (case-insensitive substring match)."""

    def __post_init__(self) -> None:
        for field in ("employees", "revenue_cny", "complaints_last_year"):
            if getattr(self, f"a_min_{field}") <= getattr(self, f"b_min_{field}"):
                raise ValueError(f"a_min_{field} must be greater than b_min_{field}")


def _reaches(facts: EnterpriseFacts, employees: int, revenue: float, complaints: int, match: str) -> bool:
    checks = [
        value >= bound
        for value, bound in (
            (facts.employees, employees),
            (facts.annual_revenue_cny, revenue),
            (facts.complaints_last_year, complaints),
        )
        if value is not None
    ]
    if not checks:
        return False
    return any(checks) if match == "any" else all(checks)


def is_comprehensive(business_scope: str | None, keywords: tuple[str, ...]) -> bool:
    text = (business_scope or "").casefold()
    return any(k.casefold() in text for k in keywords)


def classify(facts: EnterpriseFacts, cfg: JinshanClassificationConfig) -> str:
    """The class code ("A", "B" or "C") of ``facts`` under ``cfg``."""
    large = _reaches(facts, cfg.a_min_employees, cfg.a_min_revenue_cny, cfg.a_min_complaints_last_year, cfg.match)
    if large and (not cfg.a_requires_comprehensive_scope or is_comprehensive(facts.business_scope, cfg.comprehensive_keywords)):
        return "A"
    if large or _reaches(facts, cfg.b_min_employees, cfg.b_min_revenue_cny, cfg.b_min_complaints_last_year, cfg.match):
        return "B"
    return "C"


@hookimpl
def odr_plugin_info() -> PluginInfo:
    return PluginInfo(
        name=NAME,
        version=VERSION,
        title="金山区电商ODR企业A/B/C分类 / Jinshan e-commerce A/B/C classification",
        description="A large comprehensive, B medium specialised, C small e-commerce ODR enterprises, each with its duties.",
        families=(Family.CLASSIFICATION,),
        config=JinshanClassificationConfig,
        classes=("A", "B", "C"),
    )


@hookimpl
def odr_classify_enterprise(scope: Scope, facts: EnterpriseFacts) -> ClassificationResult:
    cfg: JinshanClassificationConfig = scope.config(NAME, JinshanClassificationConfig())
    code = classify(facts, cfg)
    return ClassificationResult(scheme=NAME, code=code, label=LABELS[code], duties=DUTIES[code])
