"""The demo ODR units: one plan per unit (node, name, type, size, how many complaints, how they end),
the shapes of :mod:`odr.demo.history` (see there), and their credit codes.

Contract: :data:`PLANS` is data (a table, like the label tables); :func:`credit_code` gives a unit the
same 18-character code in every run (a hash of the tenant and the unit's key).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@dataclass(frozen=True)
class UnitPlan:
    key: str
    node: str
    name: str
    unit_type: str
    industry: str
    employees: int
    revenue_cny: float
    scope: str
    complaints: int
    settlement_rate: float
    open: int = 1
    gave_up: int = 0
    """Left ODR without the enterprise's feedback (the consumer chose the ordinary complaint route)."""
    host: str | None = None
    """Key of the host unit (a mall) for a member merchant."""
    cycle_days: tuple[float, float] = (4.5, 7.0)
    """Most closes fall in this range of days after entering ODR; a quarter takes 7.5 to 11.5 days."""
    late_contact_share: float = 0.15
    category: str = "网络购物"
    subjects: tuple[str, ...] = ("商品质量问题要求退货", "发货延迟", "七日无理由退货被拒", "虚假宣传", "售后维修推诿")


PLANS: tuple[UnitPlan, ...] = (
    # Shanghai, Jinshan: A/B/C after seeds/001 (508 / 29 / 2 complaints, settled 85 / 95 / 100 %).
    UnitPlan(key="js-a", node="310116-01", name="金山云购综合电商平台有限公司（演示）", unit_type="enterprise",
             industry="电子商务", employees=860, revenue_cny=520_000_000.0,
             scope="综合性网络零售平台：百货、家电、食品、服饰全品类", complaints=51, settlement_rate=0.85, open=3, gave_up=1),
    UnitPlan(key="js-b", node="310116-02", name="枫泾母婴用品电商有限公司（演示）", unit_type="enterprise",
             industry="电子商务", employees=120, revenue_cny=36_000_000.0, scope="母婴用品网络销售",
             complaints=21, settlement_rate=0.95, open=1),
    UnitPlan(key="js-c", node="310116-01", name="朱泾农家特产网店（演示）", unit_type="enterprise",
             industry="电子商务", employees=8, revenue_cny=1_200_000.0, scope="金山特色农产品网络销售",
             complaints=2, settlement_rate=1.0, open=0),
    # Shanghai, Pudong: one e-commerce unit under the national rules.
    UnitPlan(key="pd-1", node="310115-01", name="陆家嘴数码电商有限公司（演示）", unit_type="enterprise",
             industry="电子商务", employees=210, revenue_cny=85_000_000.0, scope="数码产品及配件网络销售",
             complaints=24, settlement_rate=0.88, open=2, gave_up=1, late_contact_share=0.3),
    # Jiangsu, Wuxi Xishan: the mall (八佰伴) handles its merchants' after-sales.
    UnitPlan(key="xs-mall", node="320205-01", name="无锡八佰伴商贸有限公司（演示）", unit_type="host_unit",
             industry="百货商场", employees=1500, revenue_cny=1_800_000_000.0, scope="百货零售、商场经营管理",
             complaints=14, settlement_rate=0.9, category="商场购物",
             subjects=("专柜商品质量问题", "会员积分纠纷", "促销价格争议", "退换货被拒")),
    UnitPlan(key="xs-m1", node="320205-01", name="八佰伴某女装专柜（演示）", unit_type="enterprise", host="xs-mall",
             industry="服装零售", employees=12, revenue_cny=3_500_000.0, scope="女装零售",
             complaints=10, settlement_rate=0.8, open=0, category="商场购物",
             subjects=("衣物洗后褪色", "尺码不符退换被拒", "预付卡余额纠纷")),
    UnitPlan(key="xs-m2", node="320205-01", name="八佰伴某家电专柜（演示）", unit_type="enterprise", host="xs-mall",
             industry="家电零售", employees=25, revenue_cny=18_000_000.0, scope="家用电器零售及安装",
             complaints=8, settlement_rate=0.875, open=1, category="家用电器",
             subjects=("空调安装延误", "冰箱噪音过大", "赠品未兑现")),
    UnitPlan(key="xs-car", node="320205", name="锡山某汽车销售服务有限公司（演示）", unit_type="enterprise",
             industry="汽车零售", employees=90, revenue_cny=260_000_000.0, scope="汽车销售、维修保养",
             complaints=6, settlement_rate=0.67, open=0, gave_up=1, category="汽车",
             subjects=("新车交付延迟", "保养收费争议", "维修质量问题")),
    # Fujian, Fuzhou Gulou: the three carriers (seeds/003).
    UnitPlan(key="gl-mobile", node="350102-01", name="中国移动福州鼓楼营业部（演示）", unit_type="enterprise",
             industry="电信", employees=420, revenue_cny=900_000_000.0, scope="移动通信、宽带业务",
             complaints=22, settlement_rate=0.82, open=2, category="通信服务",
             subjects=("套餐资费不符", "宽带故障维修不及时", "未经同意开通增值业务", "携号转网受阻")),
    UnitPlan(key="gl-telecom", node="350102-01", name="中国电信福州鼓楼营业部（演示）", unit_type="enterprise",
             industry="电信", employees=310, revenue_cny=600_000_000.0, scope="固定电话、移动通信、宽带业务",
             complaints=16, settlement_rate=0.86, open=1, category="通信服务",
             subjects=("宽带提速未兑现", "话费扣费异常", "合约期违约金争议")),
    UnitPlan(key="gl-unicom", node="350102", name="中国联通福州鼓楼营业部（演示）", unit_type="enterprise",
             industry="电信", employees=260, revenue_cny=450_000_000.0, scope="移动通信、宽带业务",
             complaints=12, settlement_rate=0.9, open=1, gave_up=1, category="通信服务",
             subjects=("流量包扣费争议", "营业厅办理业务推诿", "销户受阻")),
)


def credit_code(tenant: str, key: str) -> str:
    digest = hashlib.sha256(f"{tenant}:{key}".encode()).digest()
    return "91" + "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:16])
